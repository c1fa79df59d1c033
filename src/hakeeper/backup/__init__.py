"""Backup and restore of the control plane: the Galera database, hakeeper's configuration in the
store, the rendered configuration files, secrets only encrypted (or by explicit flag)."""
