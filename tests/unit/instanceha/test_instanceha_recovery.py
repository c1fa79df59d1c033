"""The evacuation engine's decisions (instanceha/recovery.py): examples, then a simulation with
crashes, refusals, lost quorum and hosts coming back, checked against what the fake Nova saw."""

from __future__ import annotations

import contextlib
import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from ihasim import Crash, Engine, FakeNova, FakeStore, Server
from ihasim import settings as make_settings

from hakeeper.instanceha import recovery as rc
from hakeeper.instanceha.model import InstanceState, Phase, Recovery

FENCE_REV = 200


def lab(n: int = 4, **kw: object) -> tuple[FakeNova, FakeStore, Engine]:
    nova = FakeNova(hosts=["c1", "c2", "c3"], up={"c2", "c3"})
    for i in range(n):
        nova.servers[f"vm{i}"] = Server(f"vm{i}", "c1", ha=i % 2 == 1)
    store = FakeStore()
    return nova, store, Engine("e1", store, nova, make_settings(**kw))


def fenced(nova: FakeNova) -> dict[str, rc.Fence]:
    nova.fenced.add("c1")
    return {"c1": rc.Fence(FENCE_REV, True, 1000.0)}


def run(
    engine: Engine,
    fences: dict[str, rc.Fence],
    now: float,
    rounds: int = 10,
    members: dict[str, int] | None = None,
    quorum: bool = True,
) -> float:
    for _ in range(rounds):
        engine.round(engine.world(now, fences, members or {"c2": 50, "c3": 51}, quorum))
        engine.nova.progress()
        now += 1.0
    return now


def the_recovery(store: FakeStore) -> Recovery:
    [(rec, _)] = store.records.values()
    return rec


def test_nothing_happens_before_the_fence() -> None:
    nova, store, engine = lab()
    run(engine, {}, 1000.0)
    run(engine, {"c1": rc.Fence(FENCE_REV, False, 1000.0)}, 1000.0)  # a fence that failed
    assert store.records == {} and not nova.forced and all(s.evacuations == 0 for s in nova.servers.values())


def test_fenced_host_is_forced_down_and_every_instance_evacuated_once() -> None:
    nova, store, engine = lab(6)
    run(engine, fenced(nova), 1000.0)
    rec = the_recovery(store)
    assert rec.phase == Phase.DONE and rec.count(InstanceState.EVACUATED) == 6
    assert "c1" in nova.forced
    assert [s.evacuations for s in nova.servers.values()] == [1] * 6
    assert all(s.host in ("c2", "c3") and s.status == "ACTIVE" for s in nova.servers.values())
    assert nova.violations == []


def test_ha_instances_go_first_and_parallelism_is_bounded() -> None:
    nova, _store, engine = lab(6, parallel=2)
    fences = fenced(nova)
    actions: list[rc.Action] = []
    now = 1000.0
    for _ in range(4):
        actions += engine.round(engine.world(now, fences, {}, True))
        now += 1
    evacuated = [a.instance for a in actions if isinstance(a, rc.Evacuate)]
    assert evacuated[:2] == ["vm1", "vm3"]  # the tagged ones
    assert len(evacuated) == 2  # two calls per round at most: nothing settles without progress


def test_a_host_that_joined_again_after_the_fence_is_not_evacuated() -> None:
    nova, store, engine = lab()
    run(engine, fenced(nova), 1000.0, members={"c1": FENCE_REV + 5})
    assert store.records == {} and not nova.forced


def test_no_quorum_no_decision() -> None:
    nova, _store, engine = lab()
    world = engine.world(1000.0, fenced(nova), {}, quorum=False)
    assert rc.decide(world) == []


def test_refusals_are_retried_then_reported_never_looped() -> None:
    nova, store, engine = lab(1, retries=2)
    nova.refuse_next = 10
    run(engine, fenced(nova), 1000.0, rounds=20)
    rec = the_recovery(store)
    inst = rec.instances[0]
    assert rec.phase == Phase.FAILED and inst.state == InstanceState.FAILED
    assert inst.attempts == 2 and "No valid host" in inst.reason
    assert nova.refuse_next == 8  # two calls, no more


