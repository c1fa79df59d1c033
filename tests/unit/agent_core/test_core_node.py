"""The node's own decisions (hakeeper.agent.core.node), which the daemon and the simulation's node
both call: the claim and report transactions run against the in-process store
(hakeeper.coord.memory, with etcd's transaction semantics), over any task and any result."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as stt

from hakeeper.agent import state as st
from hakeeper.agent.core import node as nc
from hakeeper.agent.plan import PlanAction
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import Put
from hakeeper.resources.result import Result, Status
from hakeeper.spec import parse_spec

K = st.Keys("n")
SPEC = parse_spec("""
cluster: {name: n}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: first, agent: process, params: {command: sleep 1}}
    - {id: db, agent: "ocf:pacemaker:Stateful"}
    - {id: last, agent: process, params: {command: sleep 1}}
""")
PLAN = st.dumps({"epoch": 4, "actions": []})
TASKS = ("start", "stop", "promote", "demote")
results = stt.builds(lambda status, rc: Result(status, rc, "out"), stt.sampled_from(list(Status)), stt.integers(0, 9))


async def _claim_and_report(
    task: str, res: Result, lease_lost: bool, old_fail: int
) -> tuple[dict[str, bytes], nc.Report]:
    store = MemoryStore()
    lease = await store.grant(10)
    await store.txn([], [Put(K.plan, PLAN), Put(K.fail_of("a", "db"), st.dumps({"count": old_fail}))])
    action = PlanAction(0, task, "a", "db:0")  # type: ignore[arg-type]
    claim = nc.claim(K, "a", PLAN, 4, action, lease, "db", True, None, 100.0)
    assert (await store.txn(list(claim.compares), list(claim.ops))).succeeded
    if lease_lost:
        await store.revoke(lease)
    running = claim.running
    report = nc.action_report(K, "a", SPEC, 4, action, "db", res, running, True, None, old_fail, False, False, 101.0)
    landed = await store.txn([report.guard], list(report.ops))
    assert landed.succeeded is (not lease_lost)
    if not lease_lost:  # done (and reported): never claimed again
        assert not (await store.txn(list(claim.compares), list(claim.ops))).succeeded
    kvs, _ = await store.get_prefix(K.prefix)
    return {kv.key: kv.value for kv in kvs}, report


@given(stt.sampled_from(TASKS), results, stt.booleans(), stt.integers(0, 5))
def test_a_report_lands_only_while_its_claim_stands_and_says_what_the_result_means(
    task: str, res: Result, lease_lost: bool, old_fail: int
) -> None:
    values, report = asyncio.run(_claim_and_report(task, res, lease_lost, old_fail))
    ok = res.ok_for(task)
    assert report.ok is ok
    status = st.loads(values.get(K.status_of("a", "db")))
    if lease_lost:
        # Refused: nothing the report says is in the store, the claim's pending report stands.
        assert K.done_of(4, 0) not in values
        assert st.loads(values[K.fail_of("a", "db")])["count"] == old_fail
        if task in ("start", "promote"):
            assert status["pending"] in ("Unpromoted", "Promoted")
        return
    assert st.loads(values[K.done_of(4, 0)])["ok"] is ok
    assert K.running_of("a") not in values  # the claim is released
    fail = st.loads(values[K.fail_of("a", "db")])["count"]
    assert (fail > old_fail) is (not ok)
    if ok and task == "stop":
        assert status is None and report.hosting == nc.Hosting(running=False, promoted=False)
    elif ok:
        assert "pending" not in status and not status.get("failed")
        assert (status["role"] == "Promoted") is (task == "promote" or res.status is Status.PROMOTED)
        assert report.hosting.running is True
        assert report.monitor == ("Promoted" if task == "promote" else "Started")
    else:
        assert status["failed"] and report.hosting == nc.Hosting() and report.monitor is None
        # A failed demote of an instance that did not stop is still promoted (demote it again).
        if task == "demote":
            assert (status["role"] == "Promoted") is (res.status is not Status.NOT_RUNNING)


def test_a_claim_is_refused_once_the_plan_changed() -> None:
    async def scenario() -> bool:
        store = MemoryStore()
        lease = await store.grant(10)
        await store.put(K.plan, PLAN)
        claim = nc.claim(K, "a", PLAN, 4, PlanAction(0, "start", "a", "first"), lease, "first", False, None, 1.0)
        await store.put(K.plan, st.dumps({"epoch": 5, "actions": []}))
        return (await store.txn(list(claim.compares), list(claim.ops))).succeeded

    assert asyncio.run(scenario()) is False


@given(results, stt.booleans(), stt.booleans())
def test_a_probe_reports_what_it_found(res: Result, promotable: bool, orphan: bool) -> None:
    found = nc.probe_report(K, "a", "db", res, promotable, None, orphan, 1.0)
    if res.running:
        doc = st.loads(found.op.value)  # type: ignore[union-attr]
        assert found.hosting.running is True and found.monitor == doc["role"]
        assert doc["role"] == (
            "Promoted" if res.status is Status.PROMOTED else "Unpromoted" if promotable else "Started"
        )
    elif res.stopped:
        assert found.hosting == nc.Hosting(running=False, promoted=False) and found.forget is orphan
    else:  # unknown: keep believing what was believed, report the failure
        assert found.hosting == nc.Hosting() and st.loads(found.op.value)["failed"]  # type: ignore[union-attr]


@given(stt.sampled_from(list(Status)))
def test_only_a_clean_not_running_takes_a_resource_off_what_runs_here(status: Status) -> None:
    running, promoted = {"db"}, {"db"}
    nc.monitor_hosting(status).apply("db", running, promoted)
    assert ("db" in running) is (status is not Status.NOT_RUNNING)


@given(stt.sets(stt.sampled_from(["first", "db", "last", "gone", "old"])))
def test_the_local_stop_order_is_orphans_first_then_reverse_definition_order(running: set[str]) -> None:
    order = nc.stop_order(SPEC, running)
    assert sorted(order) == sorted(running)
    rank = {"gone": 0, "old": 0, "last": 1, "db": 2, "first": 3}
    assert [rank[r] for r in order] == sorted(rank[r] for r in order)
