"""The agent's pure decisions: cluster state from store values, plan readiness, expiry, devices."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as stt

from hakeeper.agent import state as st
from hakeeper.spec import parse_spec

K = st.Keys("u")
SPEC = parse_spec("""
cluster: {name: u}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: r, agent: process, params: {command: sleep 1}, meta: {failure-timeout: 60s}}
    - {id: f, agent: "stonith:fence_dummy", params: {pcmk_host_list: "a"}}
""")


def values(**docs: object) -> dict[str, bytes]:
    return {K.prefix + k: st.dumps(v) for k, v in docs.items()}


def test_lost_node_with_resources_is_unclean_and_clean_without() -> None:
    v = values(**{"members/b": {"probed": True}, "status/a/r": {"role": "Started"}})
    state = st.cluster_state(SPEC, v, K, 100.0)
    assert state.nodes["a"].unclean and not state.nodes["a"].online
    assert state.nodes["b"].online and not state.nodes["b"].unclean
    # Only a stonith resource reported there: offline, not unclean (nothing to fence for).
    v = values(**{"members/b": {"probed": True}, "status/a/f": {"role": "Started"}})
    assert not st.cluster_state(SPEC, v, K, 100.0).nodes["a"].unclean
    # A member still probing is neither online nor lost.
    v = values(**{"members/a": {"probed": False}, "status/a/r": {"role": "Started"}})
    a = st.cluster_state(SPEC, v, K, 100.0).nodes["a"]
    assert not a.online and not a.unclean


def test_failures_and_fail_counts_reach_the_scheduler() -> None:
    v = values(
        **{
            "members/a": {},
            "status/a/r": {"role": "Started", "failed": True, "op": "monitor", "rc": 7, "kind": "soft"},
            "fail/a/r": {"count": 2, "last": 50.0},
            "fail/b/r": {"count": 1, "last": 10.0},
        }
    )
    state = st.cluster_state(SPEC, v, K, 100.0)
    by = {(s.node, s.resource): s for s in state.resources}
    assert by[("a", "r")].failed and by[("a", "r")].fail_count == 2 and by[("a", "r")].failed_rc == 7
    assert by[("b", "r")].role == "Stopped" and by[("b", "r")].fail_count == 1
    assert st.expired_fail_counts(SPEC, v, K, 100.0) == [K.fail_of("b", "r")]
    assert sorted(st.expired_fail_counts(SPEC, v, K, 200.0)) == sorted([K.fail_of("a", "r"), K.fail_of("b", "r")])


def test_stonith_devices_by_host_list() -> None:
    assert [p.id for p in st.stonith_devices(SPEC, "a")] == ["f"]
    assert st.stonith_devices(SPEC, "b") == []


def test_pseudo_actions_complete_with_their_predecessors() -> None:
    plan = {
        "actions": [
            {"id": 0, "task": "fence", "node": "a"},
            {"id": 1, "task": "stop", "node": "a", "resource": "r", "pseudo": True},
            {"id": 2, "task": "start", "node": "b", "resource": "r"},
        ],
        "edges": [[0, 1], [1, 2]],
    }
    assert st.ready(plan, {}, "b", ["start"]) == []
    assert [a["id"] for a in st.ready(plan, {0: True}, "b", ["start"])] == [2]
    assert st.ready(plan, {0: False}, "b", ["start"]) == []  # a failed fence blocks the start
    assert st.remaining(plan, {0: True}) == {("start", "r", "b")}


@given(
    stt.lists(stt.tuples(stt.integers(0, 7), stt.integers(0, 7)), max_size=20),
    stt.dictionaries(stt.integers(0, 7), stt.booleans()),
)
def test_ready_actions_have_all_predecessors_done(edges: list[tuple[int, int]], done: dict[int, bool]) -> None:
    edges = [(a, b) for a, b in edges if a < b]  # a plan's orderings form a DAG
    plan = {"actions": [{"id": i, "task": "start", "node": "n", "resource": f"r{i}"} for i in range(8)], "edges": edges}
    for action in st.ready(plan, done, "n", ["start"]):
        assert action["id"] not in done
        assert all(done.get(a) for a, b in edges if b == action["id"])


def test_suspected_member_with_resources_is_unclean_for_its_heartbeat() -> None:
    v = values(**{"members/a": {"probed": True}, "members/b": {"probed": True}, "status/a/r": {"role": "Started"}})
    assert st.cluster_state(SPEC, v, K, 100.0).nodes["a"].online
    a = st.cluster_state(SPEC, v, K, 100.0, suspects={"a"}).nodes["a"]
    assert a.unclean and not a.online and a.fence_reason is not None and "heartbeat" in a.fence_reason
    # Fenced (its reports withdrawn) but its lease not yet expired: offline and clean.
    v = values(**{"members/a": {"probed": True}, "members/b": {"probed": True}})
    a = st.cluster_state(SPEC, v, K, 100.0, suspects={"a"}).nodes["a"]
    assert not a.online and not a.unclean
