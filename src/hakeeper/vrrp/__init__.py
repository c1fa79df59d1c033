"""VRRP virtual IPs, wire-compatible with keepalived: packets, state machine, speaker, config."""
