"""Clone notifications (placement/notify.py): examples, and properties over random clusters."""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.placement import Plan, schedule
from hakeeper.placement.notify import PHASES, Entry, NotifyFacts
from hakeeper.placement.plan import Action
from hakeeper.placement.simulate import state_from_plan
from hakeeper.spec.model import ClusterSpec, ClusterState

RELAXED = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def notify_spec(nodes: int = 3, *, notify: bool = True, promotable: bool = False,
                stonith: bool = False, clone_max: int | None = None,
                order: str | None = None) -> ClusterSpec:
    """A clone `db-clone` of `db` and a primitive `web`; `order`: web starts after the clone's
    instances do that (start, or promote)."""
    meta: dict[str, Any] = {"notify": notify}
    if promotable:
        meta["promotable"] = True
    if clone_max is not None:
        meta["clone-max"] = clone_max
    return ClusterSpec.model_validate({
        "cluster": {"stonith-enabled": stonith},
        "nodes": [{"name": f"n{i + 1}"} for i in range(nodes)],
        "resources": {"primitives": [{"id": "db", "agent": "ocf:pacemaker:Stateful"},
                                     {"id": "web", "agent": "ocf:pacemaker:Dummy"}],
                      "clones": [{"id": "db-clone", "child": "db", "meta": meta}]},
        "constraints": {"order": [{"id": "db-then-web", "first": "db-clone", "first-action": order,
                                   "then": "web"}] if order else []},
    })


def state(running: dict[str, str], roles: dict[str, str] | None = None,
          **nodes: dict[str, Any]) -> ClusterState:
    """`running`: instance -> node; `roles`: instance -> role; `nodes`: node -> NodeState."""
    roles = roles or {}
    return ClusterState.model_validate({
        "resources": [{"resource": r, "node": n, "role": roles.get(r, "Started")}
                      for r, n in running.items()],
        "nodes": nodes,
    })


def notes(plan: Plan, kind: str | None = None, op: str | None = None) -> list[Action]:
    return [a for a in plan.actions if a.task == "notify" and a.notify is not None
            and (kind is None or a.notify.type == kind) and (op is None or a.notify.operation == op)]


def where(actions: list[Action]) -> list[str]:
    return sorted(a.node for a in actions)


def facts(plan: Plan) -> NotifyFacts:
    found = notes(plan)[0].notify
    assert found is not None
    return found


def test_a_new_clone_starting_is_told_after_the_starts_and_nobody_before() -> None:
    plan = schedule(notify_spec(), ClusterState())
    assert notes(plan, "pre") == []  # nothing is active before: nobody to tell
    post = notes(plan, "post", "start")
    assert where(post) == ["n1", "n2", "n3"]
    starts = [a for a in plan.actions if a.task == "start" and (a.resource or "").startswith("db:")]
    assert all(plan.before(s, p) for s in starts for p in post)
    f = facts(plan)
    assert [e.node for e in f.start] == ["n1", "n2", "n3"] and f.active == () and f.stop == ()
    assert set(f.inactive) == {e.resource for e in f.start}


def test_stopping_one_of_three_tells_all_three_before_and_the_other_two_after() -> None:
    spec = notify_spec()
    before = state({"db:0": "n1", "db:1": "n2", "db:2": "n3"}, n3={"standby": True})
    plan = schedule(spec, before)
    stop = plan.find("stop", "db:2", "n3")
    assert stop is not None
    pre, post = notes(plan, "pre", "stop"), notes(plan, "post", "stop")
    assert where(pre) == ["n1", "n2", "n3"] and where(post) == ["n1", "n2"]
    assert all(plan.before(p, stop) for p in pre) and all(plan.before(stop, p) for p in post)
    meta = post[0].notify.crm_meta() if post[0].notify else {}
    assert meta["notify_type"] == "post" and meta["notify_operation"] == "stop"
    assert meta["notify_key_operation"] == "stopped"
    assert meta["notify_stop_resource"] == "db:2" and meta["notify_stop_uname"] == "n3"
    assert meta["notify_active_resource"] == "db:0 db:1 db:2"
    assert meta["notify_active_uname"] == "n1 n2 n3"
    assert meta["notify_start_uname"] == " "  # Pacemaker's empty list: one space
    assert meta["notify_all_uname"] == "n1 n2 n3"
    assert meta["notify_available_uname"] == "n1 n2 n3"  # standby still allows it (Pacemaker)


