"""Coordination: a Store contract over etcd (aetcd) and an embedded backend."""
