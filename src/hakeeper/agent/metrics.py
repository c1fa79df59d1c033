"""Prometheus metrics of one agent (prometheus_client), served over HTTP by `hakeeper agent`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.actions = Counter("hakeeper_agent_actions", "Resource actions run", ["action", "result"], registry=r)
        self.monitors = Counter("hakeeper_agent_monitors", "Monitor operations run", ["resource", "result"], registry=r)
        self.failures = Counter("hakeeper_agent_failures", "Failures counted", ["resource", "op"], registry=r)
        self.fencing = Counter(
            "hakeeper_agent_fencing", "Fencing operations (as leader)", ["node", "result"], registry=r
        )
        self.plans = Counter("hakeeper_agent_plans_published", "Plans published (as leader)", registry=r)
        self.decide_seconds = Gauge("hakeeper_agent_decide_seconds", "Duration of the last scheduler run", registry=r)
        self.leader = Gauge("hakeeper_agent_is_leader", "1 while this agent is the leader", registry=r)
        self.quorum = Gauge("hakeeper_agent_store_healthy", "1 while the lease is known alive", registry=r)
        self.quorum_stops = Counter(
            "hakeeper_agent_quorum_stops", "Times resources were stopped for lack of quorum", registry=r
        )
        self.lease_grants = Counter("hakeeper_agent_lease_grants", "Leases granted (new incarnations)", registry=r)
        self.revision = Gauge("hakeeper_agent_store_revision", "Last store revision seen", registry=r)
        self.running = Gauge("hakeeper_agent_resources_running", "Resources running on this node", registry=r)

    def serve(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
