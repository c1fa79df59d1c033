"""Notify actions as they cross the store (agent/plan.py) and as the agent runs them (agent/notifying.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stt

from hakeeper.agent import plan as pl
from hakeeper.agent.notifying import describe, done_doc
from hakeeper.placement import Plan, schedule
from hakeeper.placement.notify import (
    PHASES,
    Entry,
    NotifyClone,
    NotifyFacts,
    NotifyInput,
    add_notifications,
)
from hakeeper.placement.plan import Action
from hakeeper.resources.result import Result, Status
from hakeeper.spec import ClusterSpec, ClusterState

SPEC = ClusterSpec.model_validate({
    "cluster": {"stonith-enabled": False},
    "nodes": [{"name": n} for n in ("n1", "n2", "n3")],
    "resources": {"primitives": [{"id": "rmq", "agent": "ocf:heartbeat:Dummy"}],
                  "clones": [{"id": "rmq-clone", "child": "rmq", "meta": {"notify": True}}]},
})
STOP_ONE = ClusterState.model_validate({
    "resources": [{"resource": "rmq", "node": n} for n in ("n1", "n2", "n3")],
    "nodes": {"n3": {"standby": True}},
})


def test_a_plan_with_notifications_round_trips_through_the_store() -> None:
    plan = schedule(SPEC, STOP_ONE)
    doc = pl.PlanDoc.of(plan, 3, "n1", 1.5)
    again = pl.parse(pl.encode(doc))
    assert again == doc
    told = [a for a in again.actions if a.task == "notify"]
    assert len(told) == 5 and all(a.notify is not None for a in told)
    assert told[0].notify == plan.actions[told[0].id].notify
    # The published JSON is the scheduler's own, with the epoch around it.
    assert doc.to_json()["actions"] == plan.as_json()["actions"]


def test_notifications_are_not_work_of_their_own_and_run_on_their_node() -> None:
    doc = pl.PlanDoc.of(schedule(SPEC, STOP_ONE), 1, "n1", 0.0)
    stop = next(a for a in doc.actions if a.task == "stop")
    assert doc.work() == {("stop", stop.resource or "", "n3")}
    # pre-notifications first; the stop waits for all three of them, post ones for the stop.
    pre = [a.id for a in doc.actions if a.notify is not None and a.notify.type == "pre"]
    assert [a.task for a in doc.ready({}, "n3")] == ["notify"]
    assert doc.ready({i: True for i in pre[:2]}, "n3")[0].task == "notify"
    done = {i: True for i in pre}
    assert [a.task for a in doc.ready(done, "n3")] == ["stop"]
    assert doc.remaining(done) == {("stop", stop.resource or "", "n3")}
    done[stop.id] = True
    assert doc.remaining(done) == set()  # the leader has nothing left to replace the plan for
    assert [a.notify.type for a in doc.ready(done, "n1") if a.notify] == ["post"]


def test_the_agent_records_a_failed_notification_as_done_and_says_so() -> None:
    action = pl.PlanAction(4, "notify", "n2", "rmq:1",
                           notify=NotifyFacts("post", "stop", stop=(Entry("rmq:2", "n3"),)))
    failed = Result(Status.ERROR, 1, "boom\n", 0.25)
    assert done_doc(failed)["ok"] is True and done_doc(failed)["notify_ok"] is False
    kind, message = describe(action, "n2", failed)
    assert kind == "notify-failed" and "post-stop notification on n2" in message and "boom" in message
    assert describe(action, "n2", Result(Status.SUCCESS, 0, "", 0.1))[0] == "notify"
    # An agent without a notify action (galera) says so: not a failure either.
    kind, message = describe(action, "n2", Result.from_ocf(3, "usage: ..."))
    assert kind == "notify" and "no notify action" in message


BAD: list[tuple[dict[str, Any], str]] = [
    ({"task": "notify", "resource": "r:0"}, "actions[0].notify"),
    ({"task": "notify", "notify": {"type": "pre", "operation": "stop"}}, "actions[0].resource"),
    ({"task": "stop", "resource": "r:0", "notify": {"type": "pre", "operation": "stop"}}, "actions[0].notify"),
    ({"task": "notify", "resource": "r:0", "notify": []}, "actions[0].notify"),
    ({"task": "notify", "resource": "r:0", "notify": {"type": "during", "operation": "stop"}},
     "actions[0].notify.type"),
    ({"task": "notify", "resource": "r:0", "notify": {"type": "pre", "operation": "migrate"}},
     "actions[0].notify.operation"),
    ({"task": "notify", "resource": "r:0", "notify": {"type": "pre", "operation": "stop", "stop": [["r:0"]]}},
     "actions[0].notify.stop[0]"),
    ({"task": "notify", "resource": "r:0",
      "notify": {"type": "pre", "operation": "stop", "active": [["r:0", 3]]}}, "actions[0].notify.active[0][1]"),
    ({"task": "notify", "resource": "r:0", "notify": {"type": "pre", "operation": "stop", "all": "n1"}},
     "actions[0].notify.all"),
    ({"task": "notify", "resource": "r:0", "notify": {"type": "pre", "operation": "stop", "inactive": [1]}},
     "actions[0].notify.inactive[0]"),
]


@pytest.mark.parametrize(("action", "field"), BAD)
def test_a_bad_notify_action_is_rejected_naming_the_field(action: dict[str, Any], field: str) -> None:
    raw = json.dumps({"actions": [{"id": 0, "node": "n1", **action}]}).encode()
    with pytest.raises(pl.PlanError, match=r"^plan: ") as err:
        pl.parse(raw)
    assert f"{field}:" in str(err.value)


names = stt.text("abn:0123", min_size=1, max_size=5)
entries = stt.lists(stt.builds(Entry, names, names), max_size=3).map(tuple)
facts = stt.builds(
    NotifyFacts, type=stt.sampled_from(["pre", "post"]), operation=stt.sampled_from(PHASES),
    start=entries, stop=entries, promote=entries, demote=entries, active=entries,
    promoted=entries, unpromoted=entries, inactive=stt.lists(names, max_size=3).map(tuple),
    all_nodes=stt.lists(names, max_size=3).map(tuple), available=stt.lists(names, max_size=3).map(tuple),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts, names, names)
def test_any_notify_action_survives_the_store(f: NotifyFacts, node: str, rsc: str) -> None:
    doc = pl.PlanDoc(epoch=1, leader="n1", created=0.0,
                     actions=(pl.PlanAction(0, "notify", node, rsc, notify=f),))
    assert pl.parse(pl.encode(doc)) == doc
    meta = f.crm_meta()
    assert meta["notify_stop_resource"].split() == [e.resource for e in f.stop]
    assert meta["notify_stop_uname"].split() == [e.node for e in f.stop]
    assert all(value for value in meta.values())  # an empty list is a space, never ""


def test_phases_stay_in_their_own_order_when_the_plan_orders_them_the_other_way() -> None:
    """A plan whose own orderings put a start before a stop of the same clone keeps each phase's
    pre -> operations -> post, and gets no cycle from the order between phases."""
    plan = Plan(actions=[Action(0, "stop", "n1", "c:0"), Action(1, "start", "n2", "c:1")],
                edges=[(1, 0)])
    given_ = NotifyInput(
        (NotifyClone("c", ("c:0", "c:1"), {Entry("c:0", "n1"): "Started"}, ("n1", "n2")),),
        ("n1", "n2"), frozenset({"n1", "n2"}))
    out = add_notifications(plan, given_)
    told = {(a.notify.type, a.notify.operation, a.node): a for a in out.actions if a.notify}
    assert set(told) == {("pre", "stop", "n1"), ("post", "start", "n2")}
    assert out.before(told[("pre", "stop", "n1")], out.actions[0])
    assert out.before(out.actions[1], told[("post", "start", "n2")])
    assert not out.before(out.actions[0], out.actions[1])  # no cycle: stop -> start not added