def test_a_promotable_move_goes_demote_stop_start_promote_each_with_its_notifications() -> None:
    spec = notify_spec(promotable=True)
    score = {"attributes": {"master-db": "10"}}
    before = state({"db:0": "n1", "db:1": "n2"}, {"db:0": "Promoted", "db:1": "Unpromoted"},
                   n1={"standby": True, **score}, n2={"attributes": {"master-db": "100"}}, n3=score)
    plan = schedule(spec, before)
    f = facts(plan)
    assert f.promoted == (Entry("db:0", "n1"),) and f.unpromoted == (Entry("db:1", "n2"),)
    assert [e.node for e in f.demote] == ["n1"] and [e.node for e in f.stop] == ["n1"]
    assert [e.node for e in f.promote] == ["n2"]
    meta = f.crm_meta()
    assert meta["notify_master_uname"] == meta["notify_promoted_uname"] == "n1"
    assert meta["notify_slave_resource"] == meta["notify_unpromoted_resource"] == "db:1"
    ops = [o for o in PHASES if notes(plan, "pre", o) or notes(plan, "post", o)]
    assert ops == ["demote", "stop", "start", "promote"]
    # Each phase's post-notifications come before the next phase's pre-notifications.
    for first, then in itertools.pairwise(ops):
        for p in notes(plan, "post", first):
            for q in notes(plan, "pre", then):
                assert plan.before(p, q), (p, q)
    assert where(notes(plan, "pre", "demote")) == ["n1", "n2"]
    assert where(notes(plan, "post", "stop")) == ["n2"]
    assert where(notes(plan, "post", "promote")) == where(notes(plan, "pre", "promote"))


def test_a_fenced_node_is_told_nothing_and_the_others_hear_after_the_fence() -> None:
    spec = notify_spec(stonith=True)
    before = state({"db:0": "n1", "db:1": "n2", "db:2": "n3"}, n3={"online": False, "unclean": True})
    plan = schedule(spec, before)
    fence = plan.find("fence", None, "n3")
    assert fence is not None
    assert all(a.node != "n3" for a in notes(plan))
    assert where(notes(plan, "pre", "stop")) == ["n1", "n2"]
    post = notes(plan, "post", "stop")
    assert where(post) == ["n1", "n2"] and all(plan.before(fence, p) for p in post)
    assert [(e.resource, e.node) for e in facts(plan).stop] == [("db:2", "n3")]


def test_nothing_to_say_when_notify_is_off_or_nothing_changes() -> None:
    before = state({"db:0": "n1", "db:1": "n2"}, n2={"standby": True})
    off = schedule(notify_spec(notify=False), before)
    assert off.actions and notes(off) == []
    steady = state({"db:0": "n1", "db:1": "n2", "db:2": "n3"})
    other = schedule(notify_spec(), steady)  # only `web` starts: the clone is not told of it
    assert [(a.task, a.resource) for a in other.actions] == [("start", "web")]


def test_what_follows_the_clone_waits_for_its_post_notifications() -> None:
    plan = schedule(notify_spec(order="start"), ClusterState())
    web = plan.find("start", "web")
    assert web is not None
    post = notes(plan, "post", "start")
    assert len(post) == 3 and all(plan.before(p, web) for p in post)


def test_facts_survive_json_shape() -> None:
    plan = schedule(notify_spec(), state({"db:0": "n1"}))
    data = notes(plan)[0].as_json()
    assert data["task"] == "notify" and data["notify"]["active"] == [["db:0", "n1"]]


# ----- properties over random clusters -----


@st.composite
def scenarios(draw: Any) -> tuple[ClusterSpec, ClusterState]:
    count = draw(st.integers(1, 4))
    names = [f"n{i + 1}" for i in range(count)]
    promotable = draw(st.booleans())
    spec = notify_spec(count, promotable=promotable, stonith=draw(st.booleans()),
                       clone_max=draw(st.none() | st.integers(1, 4)),
                       order=draw(st.sampled_from([None, "start", "promote" if promotable else "stop"])))
    nodes: dict[str, dict[str, Any]] = {}
    for n in names:
        online = draw(st.booleans()) or n == names[0] or draw(st.booleans())
        nodes[n] = {"online": online, "standby": draw(st.integers(0, 3)) == 0,
                    "unclean": not online and draw(st.booleans()),
                    "attributes": {"master-db": str(draw(st.sampled_from([5, 10, 100])))}}
    running: dict[str, str] = {}
    roles: dict[str, str] = {}
    for i, n in enumerate(names):
        if draw(st.booleans()):
            running[f"db:{i}"] = n
            roles[f"db:{i}"] = draw(st.sampled_from(["Promoted", "Unpromoted"])) if promotable \
                else "Started"
    return spec, state(running, roles, **nodes)


