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


# ----- orphans: resources and nodes the configuration dropped -----

DEF_R = {"agent": "process", "params": {"command": "sleep 1", "password": "x"}, "timeouts": {"stop": 7.0}}


def test_a_report_of_an_unconfigured_resource_is_an_orphan_the_scheduler_stops() -> None:
    from hakeeper.placement import schedule

    v = values(
        **{
            "members/a": {"probed": True},
            "members/b": {"probed": True},
            "status/a/r": {"role": "Started"},
            "status/a/gone": {"role": "Started", "definition": DEF_R},
        }
    )
    state = st.cluster_state(SPEC, v, K, 100.0)
    by = {s.resource: s for s in state.resources}
    assert by["gone"].orphan and by["gone"].agent == "process"
    assert not by["r"].orphan and by["r"].agent is None
    plan = schedule(*st.scheduler_input(SPEC, v, K, 100.0))
    # Nothing else stops: r keeps running, only what is not running yet starts.
    assert [(a.task, a.resource, a.node) for a in plan.actions if a.task == "stop"] == [("stop", "gone", "a")]


def test_orphaned_clone_instances_are_demoted_and_stopped_one_by_one() -> None:
    """An anonymous clone's instances are reported under the primitive's id: once the clone is
    gone each node's instance gets its own number, so only the promoted one is demoted."""
    from hakeeper.placement import schedule

    d = {"agent": "ocf:pacemaker:Stateful", "clone": "db-clone", "meta": {"promotable": "true"}}
    v = values(
        **{
            "members/a": {"probed": True},
            "members/b": {"probed": True},
            "status/a/db": {"role": "Promoted", "definition": d},
            "status/b/db": {"role": "Unpromoted", "definition": d},
        }
    )
    plan = schedule(*st.scheduler_input(SPEC, v, K, 100.0))
    steps = [(a.task, a.resource, a.node) for a in plan.actions if a.task in ("demote", "stop")]
    assert sorted(steps) == [("demote", "db:0", "a"), ("stop", "db:0", "a"), ("stop", "db:1", "b")]
    assert steps.index(("demote", "db:0", "a")) < steps.index(("stop", "db:0", "a"))


def test_an_empty_configuration_stops_what_every_member_runs() -> None:
    """Nodes dropped from the configuration (an empty one drops all) are still listed, in
    standby: configured resources move away, orphans stop, nothing starts there."""
    from hakeeper.placement import schedule
    from hakeeper.spec import ClusterSpec

    v = values(
        **{
            "members/a": {"probed": True},
            "members/c": {"probed": True},
            "status/a/gone": {"role": "Started", "definition": DEF_R},
            "status/c/other": {"role": "Started", "definition": DEF_R},
        }
    )
    empty = ClusterSpec()
    spec, state = st.scheduler_input(empty, v, K, 100.0)
    assert set(state.nodes) == {"a", "c"} and all(n.standby and n.online for n in state.nodes.values())
    assert [n.name for n in spec.nodes] == ["a", "c"] and empty.nodes == []
    steps = sorted((a.task, a.resource, a.node) for a in schedule(spec, state).actions if not a.pseudo)
    assert steps == [("stop", "gone", "a"), ("stop", "other", "c")]
    # A configured resource on a node that is no longer configured moves to one that is.
    v = values(**{"members/a": {"probed": True}, "members/z": {"probed": True}, "status/z/r": {"role": "Started"}})
    steps = sorted((a.task, a.resource, a.node) for a in schedule(*st.scheduler_input(SPEC, v, K, 100.0)).actions)
    assert ("stop", "r", "z") in steps and ("start", "r", "a") in steps


def test_a_lost_unconfigured_node_that_ran_something_is_unclean() -> None:
    v = values(**{"members/a": {"probed": True}, "status/z/gone": {"role": "Started", "definition": DEF_R}})
    z = st.cluster_state(SPEC, v, K, 100.0).nodes["z"]
    assert z.unclean and not z.online
    # ... unless what it ran was only a fence device (as its definition says).
    stonith = {**DEF_R, "agent": "stonith:fence_dummy"}
    v = values(**{"members/a": {"probed": True}, "status/z/gone": {"role": "Started", "definition": stonith}})
    assert not st.cluster_state(SPEC, v, K, 100.0).nodes["z"].unclean


def test_fail_counts_of_orphans_no_longer_reported_are_forgotten() -> None:
    v = values(
        **{
            "fail/a/gone": {"count": 1, "last": 1.0},
            "fail/b/still": {"count": 1, "last": 1.0},
            "status/b/still": {"role": "Started", "failed": True, "definition": DEF_R},
            "fail/a/r": {"count": 1, "last": 1.0},
        }
    )
    assert st.orphan_fail_counts(SPEC, v, K) == [K.fail_of("a", "gone")]


@given(
    stt.text(min_size=1, max_size=10),
    stt.dictionaries(stt.text(max_size=5), stt.text(max_size=5), max_size=3),
    stt.dictionaries(stt.sampled_from(st.ORPHAN_OPS), stt.floats(0.1, 1e4), max_size=3),
    stt.one_of(stt.none(), stt.text(min_size=1, max_size=5)),
    stt.booleans(),
)
def test_a_definition_survives_its_round_trip_through_a_report(
    agent: str, params: dict[str, str], timeouts: dict[str, float], clone: str | None, unique: bool
) -> None:
    d = st.Definition(agent, params, timeouts, {"on_node": "a"}, clone, unique)
    assert st.Definition.from_json(st.loads(st.dumps(d.as_json()))) == d


def test_malformed_definitions_are_none() -> None:
    for doc in (
        None,
        "x",
        {},
        {"agent": ""},
        {"agent": "process", "params": []},
        {"agent": "p", "timeouts": {"stop": "x"}},
    ):
        assert st.Definition.from_json(doc) is None


def test_the_definition_records_what_a_stop_needs() -> None:
    d = st.definition(SPEC, "r", "a")
    assert d is not None and d.agent == "process" and d.params == {"command": "sleep 1"}
    assert d.timeout("stop") == 20.0 and d.meta == {"on_node": "a"} and d.clone is None
    assert st.definition(SPEC, "nope", "a") is None