def test_an_evacuation_nova_fails_later_is_retried_once_more() -> None:
    nova, store, engine = lab(1, retries=2)
    nova.fail_async_next = 1
    run(engine, fenced(nova), 1000.0, rounds=10)
    rec = the_recovery(store)
    assert rec.phase == Phase.DONE and nova.servers["vm0"].evacuations == 2 and nova.servers["vm0"].rebuilds == 1


def test_a_listing_asked_before_the_evacuation_does_not_count_as_nova_giving_up() -> None:
    # Seen in the demo: a slow listing, asked before the evacuate call was accepted, still showed
    # the instance idle on the dead host; read as Nova giving up, it cost an attempt.
    nova, store, engine = lab(2, retries=1)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    now = 1000.0
    while not any(i.state == InstanceState.ISSUED for r, _ in store.records.values() for i in r.instances):
        engine.round(engine.world(now, fences, members, True))
        now += 1.0
    engine.round(engine.world(now, fences, members, True, view="stale"))
    assert nova.violations == []
    rec = the_recovery(store)
    assert all(i.state != InstanceState.FAILED and i.attempts == 1 for i in rec.instances), rec.instances
    run(engine, fences, now + 1)
    assert the_recovery(store).phase == Phase.DONE
    assert all(x.evacuations == 1 and x.rebuilds == 1 for x in nova.servers.values())


def test_a_call_nova_answers_too_late_is_never_called_again() -> None:
    # The withdrawn faster pace, in test_evacuation's engine-killed test: an evacuate call whose
    # answer did not come in time (a read timeout) counted as a refused attempt; the next round's
    # view still showed the instance idle (Nova had not got to the request yet), so it was called
    # again, and Nova refused the second call once it had acted on the first.
    nova, store, engine = lab(1, retries=3)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    for _ in range(3):  # begin, force down, list
        engine.round(engine.world(1000.0, fences, members, True))
    nova.hold_next = 1
    engine.round(engine.world(1000.0, fences, members, True))  # the call: no answer
    engine.round(engine.world(1001.0, fences, members, True))  # Nova idle yet: within the grace
    engine.round(engine.world(1002.0, fences, members, True, view="paused"))
    nova.deliver(1003.0, everything=True)  # Nova gets to it
    run(engine, fences, 1010.0)
    assert nova.violations == [], nova.violations
    assert nova.servers["vm0"].evacuations == 1 and the_recovery(store).phase == Phase.DONE
    assert the_recovery(store).instances[0].attempts == 1
    assert "no answer" in the_recovery(store).instances[0].reason or not the_recovery(store).instances[0].reason


def test_a_claim_is_judged_only_from_a_view_asked_after_its_grace() -> None:
    # Found by the simulation: an engine died with its request sent; a listing asked before Nova got
    # to it still showed the instance idle with no evacuation, and, read once the claim was past its
    # grace, it sent a second call while Nova rebuilt the instance from the first.
    nova, store, engine = lab(1, retries=2)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    for _ in range(3):
        engine.round(engine.world(1000.0, fences, members, True))
    with contextlib.suppress(Crash):
        engine.round(engine.world(1000.0, fences, members, True), crash_after_send=True)
    successor = Engine("e2", store, nova, engine.settings)
    successor.round(successor.world(1000.0, fences, members, True))  # its view: Nova not there yet
    nova.deliver(1005.0)
    successor.round(successor.world(1005.0, fences, members, True, view="stale"))
    assert nova.violations == [], nova.violations
    run(successor, fences, 1006.0)
    assert nova.violations == [] and nova.servers["vm0"].evacuations == 1
    assert the_recovery(store).phase == Phase.DONE


def test_a_rebuild_finishing_on_the_target_is_not_nova_giving_up() -> None:
    # The cause of the double calls seen with the faster pace (test_evacuation's engine-killed test,
    # 400 "Compute service of compute-1 is still in use"): the target compute sets the rebuilt
    # instance ACTIVE with no task, then moves its host under its resource lock; a listing in between
    # showed it idle on the dead host, which the engine took for Nova giving up, and called again.
    nova, store, engine = lab(1, retries=3)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    for now in (1000.0, 1000.0, 1000.0, 1000.0):  # begin, force down, list, the call
        engine.round(engine.world(now, fences, members, True))
    nova.progress()  # rebuilt: ACTIVE, no task, still on c1
    assert nova.servers["vm0"].finishing and nova.servers["vm0"].host == "c1"
    engine.round(engine.world(1001.0, fences, members, True))
    assert nova.violations == [], nova.violations
    run(engine, fences, 1002.0)
    assert nova.violations == [] and nova.servers["vm0"].evacuations == 1
    rec = the_recovery(store)
    assert rec.phase == Phase.DONE and rec.instances[0].attempts == 1


