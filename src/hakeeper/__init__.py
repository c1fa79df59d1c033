"""hakeeper: one coherent high-availability manager for OpenStack-style control planes."""

__version__ = "0.1.0"
