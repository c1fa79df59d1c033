"""A start or promote in flight leaves a pending report that outlives the node's lease (Pacemaker's
record-pending): a node lost before it reports the result is unclean, and what it was starting or
promoting moves only after its fence. Without it the resource ran on two nodes (found by the
simulation: lost-with-action-in-flight, seeds 4 and 29)."""

from __future__ import annotations

from hakeeper.agent import state as st
from hakeeper.placement import schedule
from hakeeper.resources.result import Result, Status
from hakeeper.spec import parse_spec

K = st.Keys("p")
SPEC = parse_spec("""
cluster: {name: p}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: r, agent: process, params: {command: sleep 1}}
    - {id: f, agent: "stonith:fence_dummy", params: {pcmk_host_list: "a b"}}
""")


def store(**docs: object) -> dict[str, bytes]:
    return {K.prefix + k: st.dumps(v) for k, v in docs.items()}


def test_only_a_start_or_a_promote_leaves_a_pending_report() -> None:
    start = st.pending_doc("start", 5.0, promotable=False)
    assert start is not None and start["role"] == "Stopped" and start["pending"] == "Started" and start["at"] == 5.0
    assert st.active(start) and st.scheduled_role(start) == "Started"
    clone_start = st.pending_doc("start", 5.0, promotable=True)
    assert clone_start is not None and st.scheduled_role(clone_start) == "Unpromoted"
    # What reads roles sees what runs now (an unpromoted instance) until the result.
    promote = st.pending_doc("promote", 5.0, promotable=True)
    assert promote is not None and promote["role"] == "Unpromoted" and st.scheduled_role(promote) == "Promoted"
    # A stop or a demote keeps the report of what runs: still active until the result says not.
    assert st.pending_doc("stop", 5.0, promotable=False) is None
    assert st.pending_doc("demote", 5.0, promotable=True) is None
    known = st.definition(SPEC, "r", "a")
    assert known is not None
    with_definition = st.pending_doc("start", 5.0, promotable=False, known=known)
    assert with_definition is not None and st.Definition.from_json(with_definition["definition"]) == known


def test_a_node_lost_with_a_start_in_flight_is_fenced_before_the_start_elsewhere() -> None:
    pending = st.pending_doc("start", 1.0, promotable=False)
    # a's lease expired (no member key, no running key) while it was starting r.
    values = store(**{"members/b": {"probed": True}, "status/a/r": pending, "status/b/f": {"role": "Started"}})
    spec, state = st.scheduler_input(SPEC, values, K, 10.0)
    assert state.nodes["a"].unclean
    plan = schedule(spec, state)
    fence, start = plan.find("fence", None, "a"), plan.find("start", "r")
    assert fence is not None and start is not None and start.node == "b"
    assert plan.before(fence, start)
    # Without the pending report (as before the fix) a looked cleanly down: no fence at all.
    values = store(**{"members/b": {"probed": True}, "status/b/f": {"role": "Started"}})
    spec, state = st.scheduler_input(SPEC, values, K, 10.0)
    assert not state.nodes["a"].unclean
    assert not any(a.task == "fence" for a in schedule(spec, state).actions)


def test_the_result_replaces_the_pending_report() -> None:
    ok = st.status_doc(Result(Status.SUCCESS, 0, ""), "start", ok=True, at=2.0)
    assert ok["role"] == "Started" and "pending" not in ok
    failed = st.status_doc(Result(Status.ERROR, 1, "boom"), "start", ok=False, at=2.0)
    assert failed["failed"] and failed["role"] == "Started" and "pending" not in failed
    stopped = st.status_doc(Result(Status.NOT_RUNNING, 7, ""), "start", ok=False, at=2.0)
    assert stopped["failed"] and st.active(stopped)