def test_an_evacuation_that_failed_quietly_is_tried_again() -> None:
    # A failed claim on the target leaves the instance ACTIVE on the dead host with no task; only
    # the migration record says "failed".
    nova, store, engine = lab(1, retries=2)
    nova.fail_quiet_next = 1
    run(engine, fenced(nova), 1000.0)
    assert nova.violations == [] and the_recovery(store).phase == Phase.DONE
    assert nova.servers["vm0"].evacuations == 2 and nova.servers["vm0"].rebuilds == 1


def test_a_call_nova_never_got_is_retried_after_the_grace() -> None:
    nova, store, engine = lab(1, retries=3)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    for _ in range(3):
        engine.round(engine.world(1000.0, fences, members, True))
    nova.hold_next = 1
    engine.round(engine.world(1000.0, fences, members, True))
    nova.held.clear()  # lost on the way: Nova never acts on it
    run(engine, fences, 1001.0, rounds=10)
    assert nova.violations == [] and the_recovery(store).phase == Phase.DONE
    [inst] = the_recovery(store).instances
    assert inst.attempts == 2 and nova.servers["vm0"].evacuations == 1


def test_calls_are_issued_in_rounds_without_a_view_and_alongside_settling() -> None:
    # Issuing is not bound to the listing cycle: a paused round (no listing) sends first attempts,
    # and a round that settles instances also fills the free slots.
    nova, store, engine = lab(6, parallel=2)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    for _ in range(3):
        engine.round(engine.world(1000.0, fences, members, True))
    engine.round(engine.world(1000.0, fences, members, True, view="paused"))
    assert sum(x.evacuations for x in nova.servers.values()) == 2
    nova.progress()
    nova.progress()  # two ACTIVE elsewhere; the records still say issued
    engine.round(engine.world(1001.0, fences, members, True))
    rec = the_recovery(store)
    assert rec.count(InstanceState.EVACUATED) == 2 and sum(x.evacuations for x in nova.servers.values()) == 4


def test_evacuations_in_novas_hands_are_bounded() -> None:
    nova, store, engine = lab(6, parallel=8, in_progress=2)
    fences, members = fenced(nova), {"c2": 50, "c3": 51}
    for _ in range(5):  # begin, force down, list, then rounds with Nova still rebuilding
        engine.round(engine.world(1000.0, fences, members, True))
    assert sum(x.evacuations for x in nova.servers.values()) == 2
    nova.progress()
    nova.progress()
    engine.round(engine.world(1001.0, fences, members, True))  # two settle, two slots in Nova free
    assert the_recovery(store).count(InstanceState.EVACUATED) == 2
    assert sum(x.evacuations for x in nova.servers.values()) == 4
    run(engine, fences, 1002.0)
    assert the_recovery(store).phase == Phase.DONE and nova.violations == []


def test_unknown_compute_fails_the_recovery_at_once() -> None:
    nova, store, engine = lab()
    nova.hosts.remove("c1")
    run(engine, fenced(nova), 1000.0)
    rec = the_recovery(store)
    assert rec.phase == Phase.FAILED and "no nova-compute service" in rec.reason and rec.host_attempts == 1


def test_nova_unreachable_then_back() -> None:
    nova, store, engine = lab(2)
    nova.unreachable = True
    now = run(engine, fenced(nova), 1000.0, rounds=3)
    assert the_recovery(store).phase == Phase.FENCED and the_recovery(store).host_attempts >= 1
    nova.unreachable = False
    run(engine, fenced(nova), now + 30, rounds=10)
    assert the_recovery(store).phase == Phase.DONE


