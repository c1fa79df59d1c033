"""Instance HA: a lost compute host is fenced, its nova-compute forced down and its instances
evacuated through Nova, once each (docs/instance-ha.md)."""
