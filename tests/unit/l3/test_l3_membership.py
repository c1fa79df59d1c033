"""Lost network nodes (membership.py) and the re-placement written with them (routerstore `down`)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.coord.memory import MemoryStore
from hakeeper.l3 import edits
from hakeeper.l3.membership import Liveness, controller
from hakeeper.l3.model import RouterSpec, Settings
from hakeeper.l3.routerstore import decode, encode, update

NODES = ("network6", "network7", "network8")


def test_a_node_is_lost_only_after_its_report_stops_moving_for_lost_after() -> None:
    live = Liveness(lost_after=6.0)
    live.observe({"network6": 1, "network7": 2}, now=0.0)
    assert live.down(NODES, (), now=5.9) == ()
    live.observe({"network6": 10, "network7": 2}, now=5.9)  # network7's report stopped at revision 2
    assert live.down(NODES, (), now=6.5) == ("network7",)
    # network8 never reported: not lost (not started yet), unless it was already down.
    assert live.down(NODES, ("network8",), now=6.5) == ("network7", "network8")
    live.observe({"network6": 11, "network7": 12}, now=7.0)  # network7 is back
    assert live.down(NODES, ("network7",), now=7.0) == ()


def test_a_node_down_stays_down_for_a_new_observer_until_its_report_moves() -> None:
    live = Liveness(lost_after=6.0)
    live.observe({"network6": 1, "network7": 2}, now=0.0)
    assert live.down(NODES, ("network7",), now=1.0) == ("network7",)
    live.observe({"network6": 3, "network7": 4}, now=2.0)
    assert live.down(NODES, ("network7",), now=2.0) == ()


def test_a_fresh_observer_declares_nothing_lost_before_watching_lost_after() -> None:
    live = Liveness(lost_after=6.0)
    live.observe({"network6": 1, "network7": 2}, now=100.0)  # stale for long, but only just seen
    assert live.down(NODES, (), now=105.0) == ()


def test_the_controller_is_the_lowest_alive_reporting_member() -> None:
    assert controller(NODES, (), ("network7", "network8")) == "network7"
    assert controller(NODES, ("network7",), ("network6", "network7", "network8")) == "network6"
    assert controller(NODES, NODES, NODES) is None
    assert controller(("network8",), (), ("network6", "network8")) == "network8"  # non-members never decide


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NODES), st.integers(0, 3), st.floats(0, 3)), max_size=30),
       st.floats(0.5, 10))
def test_down_is_exactly_the_seen_nodes_silent_for_longer_than_lost_after(
        steps: list[tuple[str, int, float]], lost_after: float) -> None:
    live = Liveness(lost_after)
    now = 0.0
    last_change: dict[str, float] = {}
    revision: dict[str, int] = {}
    for node, bump, dt in steps:
        now += dt
        if bump or node not in revision:
            revision[node] = revision.get(node, 0) + bump + 1
            last_change[node] = now
        live.observe(dict(revision), now)
        down = live.down(NODES, (), now)
        assert set(down) == {n for n, t in last_change.items() if now - t > lost_after}
        # Down before: stays down until its report moved while watched.
        assert set(live.down(NODES, NODES, now)) == set(NODES) - (live.moved - set(down))
        ctl = controller(NODES, down, revision)
        assert ctl is None or (ctl not in down and ctl in revision and all(
            n in down or n not in revision or n >= ctl for n in NODES))


def _spec(n: int) -> RouterSpec:
    spec = RouterSpec(settings=Settings(l3_ha=True, max_l3_agents_per_router=2))
    for i in range(n):
        spec = edits.create(f"r{i:02d}", f"router{i}", "service")(spec)
    return spec


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.sampled_from(NODES))
def test_a_lost_node_s_routers_get_a_replica_elsewhere_and_survivors_stay(routers: int, lost: str) -> None:
    async def go() -> None:
        store = MemoryStore()
        before = await update(store, "c", spec=_spec(routers), nodes=NODES)
        after = await update(store, "c", down=(lost,))
        assert after.down == (lost,) and decode(encode(after)).down == (lost,)
        for rid, p in before.schedule.routers.items():
            q = after.schedule.routers[rid]
            assert lost not in q.nodes and len(q.nodes) == 2  # full redundancy again
            assert set(p.nodes) - {lost} <= set(q.nodes)  # every surviving replica stays (no failover)
            assert q.vrid == p.vrid and q.network == p.network  # the same router on the HA network
            for n in set(p.nodes) - {lost}:
                assert q.ha_hosts[n] == p.ha_hosts[n]
        # An operator's edit meanwhile places nothing on the lost node.
        edited = await update(store, "c", edit=edits.create("r99", "router99", "service"))
        assert all(lost not in p.nodes for p in edited.schedule.routers.values())
        # The node returns: nothing moves (every router has its replicas), it is free for new ones.
        back = await update(store, "c", down=())
        assert back.down == () and {r: p.nodes for r, p in back.schedule.routers.items()} == {
            r: p.nodes for r, p in edited.schedule.routers.items()}

    asyncio.run(go())


def test_with_two_nodes_a_lost_node_s_replicas_come_back_with_it() -> None:
    async def go() -> None:
        store = MemoryStore()
        two = NODES[1:]
        await update(store, "c", spec=_spec(3), nodes=two)
        lost = await update(store, "c", down=("network8",))
        assert all(p.nodes == ("network7",) for p in lost.schedule.routers.values())
        back = await update(store, "c", down=())
        assert all(p.nodes == two for p in back.schedule.routers.values())

    asyncio.run(go())