def test_a_new_engine_resumes_a_claim_its_predecessor_died_on() -> None:
    nova, store, engine = lab(3, parallel=1)
    fences = fenced(nova)
    now = 1000.0
    for _ in range(3):  # begin, force down, list
        engine.round(engine.world(now, fences, {}, True))
    with contextlib.suppress(Crash):
        engine.round(engine.world(now, fences, {}, True), crash_after_claim=True)
    successor = Engine("e2", store, nova, engine.settings)
    run(successor, fences, now, rounds=3)  # within the claim's grace: the claimed one waits
    claimed = [i for i in the_recovery(store).instances if i.state == InstanceState.CLAIMED]
    assert len(claimed) == 1
    run(successor, fences, now + 10, rounds=10)
    rec = the_recovery(store)
    assert rec.phase == Phase.DONE and [s.rebuilds for s in nova.servers.values()] == [1, 1, 1]


def test_a_claim_nova_accepted_before_its_engine_died_is_never_called_again() -> None:
    nova, store, engine = lab(1)
    fences = fenced(nova)
    for _ in range(3):  # begin, force down, list
        engine.round(engine.world(1000.0, fences, {}, True))
    with contextlib.suppress(Crash):
        engine.round(engine.world(1000.0, fences, {}, True), crash_after_call=True)
    successor = Engine("e2", store, nova, engine.settings)
    successor.round(successor.world(1010.0, fences, {}, True))  # past the grace, Nova still rebuilding
    successor.round(successor.world(1011.0, fences, {}, True))
    assert nova.violations == [] and nova.servers["vm0"].evacuations == 1
    run(successor, fences, 1012.0)
    assert the_recovery(store).phase == Phase.DONE and nova.servers["vm0"].rebuilds == 1


def test_returning_host_is_unforced_after_the_recovery() -> None:
    nova, store, engine = lab(2)
    now = run(engine, fenced(nova), 1000.0)
    run(engine, fenced(nova), now, members={"c1": FENCE_REV + 9})
    assert "c1" in nova.forced  # back in the cluster, but its nova-compute has not reported yet
    nova.updated["c1"] = 7
    run(engine, fenced(nova), now, members={"c1": FENCE_REV + 9})
    assert "c1" not in nova.forced and the_recovery(store).unforced


def test_retry_gives_failed_instances_a_new_round() -> None:
    nova, store, engine = lab(1, retries=1)
    nova.refuse_next = 1
    now = run(engine, fenced(nova), 1000.0)
    rec, rev = store.records[("c1", FENCE_REV)]
    assert rec.phase == Phase.FAILED
    store.cas(rc.retried(rec, now), rev)
    run(engine, fenced(nova), now)
    assert the_recovery(store).phase == Phase.DONE and nova.servers["vm0"].rebuilds == 1


def test_record_round_trip() -> None:
    nova, store, engine = lab(2)
    run(engine, fenced(nova), 1000.0, rounds=4)
    rec = the_recovery(store)
    assert Recovery.loads(rec.dumps()) == rec
    assert Recovery.loads(b"{}") is None and Recovery.loads(b"not json") is None


# ----- the simulation -----

def _steps(**kinds: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[str, int]]:
    """A step: its kind (the keyword, dashed) and its argument."""
    return st.one_of(*(st.tuples(st.just(kind.replace("_", "-")), arg) for kind, arg in kinds.items()))


ENGINE = st.integers(0, 2)
STEP = _steps(
    round=ENGINE, crash_claim=ENGINE, crash_call=ENGINE, stale_round=ENGINE, paused_round=ENGINE,
    crash_sent=ENGINE, hold=st.integers(1, 3), deliver=st.just(0), progress=st.just(0),
    advance=st.integers(1, 40), refuse=st.integers(1, 3), fail_async=st.integers(1, 2),
    fail_quiet=st.integers(1, 2), nova_down=st.booleans().map(int), minority=ENGINE,
    fence_ok=st.just(0), host_back=st.just(0),
)

# Calls and their timing only, after the fence: late answers, engines dying with a request sent,
# rounds without a view or with an old one (the double evacuation of the withdrawn faster pace
# needs about eight such steps in a row, which the broad alphabet above rarely draws).
TWO = st.integers(0, 1)
CALL_STEP = _steps(
    round=TWO, paused_round=TWO, stale_round=TWO, crash_sent=TWO, hold=st.integers(1, 3),
    deliver=st.just(0), progress=st.just(0), advance=st.integers(1, 6), refuse=st.integers(1, 2),
    fail_quiet=st.just(1),
)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 3), steps=st.lists(CALL_STEP, max_size=30), retries=st.integers(2, 3))
def test_simulation_of_late_answers(n: int, steps: list[tuple[str, int]], retries: int) -> None:
    simulate(n, [("fence-ok", 0), *steps], retries)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 6), steps=st.lists(STEP, max_size=40), retries=st.integers(1, 3))
