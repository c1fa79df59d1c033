"""Pure parts of the data plane and of list-hosting: names, addresses, NAT rules, stale reports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.l3.dataplane import layout
from hakeeper.l3.hosting import Report, hosting, hosting_table, summary
from hakeeper.l3.model import Settings
from hakeeper.l3.scheduler import RouterWant, schedule
from hakeeper.l3.specfile import parse_router_spec

RID = "7a46dba8-8846-498c-9e10-588664558473"
SPEC = parse_router_spec(f"""\
routers:
  - id: {RID}
    name: router80
    interfaces: [{{subnet: vxlan-subnet80, address: 192.168.80.1/24}}]
    gateway: {{network: ext-net80, address: 10.0.80.101/24, upstream: 10.0.80.1}}
    floating-ips: [{{external: 10.0.80.110, fixed: 192.168.80.10}}]
""")


def test_router80_layout_on_both_nodes() -> None:
    router = SPEC.routers[0]
    p = schedule([RouterWant(RID, "admin")], ["n7", "n8"], 3).routers[RID]
    a, b = (layout(router, p, n, Settings(), "x-") for n in ("n7", "n8"))
    assert a.namespace == f"x-qrouter-{RID}"
    assert str(a.ha_address) == "169.254.192.1/18" and str(b.ha_address) == "169.254.192.2/18"
    assert str(a.vip) == "169.254.0.1/24"
    # The port MACs are the port's, the same on every node; ha- is per node (kernel's choice).
    assert [q.mac for q in a.internal] == [q.mac for q in b.internal] and a.external and b.external
    assert a.external.mac == b.external.mac and a.ha.mac is None
    assert all(len(q.name) <= 15 and len(q.peer) <= 15 for q in a.ports)
    assert [(d, str(x)) for d, x in a.master_addresses()] == [
        (a.ha.name, "169.254.0.1/24"), (a.internal[0].name, "192.168.80.1/24"),
        (a.external.name, "10.0.80.101/24"), (a.external.name, "10.0.80.110/32")]
    qg = a.external.name
    assert "ip daddr 10.0.80.110 dnat to 192.168.80.10" in a.nat
    assert f'oifname "{qg}" ip saddr 192.168.80.10 snat to 10.0.80.110' in a.nat
    assert f'oifname "{qg}" ip saddr 192.168.80.0/24 snat to 10.0.80.101' in a.nat
    # The floating IP's own SNAT comes before the subnet's, or it would leave as the gateway.
    assert a.nat.index("snat to 10.0.80.110") < a.nat.index("snat to 10.0.80.101")


def test_list_hosting_never_shows_a_dead_node_active() -> None:
    live = Report("network8", 100.0, 2.0, {RID: ("router80", "standby")})
    dead = Report("network7", 97.5, 2.0, {RID: ("router80", "active")})
    rows = hosting([live, dead], "router80", now=100.4)
    assert [(r.host, r.alive, r.ha_state) for r in rows] == [("network7", False, "unknown"),
                                                            ("network8", True, "standby")]
    text = hosting_table(rows)
    assert f"| {RID} | network7 | True           | xxx   | unknown  |" in text
    assert hosting([live, dead], RID, now=100.4) == rows
    s, = summary([live, dead], now=100.4)
    assert s.active == () and s.replicas == 1


@given(st.floats(0, 10), st.floats(0.5, 5), st.sampled_from(["active", "standby"]))
def test_report_round_trip_and_staleness(age: float, interval: float, state: str) -> None:
    rep = Report("n", 1000.0, interval, {"r": ("name", state)})  # type: ignore[dict-item]
    assert Report.decode(rep.encode()) == rep
    now = 1000.0 + age
    row, = hosting([rep], "r", now=now)
    fresh = now - 1000.0 <= interval
    assert row.alive == fresh
    assert row.ha_state == (state if fresh else "unknown")
