"""A node's report of an action counts only while the claim that allowed it stands (the claim's
`running/<node>` key, bound to the node's lease: state.running_value, state.report_guard).

Found by the simulation (seeds 12609 and 21505): a node paused during `stop db`; its lease
expired and the leader planned its fence; the node woke, its stop ended and its report landed
("db stopped"); the node then looked cleanly down, the next plan dropped the fence and started db
on another node while the lost node was neither fenced nor probed. The report, written by an
incarnation whose lease was gone, must not count: the node stays as its reports were until its
fence or its next incarnation's probe.

Real parts: the in-process store (hakeeper.coord.memory, the store contract's etcd semantics),
state.py's helpers and the scheduler the leader runs.
"""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as stt

from hakeeper.agent import state as st
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import Delete, KeyValue, Put
from hakeeper.placement import Plan, schedule
from hakeeper.spec import parse_spec

K = st.Keys("g")
SPEC = parse_spec("""
cluster: {name: g, stonith-enabled: true}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: f, agent: "stonith:fence_dummy", params: {pcmk_host_list: "a b"}}
    - {id: r, agent: process, params: {command: sleep 1}}
""")
EPOCH, STOP = 3, 0  # plan epoch 3, its action 0: stop r on a (r moving to b)


def report_ops() -> list[Put | Delete]:
    """What a's report of a successful stop writes (as daemon._run_action): the done mark, the
    status report withdrawn, the claim released."""
    return [
        Put(K.done_of(EPOCH, STOP), st.dumps({"ok": True, "rc": 0})),
        Delete(K.status_of("a", "r")),
        Delete(K.running_of("a")),
    ]


async def cluster() -> tuple[MemoryStore, int]:
    """a runs r, b the fence device; both are members. Returns the store and a's lease."""
    store = MemoryStore()
    lease_a, lease_b = await store.grant(5), await store.grant(5)
    config = st.dumps({"version": 1, "spec": SPEC.model_dump(mode="json")})
    await store.txn(
        [],
        [
            Put(K.config, config),
            Put(K.member("a"), st.dumps({"probed": True}), lease_a),
            Put(K.member("b"), st.dumps({"probed": True}), lease_b),
            Put(K.status_of("a", "r"), st.dumps({"role": "Started", "op": "start", "rc": 0})),
            Put(K.status_of("b", "f"), st.dumps({"role": "Started", "op": "start", "rc": 0})),
        ],
    )
    return store, lease_a


async def claim(store: MemoryStore, lease: int) -> bytes:
    """a claims the stop (as daemon._execute) and returns what its report is guarded by."""
    running = st.running_value(EPOCH, STOP, lease)
    ops = [Put(K.running_of("a"), running, lease), Put(K.claims, st.claim_value("a", EPOCH, STOP, lease))]
    assert (await store.txn([], ops)).succeeded
    return running


async def values(store: MemoryStore) -> dict[str, bytes]:
    kvs, _ = await store.get_prefix(K.prefix)
    return {kv.key: kv.value for kv in kvs}


def plan_of(values: dict[str, bytes]) -> Plan:
    return schedule(*st.scheduler_input(SPEC, values, K, 10.0))


async def lost_during_the_stop(guarded: bool) -> tuple[bool, dict[str, bytes]]:
    """a claims the stop, pauses, its lease expires, it wakes and reports the stop's success,
    with its guard (as the agent writes it now) or without (as before). Returns whether the
    report went through, and the store's values after."""
    store, lease = await cluster()
    running = await claim(store, lease)
    await store.revoke(lease)  # the lease expires: a's member and running keys go
    result = await store.txn([st.report_guard(K, "a", running)] if guarded else [], report_ops())
    found = await values(store)
    await store.close()
    return result.succeeded, found


def test_a_report_written_after_its_lease_expired_does_not_count() -> None:
    went_through, found = asyncio.run(lost_during_the_stop(guarded=True))
    assert not went_through
    # a still reports r Started, and it is lost: unclean, fenced before r starts on b.
    assert K.status_of("a", "r") in found and K.done_of(EPOCH, STOP) not in found
    state = st.cluster_state(SPEC, found, K, 10.0)
    assert state.nodes["a"].unclean
    plan = plan_of(found)
    fence, start = plan.find("fence", None, "a"), plan.find("start", "r")
    assert fence is not None and start is not None and start.node == "b"
    assert plan.before(fence, start)


def test_without_the_guard_the_late_report_let_r_start_elsewhere_unfenced() -> None:
    # The report as it was written before the guard (no compare): it went through, a looked
    # cleanly down, and r was started on b with no fence of a at all: the simulation's failure.
    went_through, found = asyncio.run(lost_during_the_stop(guarded=False))
    assert went_through
    assert not st.cluster_state(SPEC, found, K, 10.0).nodes["a"].unclean
    plan = plan_of(found)
    start = plan.find("start", "r")
    assert start is not None and start.node == "b"
    assert not any(a.task == "fence" for a in plan.actions)


def test_the_report_of_a_live_claim_goes_through() -> None:
    async def run() -> tuple[bool, dict[str, bytes]]:
        store, lease = await cluster()
        running = await claim(store, lease)
        result = await store.txn([st.report_guard(K, "a", running)], report_ops())
        found = await values(store)
        await store.close()
        return result.succeeded, found

    went_through, found = asyncio.run(run())
    assert went_through
    assert K.running_of("a") not in found and K.status_of("a", "r") not in found
    assert K.done_of(EPOCH, STOP) in found


def test_a_report_held_up_until_the_next_incarnation_claimed_again_is_refused() -> None:
    # a's first incarnation reports; the store takes that request late, after a's lease expired
    # and its next incarnation (a new lease) registered and claimed the same action of the same
    # plan. The old report must not release the new claim nor mark the action done for it.
    async def run() -> tuple[bool, bool, dict[str, bytes]]:
        store, lease = await cluster()
        old = await claim(store, lease)
        await store.revoke(lease)
        lease2 = await store.grant(5)
        await store.put(K.member("a"), st.dumps({"probed": True}), lease2)
        new = await claim(store, lease2)
        late = await store.txn([st.report_guard(K, "a", old)], report_ops())
        between = await values(store)
        own = await store.txn([st.report_guard(K, "a", new)], report_ops())
        await store.close()
        return late.succeeded, own.succeeded, between

    late, own, between = asyncio.run(run())
    assert not late and own
    assert K.running_of("a") in between and K.done_of(EPOCH, STOP) not in between


@given(
    stt.tuples(stt.integers(1, 50), stt.integers(0, 20), stt.integers(1, 2**63)),
    stt.tuples(stt.integers(1, 50), stt.integers(0, 20), stt.integers(1, 2**63)),
)
def test_a_guard_holds_exactly_on_the_claim_it_was_made_for(x: tuple[int, int, int], y: tuple[int, int, int]) -> None:
    guard = st.report_guard(K, "a", st.running_value(*x))
    kv = KeyValue(K.running_of("a"), st.running_value(*y), 1, 1, 1, y[2])
    assert guard.holds(kv) == (x == y)
    assert not guard.holds(None)  # the claim's key gone with its lease
