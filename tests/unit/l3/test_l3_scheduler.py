"""The router scheduler: replicas, balance, determinism, VRIDs per HA network, re-protection."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.l3.scheduler import HaNetwork, RouterWant, Schedule, degraded, lost_replicas, schedule

node_names = st.lists(st.sampled_from([f"net{i}" for i in range(8)]), min_size=1, max_size=6, unique=True)
router_sets = st.lists(
    st.builds(RouterWant, st.from_regex(r"r[0-9a-f]{1,4}", fullmatch=True), st.sampled_from(["admin", "service"])),
    max_size=40, unique_by=lambda r: r.id)


def check_invariants(s: Schedule, routers: list[RouterWant], nodes: list[str], replicas: int) -> None:
    want = min(replicas, len(nodes)) if replicas else len(nodes)
    assert set(s.routers) == {r.id for r in routers}
    seen: dict[HaNetwork, set[int]] = {}
    ports: dict[HaNetwork, set[int]] = {}
    for r in routers:
        p = s.routers[r.id]
        assert len(p.nodes) == want and len(set(p.nodes)) == want and set(p.nodes) <= set(nodes)
        assert p.network.project == r.project
        assert 1 <= p.vrid <= 255 and p.vrid not in seen.setdefault(p.network, set())
        seen[p.network].add(p.vrid)
        assert set(p.ha_hosts) == set(p.nodes)
        for h in p.ha_hosts.values():
            assert h not in ports.setdefault(p.network, set())
            ports[p.network].add(h)


@settings(max_examples=300, deadline=None)
@given(router_sets, node_names, st.integers(0, 4))
def test_fresh_schedule(routers: list[RouterWant], nodes: list[str], replicas: int) -> None:
    s = schedule(routers, nodes, replicas)
    check_invariants(s, routers, nodes, replicas)
    assert not s.problems
    # Least-loaded first: on a fresh schedule no node carries two more routers than another.
    load = s.load()
    if routers:
        counts = [load.get(n, 0) for n in nodes]
        assert max(counts) - min(counts) <= 1
    # Deterministic, whatever order routers and nodes come in; and stable when run again.
    shuffled = list(routers)
    random.Random(1).shuffle(shuffled)
    assert schedule(shuffled, list(reversed(nodes)), replicas) == s
    assert schedule(routers, nodes, replicas, s) == s


@settings(max_examples=300, deadline=None)
@given(router_sets, node_names, st.integers(0, 4), st.data())
def test_node_loss_reprotects_and_moves_nothing_else(routers: list[RouterWant], nodes: list[str],
                                                     replicas: int, data: st.DataObject) -> None:
    before = schedule(routers, nodes, replicas)
    lost = data.draw(st.lists(st.sampled_from(nodes), unique=True, max_size=len(nodes) - 1))
    alive = [n for n in nodes if n not in lost]
    after = schedule(routers, alive, replicas, before)
    check_invariants(after, routers, alive, replicas)
    for rid, p in before.routers.items():
        q = after.routers[rid]
        assert (q.network, q.vrid) == (p.network, p.vrid)  # a router's VRID is for life
        survivors = [n for n in p.nodes if n not in lost]
        assert set(survivors) <= set(q.nodes)  # no surviving replica moves
        for n in survivors:
            assert q.ha_hosts[n] == p.ha_hosts[n]
    moved = lost_replicas(before, after, lost)
    for rid, new in moved.items():
        # Re-protection: as many replicas as the alive nodes allow, on nodes it did not have.
        assert len(after.routers[rid].nodes) == (min(replicas, len(alive)) if replicas else len(alive))
        assert not set(new) & set(before.routers[rid].nodes)


def test_vrids_spill_onto_a_further_ha_network() -> None:
    routers = [RouterWant(f"r{i:04d}", "service") for i in range(600)] + [RouterWant("x", "admin")]
    s = schedule(routers, ["a", "b"], 3)
    nets = {p.network for p in s.routers.values()}
    assert nets == {HaNetwork("service", 0), HaNetwork("service", 1), HaNetwork("service", 2),
                    HaNetwork("admin", 0)}
    assert s.routers["r0000"].vrid == 1 and s.routers["r0254"].vrid == 255
    assert s.routers["r0255"].network == HaNetwork("service", 1) and s.routers["r0255"].vrid == 1
    assert s.routers["x"].vrid == 1
    # Deleting a router frees its VRID for the next new one, and moves nobody else.
    fewer = [r for r in routers if r.id != "r0003"] + [RouterWant("r9999", "service")]
    t = schedule(fewer, ["a", "b"], 3, s)
    assert t.routers["r9999"].network == HaNetwork("service", 0) and t.routers["r9999"].vrid == 4
    assert all(t.routers[k] == v for k, v in s.routers.items() if k != "r0003")


def test_ha_network_too_small() -> None:
    s = schedule([RouterWant("a", "p"), RouterWant("b", "p")], ["n1", "n2"], 2, ha_hosts=3)
    assert s.routers["a"].nodes == ("n1", "n2")
    assert s.routers["b"].nodes == ("n1",)
    assert s.problems and "too small for another node" in s.problems[0]
    assert degraded(s.routers["b"], 2) and not degraded(s.routers["a"], 2)


def test_seed004_two_nodes_max_three() -> None:
    s = schedule([RouterWant("7a46dba8-8846-498c-9e10-588664558473", "admin")], ["network7", "network8"], 3)
    p = s.routers["7a46dba8-8846-498c-9e10-588664558473"]
    assert p.nodes == ("network7", "network8") and p.vrid == 1
    assert p.ha_hosts == {"network7": 1, "network8": 2}  # 169.254.192.1 and .2, as in the seed
