"""Resource agent classes (OCF, systemd, process, VIP) and fence devices. See docs/resources.md."""
