"""The leader's pure core: leadership, the plan compare-and-set, fencing, driven by hand."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stt

from hakeeper.agent import plan as pl
from hakeeper.agent import state as st
from hakeeper.agent.core import types as t
from hakeeper.agent.core.leader import FENCE_RETRY, RETRY_AFTER_ERROR, STEP_INTERVAL, LeaderCore, LeaderView
from hakeeper.coord.store import Compare, Delete, Put, absent
from hakeeper.placement import schedule
from hakeeper.spec import parse_spec

K = st.Keys("u")
SPEC = parse_spec("""
cluster: {name: u}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: r, agent: process, params: {command: sleep 1}}
    - {id: f1, agent: "stonith:fence_dummy", params: {pcmk_host_list: "a"}}
    - {id: f2, agent: "stonith:fence_dummy", params: {pcmk_host_list: "a", pcmk_delay_base: "2"}}
""")
LEASE = 7


def values(**docs: object) -> dict[str, bytes]:
    out = {K.prefix + "config": st.dumps({"version": 1, "spec": SPEC.model_dump(mode="json")})}
    out.update({K.prefix + k: v if isinstance(v, bytes) else st.dumps(v) for k, v in docs.items()})
    return out


def view(vals: Mapping[str, bytes], suspects: frozenset[str] = frozenset(), healthy: bool = True) -> LeaderView:
    return LeaderView(values=vals, lease=LEASE, healthy=healthy, suspects=suspects, changed=True)


def one(effects: list[t.Effect], kind: type) -> t.Effect:
    found = [e for e in effects if isinstance(e, kind)]
    assert len(found) == 1, effects
    return found[0]


def decide(core: LeaderCore, effects: list[t.Effect], now: float) -> list[t.Effect]:
    """Answer the Decide effect with the real scheduler."""
    d = one(effects, t.Decide)
    assert isinstance(d, t.Decide)
    return core.handle(now, t.Decided(d.token, schedule(d.spec, d.state), 0.01))


def lead(core: LeaderCore, vals: Mapping[str, bytes], now: float = 100.0) -> list[t.Effect]:
    """One step as the leader already elected: the effects after the scheduler answered."""
    effects = core.handle(now, view(vals))
    if any(isinstance(e, t.Campaign) for e in effects):
        c = one(effects, t.Campaign)
        effects = core.handle(now, t.TxnDone(c.token, True))  # type: ignore[union-attr]
    return decide(core, effects, now)


def test_without_a_healthy_lease_it_does_nothing() -> None:
    core = LeaderCore("a", "u")
    assert core.handle(0.0, view(values(), healthy=False)) == []
    assert not core.is_leader


def test_it_campaigns_then_publishes_by_compare_and_set() -> None:
    core = LeaderCore("b", "u")
    vals = values(**{"members/b": {"probed": True}})
    effects = core.handle(10.0, view(vals))
    campaign = one(effects, t.Campaign)
    assert campaign == t.Campaign(campaign.token, LEASE)  # type: ignore[union-attr]
    effects = core.handle(10.0, t.TxnDone(campaign.token, True))  # type: ignore[union-attr]
    assert t.Emit("leader", "b is the leader") in effects and core.is_leader
    effects = decide(core, effects, 10.0)
    publish = one(effects, t.Txn)
    assert isinstance(publish, t.Txn) and publish.why == "publish"
    assert publish.compares == (Compare(K.leader, "value", "==", b"b"), absent(K.plan), absent(K.claims))
    put, delete = publish.ops
    assert isinstance(put, Put) and put.key == K.plan and delete == Delete(K.done, prefix=True)
    doc = pl.parse(put.value)
    assert doc.epoch == 1 and doc.leader == "b" and doc.created == 10.0
    assert ("start", "r", "b") in doc.work()
    # Published: the event says so; refused (the plan or the claims changed): nothing.
    emitted = core.handle(10.0, t.TxnDone(publish.token, True))
    assert [e.kind for e in emitted if isinstance(e, t.Emit)] == ["plan"]
    assert emitted[0].extra["epoch"] == 1  # type: ignore[union-attr]


def test_a_follower_does_not_campaign_while_another_node_holds_the_key() -> None:
    core = LeaderCore("b", "u")
    held = values(leader=b"a", **{"members/a": {"probed": True}, "members/b": {"probed": True}})
    assert core.handle(10.0, view(held)) == [] and not core.is_leader
    assert core.handle(11.5, view(held)) == []  # nor a second later
    # The key went (a's lease ended): the next step campaigns.
    gone = {k: v for k, v in held.items() if k != K.leader}
    assert isinstance(one(core.handle(11.6, view(gone)), t.Campaign), t.Campaign)
    # Its own name under an earlier lease: it campaigns (election.campaign tells whose it is).
    mine = LeaderCore("a", "u")
    assert isinstance(one(mine.handle(10.0, view(held)), t.Campaign), t.Campaign)


def test_a_refused_publish_says_nothing_and_the_next_step_comes_with_the_next_change() -> None:
    core = LeaderCore("b", "u")
    publish = one(lead(core, values(**{"members/b": {"probed": True}})), t.Txn)
    assert core.handle(100.0, t.TxnDone(publish.token, False)) == []
    assert any(isinstance(e, t.Campaign) for e in core.handle(100.0, view(values())))


def test_nothing_is_published_while_an_action_runs_nor_when_the_work_is_outstanding() -> None:
    core = LeaderCore("b", "u")
    base = {"members/b": {"probed": True}}
    running = values(**base, **{"running/b": {"epoch": 1, "id": 0}})
    assert lead(core, running) == []
    # The plan already holds exactly the work the scheduler wants: kept.
    publish = one(lead(core, values(**base)), t.Txn)
    core.handle(100.0, t.TxnDone(publish.token, True))  # type: ignore[union-attr]
    stored = values(**base, plan=publish.ops[0].value)  # type: ignore[union-attr]
    assert lead(core, stored, 101.0) == []
    # Its action failed: a new epoch, even for the same work.
    failed = values(**base, plan=publish.ops[0].value, **{"done/1/0": {"ok": False}})  # type: ignore[union-attr]
    again = one(lead(core, failed, 102.0), t.Txn)
    assert pl.parse(again.ops[0].value).epoch == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", st.dumps({"epoch": 41, "actions": [{"id": 0, "task": "reboot", "node": "a"}]}), b"[]"],
)
def test_an_unreadable_plan_is_replaced_and_said_so(raw: bytes, caplog: pytest.LogCaptureFixture) -> None:
    core = LeaderCore("b", "u")
    # Nothing to do at all (no node is online): a new plan is still written over the bad one.
    vals = values(plan=raw, **{"done/9/0": {"ok": True}})
    with caplog.at_level(logging.ERROR, "hakeeper.leader"):
        publish = one(lead(core, vals), t.Txn)
    assert any("plan: " in r.getMessage() for r in caplog.records)
    assert publish.compares[1] == Compare(K.plan, "value", "==", raw)  # type: ignore[union-attr]
    doc = pl.parse(publish.ops[0].value)  # type: ignore[union-attr]
    # Newer than any epoch it can find: the bad plan's own, or the done markers'.
    assert doc.epoch == (42 if b"41" in raw else 10)
    assert doc.actions == ()
    emitted = core.handle(100.0, t.TxnDone(publish.token, True))  # type: ignore[union-attr]
    assert "replaces an unreadable plan" in emitted[-1].message  # type: ignore[union-attr]


def test_a_suspected_leader_is_taken_over_by_compare_and_set() -> None:
    core = LeaderCore("b", "u")
    vals = values(leader=b"a", **{"members/a": {}, "members/b": {}})
    effects = core.handle(5.0, view(vals, suspects=frozenset({"a"})))
    take = one(effects, t.Txn)
    assert take.compares == (Compare(K.leader, "value", "==", b"a"),)  # type: ignore[union-attr]
    assert take.ops == (Put(K.leader, b"b", LEASE),)  # type: ignore[union-attr]
    effects = core.handle(5.0, t.TxnDone(take.token, True))  # type: ignore[union-attr]
    assert core.is_leader and t.Emit("leader", "b is the leader (a's heartbeat stopped)") in effects
    # Someone else holds the key and is not suspected: a follower stays one, without asking.
    other = LeaderCore("b", "u")
    assert other.handle(5.0, view(vals)) == [] and not other.is_leader


def fence_plan(core: LeaderCore) -> dict[str, bytes]:
    """A lost node `a` that ran r: the published plan fences it; returns the values with it."""
    base = {"members/b": {"probed": True}, "status/a/r": {"role": "Started"}}
    publish = one(lead(core, values(**base)), t.Txn)
    doc = pl.parse(publish.ops[0].value)  # type: ignore[union-attr]
    assert doc.actions[0].work == ("fence", "", "a") and ("start", "r", "b") in doc.work()
    core.handle(100.0, t.TxnDone(publish.token, True))  # type: ignore[union-attr]
    return values(**base, leader=b"b", plan=publish.ops[0].value)  # type: ignore[union-attr]


def test_fencing_tries_each_device_then_retries_later() -> None:
    core = LeaderCore("b", "u")
    vals = fence_plan(core)
    first = one(lead(core, vals, 100.0), t.Fence)
    assert (first.victim, first.device, first.delay) == ("a", "f1", 0.0)  # type: ignore[union-attr]
    # Nothing more for `a` while its fencing is in flight.
    assert not any(isinstance(e, t.Fence) for e in lead(core, vals, 101.0))
    effects = core.handle(102.0, t.FenceDone(first.token, False, "timed out", 1.0))  # type: ignore[union-attr]
    assert t.Emit("fence-failed", "f1 could not fence a: timed out") in effects
    second = one(effects, t.Fence)
    assert (second.device, second.delay) == ("f2", 2.0)  # type: ignore[union-attr]
    core.handle(103.0, t.FenceDone(second.token, False, "no", 1.0))  # type: ignore[union-attr]
    assert not any(isinstance(e, t.Fence) for e in lead(core, vals, 103.0 + FENCE_RETRY - 0.5))
    retry = one(lead(core, vals, 103.0 + FENCE_RETRY + 0.5), t.Fence)
    assert retry.device == "f1"  # type: ignore[union-attr]


def test_a_fence_is_recorded_with_the_reports_withdrawn_in_one_transaction() -> None:
    core = LeaderCore("b", "u")
    vals = fence_plan(core)
    fence = one(lead(core, vals), t.Fence)
    record = one(core.handle(100.0, t.FenceDone(fence.token, True, "off", 0.5)), t.Txn)  # type: ignore[union-attr]
    assert isinstance(record, t.Txn) and record.compares == (Compare(K.leader, "value", "==", b"b"),)
    keys = {op.key for op in record.ops}
    assert {K.fence + "a", K.status + "a/", K.attrs + "a/", K.done_of(1, 0)} <= keys
    done = core.handle(100.0, t.TxnDone(record.token, True))
    assert [e.kind for e in done if isinstance(e, t.Emit)] == ["fenced"]
    assert not core.fencing


def test_a_recorded_fence_is_not_run_again_from_a_view_behind_the_store() -> None:
    """The fence is recorded (its done marker with it) but the leader's view does not show the
    marker yet (its watch is moving to another member): the next steps fence nobody. A soak run
    fenced the same node 27 times in 1.4 s that way. A new plan fences again if it says so."""
    core = LeaderCore("b", "u")
    vals = fence_plan(core)
    fence = one(lead(core, vals), t.Fence)
    record = one(core.handle(100.0, t.FenceDone(fence.token, True, "off", 0.5)), t.Txn)  # type: ignore[union-attr]
    core.handle(100.1, t.TxnDone(record.token, True))
    for now in (100.2, 101.0, 100.0 + FENCE_RETRY + 1):
        assert not any(isinstance(e, t.Fence) for e in lead(core, vals, now))
    # Its view catches up: the marker is there.
    caught_up = {**vals, K.done_of(1, 0): st.dumps({"ok": True, "fenced": "a"})}
    assert not any(isinstance(e, t.Fence) for e in lead(core, caught_up, 120.0))


def test_losing_leadership_cancels_fencing_in_flight() -> None:
    core = LeaderCore("b", "u")
    vals = fence_plan(core)
    fence = one(lead(core, vals), t.Fence)
    effects = core.handle(200.0, view(vals, healthy=False))
    assert effects == [t.Cancel(fence.token)] and not core.is_leader  # type: ignore[union-attr]
    # Its answer, should one still come, is ignored.
    assert core.handle(200.0, t.FenceDone(fence.token, True, "off", 1.0)) == []  # type: ignore[union-attr]


def test_a_store_error_ends_the_step_and_the_next_waits_a_little() -> None:
    core = LeaderCore("b", "u")
    c = one(core.handle(0.0, view(values())), t.Campaign)
    assert core.handle(0.0, t.TxnDone(c.token, False, "unavailable")) == []  # type: ignore[union-attr]
    assert core.handle(RETRY_AFTER_ERROR / 2, view(values())) == []
    assert core.deadline() >= RETRY_AFTER_ERROR
    assert any(isinstance(e, t.Campaign) for e in core.handle(RETRY_AFTER_ERROR, view(values())))


def test_without_changes_it_steps_once_a_second() -> None:
    core = LeaderCore("b", "u")
    vals = values(leader=b"b", **{"members/b": {"probed": True}})
    publish = one(lead(core, vals, 0.0), t.Txn)
    core.handle(0.0, t.TxnDone(publish.token, True))  # type: ignore[union-attr]
    quiet = LeaderView(vals, LEASE, True, frozenset(), changed=False)
    assert core.handle(0.5, quiet) == []
    assert any(isinstance(e, t.Decide) for e in core.handle(STEP_INTERVAL, quiet))


def test_expired_fail_counts_go_first() -> None:
    spec = SPEC.model_copy(deep=True)
    spec.resources.primitives[0].meta.failure_timeout = 60
    vals = values(**{"fail/b/r": {"count": 1, "last": 10.0}})
    vals[K.config] = st.dumps({"version": 1, "spec": spec.model_dump(mode="json")})
    core = LeaderCore("b", "u")
    c = one(core.handle(100.0, view(vals)), t.Campaign)
    txn = one(core.handle(100.0, t.TxnDone(c.token, True)), t.Txn)  # type: ignore[union-attr]
    assert txn.ops == (Delete(K.fail_of("b", "r")),)  # type: ignore[union-attr]
    assert [e.kind for e in core.handle(100.0, t.TxnDone(txn.token, True))] == ["failure-timeout"]  # type: ignore


ANSWERS = stt.sampled_from(["ok", "refused", "error"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stt.lists(stt.tuples(stt.sampled_from(["view", "lost", "answer", "fence"]), ANSWERS), max_size=25))
def test_every_leader_write_is_guarded_and_one_step_runs_at_a_time(script: list[tuple[str, str]]) -> None:
    """Whatever the order of views and answers: a plan is only written under the three guards,
    a fence only recorded as the leader, at most one answer awaited per step, and never two
    devices at work on the same victim."""
    core = LeaderCore("b", "u")
    base = {"members/b": {"probed": True}, "status/a/r": {"role": "Started"}}
    publish = one(lead(core, values(**base)), t.Txn)
    core.handle(100.0, t.TxnDone(publish.token, True))  # type: ignore[union-attr]
    vals = values(**base, leader=b"b", plan=publish.ops[0].value)  # type: ignore[union-attr]
    waiting: list[t.Effect] = []
    fencing: dict[int, str] = {}
    now = 200.0
    for what, how in script:
        now += 0.7
        if what == "view" or what == "lost":
            effects = core.handle(now, view(vals, healthy=what == "view"))
        elif what == "answer" and waiting:
            e = waiting.pop(0)
            if isinstance(e, t.Decide):
                effects = core.handle(now, t.Decided(e.token, schedule(e.spec, e.state), 0.0))
            else:
                effects = core.handle(now, t.TxnDone(e.token, how == "ok", "x" if how == "error" else None))  # type: ignore
        elif what == "fence" and fencing:
            token = next(iter(fencing))
            del fencing[token]
            effects = core.handle(now, t.FenceDone(token, how == "ok", how, 0.1))
        else:
            continue
        for e in effects:
            if isinstance(e, t.Txn) and e.why == "publish":
                assert len(e.compares) == 3 and e.compares[0] == Compare(K.leader, "value", "==", b"b")
            if isinstance(e, t.Txn) and e.why == "fenced":
                assert e.compares == (Compare(K.leader, "value", "==", b"b"),)
            if isinstance(e, t.Fence):
                assert e.victim not in fencing.values()
                fencing[e.token] = e.victim
            if isinstance(e, t.Cancel):
                fencing.pop(e.token, None)
            if isinstance(e, (t.Txn, t.Campaign, t.Decide)) and not (isinstance(e, t.Txn) and e.why == "prune events"):
                waiting.append(e)
        step_waits = [e for e in waiting if not (isinstance(e, t.Txn) and e.why == "fenced")]
        assert len(step_waits) <= 1


def test_a_replan_that_only_renumbers_an_anonymous_clone_keeps_the_plan() -> None:
    """An anonymous clone's instances are interchangeable: the current plan saying `start r:7 on
    a` is the work the scheduler now calls `start r:0 on a`. Publishing a new plan for it would
    drop what the current plan still has to run (a clone's post-stop notifications: seen with
    rabbitmq-cluster after a recover)."""
    import json

    spec = parse_spec("cluster: {name: u}\nnodes: [{name: a}, {name: b}]\nresources:\n  primitives:\n"
                      "    - {id: r, agent: process, params: {command: sleep 1}}\n"
                      "  clones: [{id: r-clone, child: r}]\n")
    base = {K.prefix + "config": st.dumps({"version": 1, "spec": spec.model_dump(mode="json")}),
            K.member("a"): st.dumps({"probed": True}), K.member("b"): st.dumps({"probed": True})}
    core = LeaderCore("b", "u")
    publish = one(lead(core, base), t.Txn)
    core.handle(100.0, t.TxnDone(publish.token, True))  # type: ignore[union-attr]
    doc = json.loads(publish.ops[0].value)  # type: ignore[union-attr]
    starts = {a["node"] for a in doc["actions"] if a["task"] == "start"}
    assert starts == {"a", "b"}

    def renumbered(number_of: dict[str, int]) -> bytes:
        for action in doc["actions"]:
            if action.get("resource", "").startswith("r:"):
                action["resource"] = f"r:{number_of[action['node']]}"
        return json.dumps(doc).encode()

    assert lead(core, {**base, K.plan: renumbered({"a": 7, "b": 8})}, 101.0) == []
    # A plan with other work (nothing for b) is replaced.
    doc["actions"] = [a for a in doc["actions"] if a.get("node") != "b"]
    assert one(lead(core, {**base, K.plan: json.dumps(doc).encode()}, 102.0), t.Txn).why == "publish"  # type: ignore[union-attr]
