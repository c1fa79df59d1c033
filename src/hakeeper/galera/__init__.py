"""MariaDB Galera under hakeeper: the lab, the data checker, the bootstrap decision and commands."""
