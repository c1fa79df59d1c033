"""Prometheus metrics of one l3-agent (prometheus_client, as `hakeeper agent`'s), served over HTTP
with `--metrics HOST:PORT`: routers per state on this node, transitions by cause, takeovers,
VRRP packets dropped per reason, dual-active alarms raised (by the controller)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from hakeeper.l3.events import Change
from hakeeper.l3.speaker import RouterSpeaker
from hakeeper.vrrp.machine import State


class _Dropped(Collector):
    """Dropped VRRP packets, summed over the node's routers when scraped (the speaker counts)."""

    def __init__(self, speaker: RouterSpeaker) -> None:
        self.speaker = speaker

    def collect(self) -> Iterator[CounterMetricFamily]:
        fam = CounterMetricFamily("hakeeper_l3_dropped_packets", "VRRP packets dropped, per reason", labels=["reason"])
        totals: dict[str, int] = {}
        for run in list(self.speaker.runs.values()):
            for reason, n in run.drops.counts.items():
                totals[reason] = totals.get(reason, 0) + n
        for reason, n in sorted(totals.items()):
            fam.add_metric([reason], n)
        yield fam


class L3Metrics:
    def __init__(self, speaker: RouterSpeaker) -> None:
        self.registry = r = CollectorRegistry()
        self.routers = Gauge("hakeeper_l3_routers", "Routers on this node per VRRP state", ["state"], registry=r)
        self.transitions = Counter("hakeeper_l3_transitions", "Router state changes on this node",
                                   ["to", "cause"], registry=r)
        self.takeovers = Counter("hakeeper_l3_takeovers", "Routers that became master here (not adopted)",
                                 registry=r)
        self.alarms = Counter("hakeeper_l3_dual_active_alarms", "Dual-active alarms raised (by the controller)",
                              registry=r)
        self.dual_active = Gauge("hakeeper_l3_dual_active_routers",
                                 "Routers with two masters past the VRRP bound now", registry=r)
        r.register(_Dropped(speaker))

    def change(self, c: Change) -> None:
        self.transitions.labels(c.new.value, c.cause).inc()
        if c.new == State.MASTER and c.cause != "adopted":
            self.takeovers.inc()

    def states(self, states: dict[str, State]) -> None:
        counts = dict.fromkeys(("MASTER", "BACKUP", "FAULT", "INIT"), 0)
        for st in states.values():
            counts[st.value] = counts.get(st.value, 0) + 1
        for name, n in counts.items():
            self.routers.labels(name).set(n)

    def serve(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
