"""Ceph RBD wiring for Glance, Cinder and Nova: plan, apply, verify (issue 15), and a one-host lab."""