def _active_before(plan: Plan) -> set[tuple[str, str]]:
    """The clone's instances active now, as the plan names them (an anonymous clone's instances
    are numbered by the scheduler, not by the state it was given)."""
    return {(r, n) for r, nodes in plan.current.items() if r.startswith("db:") for n in nodes}


def _clone_ops(plan: Plan) -> list[Action]:
    return [a for a in plan.actions if a.task in PHASES and (a.resource or "").startswith("db:")]


def _topological(plan: Plan, rng: random.Random) -> list[Action]:
    preds: dict[int, set[int]] = {a.index: set() for a in plan.actions}
    for a, b in plan.edges:
        preds[b].add(a)
    done: set[int] = set()
    out: list[Action] = []
    while len(out) < len(plan.actions):
        ready = [a for a in plan.actions if a.index not in done and preds[a.index] <= done]
        assert ready, "the plan's orderings have a cycle"
        pick = rng.choice(ready)
        done.add(pick.index)
        out.append(pick)
    return out


@RELAXED
@given(scenarios(), st.randoms(use_true_random=False))
def test_every_notification_reaches_an_active_instance_in_its_order(
        case: tuple[ClusterSpec, ClusterState], rng: random.Random) -> None:
    """Carried out in any order the plan allows, each notification runs where its instance is
    active at that moment, every pre-notification of a kind precedes every operation of that
    kind, and every post-notification follows them."""
    spec, before = case
    plan = schedule(spec, before)
    active = _active_before(plan)
    for action in _topological(plan, rng):
        if action.task == "stop":
            active.discard((action.resource or "", action.node))
        elif action.task == "start":
            active.add((action.resource or "", action.node))
        elif action.task == "notify":
            assert (action.resource, action.node) in active, action
    ops = _clone_ops(plan)
    for note in notes(plan):
        assert note.notify is not None
        for op in ops:
            if op.task != note.notify.operation:
                continue
            if note.notify.type == "pre":
                assert plan.before(note, op), (note, op)
            else:
                assert plan.before(op, note), (op, note)


@RELAXED
@given(scenarios())
def test_notifications_go_exactly_where_an_instance_is_active_around_each_kind(
        case: tuple[ClusterSpec, ClusterState]) -> None:
    spec, before = case
    plan = schedule(spec, before)
    gone = {a.node for a in plan.actions if a.task == "fence"}
    reachable = {n for n, s in before.nodes.items() if s.online and not s.unclean} - gone
    active = _active_before(plan)
    ops = _clone_ops(plan)
    for phase in PHASES:
        mine = [o for o in ops if o.task == phase]
        after = set(active)
        for o in mine:
            if phase == "stop":
                after.discard((o.resource or "", o.node))
            elif phase == "start":
                after.add((o.resource or "", o.node))
        want_pre = sorted(n for _r, n in active if n in reachable) if mine else []
        want_post = sorted(n for _r, n in after if n in reachable) if mine else []
        assert where(notes(plan, "pre", phase)) == want_pre, phase
        assert where(notes(plan, "post", phase)) == want_post, phase
        active = after
    for note in notes(plan):
        f = note.notify
        assert f is not None
        assert {(e.resource, e.node) for e in f.stop} == {(o.resource, o.node) for o in ops
                                                           if o.task == "stop"}
        assert {(e.resource, e.node) for e in f.active} == _active_before(plan)


@RELAXED
@given(scenarios())
def test_notify_adds_notifications_and_changes_nothing_else(
        case: tuple[ClusterSpec, ClusterState]) -> None:
    spec, before = case
    quiet = spec.model_copy(deep=True)
    quiet.resources.clones[0].meta.notify = False
    told, silent = schedule(spec, before), schedule(quiet, before)
    assert notes(silent) == []
    assert [a for a in told.actions if a.task != "notify"] == silent.actions
    assert {e for e in told.edges if e[0] < len(silent.actions) and e[1] < len(silent.actions)} \
        >= set(silent.edges)
    if not _clone_ops(told):
        assert notes(told) == []
    # What the plan orders after an operation of the clone also waits for the post-notifications
    # of that kind of operation.
    for a, b in silent.edges:
        first, then = silent.actions[a], silent.actions[b]
        if first in _clone_ops(silent) and then not in _clone_ops(silent):
            for post in notes(told, "post", first.task):
                assert told.before(post, told.actions[b]), (post, then)
    # Once carried out, nothing changes: nothing more to tell.
    after = state_from_plan(spec, told, before)
    again = schedule(spec, after)
    assert not _clone_ops(again) or notes(again)
    if not again.actions:
        assert notes(again) == []
