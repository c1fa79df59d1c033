"""A recovered instance of a notify=true anonymous clone: the plan's post-stop notifications can be
dropped by a replan after the stop, because the new plan numbers the instance it starts again
differently (found running Pacemaker's rabbitmq-cluster agent under hakeeper: a broker SIGKILLed,
"Recover rabbitmq:1 (q2)" in epoch 6, its stop done, then 13 ms later epoch 7 "Start rabbitmq:2
(q2)": the other nodes never got the post-stop notification that makes them forget the stopped
node. In another run the notifications were claimed first and the leader, waiting for actions in
flight, replanned only after them: a race).

The leader (agent/leader.py and agent/core/leader.py) publishes a new plan when the new plan's work
differs from the current plan's outstanding work, comparing (task, instance, node); an anonymous
clone's instances are interchangeable (st.local_id), so "start rabbitmq:1 on q2" and "start
rabbitmq:2 on q2" are the same work. The leader compares the work as nodes know it
(`st.local_work`, by `st.local_id`), so a renumbering alone publishes no new plan.
"""

from __future__ import annotations

from hakeeper.agent import state as st
from hakeeper.agent.plan import PlanDoc
from hakeeper.placement import schedule
from hakeeper.spec.model import ClusterSpec, ClusterState

SPEC = ClusterSpec.model_validate({
    "cluster": {"stonith-enabled": False},
    "nodes": [{"name": "q1"}, {"name": "q2"}, {"name": "q3"}],
    "resources": {"primitives": [{"id": "rmq", "agent": "ocf:heartbeat:rabbitmq-cluster"}],
                  "clones": [{"id": "rmq-clone", "child": "rmq", "meta": {"notify": True}}]},
})


def _state(*running: tuple[str, str, bool]) -> ClusterState:
    return ClusterState.model_validate(
        {"resources": [{"resource": r, "node": n, "failed": failed} for r, n, failed in running]})


def test_the_recover_plan_has_post_stop_notifications_for_the_others() -> None:
    plan = schedule(SPEC, _state(("rmq:0", "q1", False), ("rmq:1", "q2", True), ("rmq:2", "q3", False)))
    post_stop = sorted(a.node for a in plan.actions
                       if a.task == "notify" and a.notify is not None and (a.notify.type, a.notify.operation)
                       == ("post", "stop"))
    assert post_stop == ["q1", "q3"]


def test_after_the_recover_stop_the_new_plan_is_the_same_work_as_what_is_left() -> None:
    recover = PlanDoc.of(
        schedule(SPEC, _state(("rmq:0", "q1", False), ("rmq:1", "q2", True), ("rmq:2", "q3", False))), 6, "q1", 0.0)
    stop = next(a for a in recover.actions if a.task == "stop")
    done = {a.id: True for a in recover.actions if a.task == "notify" and a.notify is not None
            and a.notify.type == "pre" and a.notify.operation == "stop"}
    done[stop.id] = True
    left = recover.remaining(done)
    assert left == {("start", "rmq:1", "q2")}
    # The store after the stop: q2's instance stopped, the two others running.
    after = PlanDoc.of(schedule(SPEC, _state(("rmq:0", "q1", False), ("rmq:2", "q3", False))), 7, "q1", 0.0)
    # The scheduler may renumber the instance it starts again, but as the nodes know it, it is the
    # same work: the leader keeps the plan, whose post-stop notifications are still to run (else
    # epoch 7 would drop them).
    assert st.local_work(SPEC, after.work()) == st.local_work(SPEC, left) == {("start", "rmq", "q2")}