def test_simulation_invariants(n: int, steps: list[tuple[str, int]], retries: int) -> None:
    simulate(n, steps, retries)


def simulate(n: int, steps: list[tuple[str, int]], retries: int) -> None:
    nova, store, _ = lab(n, retries=retries)
    s = make_settings(retries=retries)
    engines = [Engine(f"e{i}", store, nova, s) for i in range(3)]
    generation = [0, 0, 0]
    fences: dict[str, rc.Fence] = {}
    members: dict[str, int] = {"c1": 10, "c2": 11, "c3": 12}
    now = 1000.0
    calls_before_fence = 0
    for kind, arg in steps:
        if kind in ("round", "crash-claim", "crash-call", "crash-sent", "minority", "stale-round", "paused-round"):
            engine = engines[arg]
            quorum = kind != "minority"
            before = sum(x.evacuations for x in nova.servers.values())
            view = {"stale-round": "stale", "paused-round": "paused"}.get(kind, "fresh")
            try:
                world = engine.world(now, fences, members, quorum, view)
                engine.round(
                    world,
                    crash_after_claim=kind == "crash-claim",
                    crash_after_call=kind == "crash-call",
                    crash_after_send=kind == "crash-sent",
                )
            except Crash:
                generation[arg] += 1
                engines[arg] = Engine(f"e{arg}.{generation[arg]}", store, nova, s)
            after = sum(x.evacuations for x in nova.servers.values())
            if not quorum or not fences:
                calls_before_fence += after - before
        elif kind == "progress":
            nova.progress()
        elif kind == "advance":
            now += arg
            nova.deliver(now)  # Nova acts on what it held within HOLD_MAX
        elif kind == "hold":
            nova.hold_next += arg
        elif kind == "deliver":
            nova.deliver(now, everything=True)
        elif kind == "refuse":
            nova.refuse_next += arg
        elif kind == "fail-async":
            nova.fail_async_next += arg
        elif kind == "fail-quiet":
            nova.fail_quiet_next += arg
        elif kind == "nova-down":
            nova.unreachable = bool(arg)
        elif kind == "fence-ok" and "c1" not in fences:
            members.pop("c1", None)
            nova.up.discard("c1")
            fences = fenced(nova)
        elif kind == "host-back" and fences:
            members["c1"] = FENCE_REV + 50
            nova.updated["c1"] = nova.updated.get("c1", 0) + 1
    assert calls_before_fence == 0
    assert nova.violations == []
    # Heal everything and let one engine finish: each recovery ends, nothing rebuilt twice.
    nova.unreachable, nova.refuse_next, nova.hold_next = False, 0, 0
    nova.fail_async_next = nova.fail_quiet_next = 0
    nova.deliver(now, everything=True)
    finisher = Engine("final", store, nova, s)
    for _ in range(40):
        finisher.round(finisher.world(now, fences, members, True))
        nova.progress()
        now += 10
    assert nova.violations == []
    assert all(x.rebuilds <= 1 for x in nova.servers.values())
    for rec, _ in store.records.values():
        assert rec.phase in (Phase.DONE, Phase.FAILED)
        for inst in rec.instances:
            assert inst.attempts <= retries
            server = nova.servers[inst.id]
            assert server.evacuations <= retries
            if inst.state == InstanceState.EVACUATED:
                assert server.rebuilds == 1 and server.host == inst.target
            else:
                assert inst.state == InstanceState.FAILED and inst.reason
    if not fences:
        assert store.records == {} and all(x.evacuations == 0 for x in nova.servers.values())
    elif n and "c1" in members and store.records:
        # The host came back: a finished recovery un-forces its service (the host reported again).
        rec = the_recovery(store)
        if rec.forced_down_at and nova.updated.get("c1", 0) > int(rec.service_seen or 0):
            assert rec.unforced and "c1" not in nova.forced


def test_records_are_dataclasses() -> None:
    assert dataclasses.is_dataclass(Recovery)
