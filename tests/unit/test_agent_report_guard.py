"""The agent's own report path (daemon.Agent._execute: claim, run, report) refuses a report once
the lease that claimed the action is gone (state.report_guard), with a real resource agent and the
in-process store. The pure rule and why are in tests/unit/agent_core/test_report_guard.py.

A node's lease expires while it stops r (a stop that takes a while: the process ignores SIGTERM
until the stop's deadline kills it). Without the guard its report landed: r's report withdrawn,
the stop marked done, and the node, lost, looked cleanly down, so r would start elsewhere with no
fence (the simulation's seeds 12609 and 21505). With it, the report is refused and the node stays
unclean until its fence or its next incarnation's probe.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hakeeper.agent import plan as pl
from hakeeper.agent import state as st
from hakeeper.agent.daemon import Agent
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import Put
from hakeeper.coord.watch import Snapshot
from hakeeper.placement import schedule
from hakeeper.spec import parse_spec

K = st.Keys("rg")
SPEC = parse_spec("""
cluster: {name: rg, stonith-enabled: true}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: f, agent: "stonith:fence_dummy", params: {pcmk_host_list: "a b"}}
    - id: r
      agent: process
      params: {command: "sh -c \\"trap '' TERM; exec sleep 60\\""}
      operations: [{name: stop, timeout: 2s}]
""")


def stored(values: dict[str, bytes], leases: dict[str, int]) -> list[Put]:
    """Puts of `values`, member keys bound to their node's lease."""
    by_key = {K.member(node): lease for node, lease in leases.items()}
    return [Put(k, v, by_key.get(k, 0)) for k, v in values.items()]


async def lease_expires_during_the_stop(tmp: Path) -> tuple[dict[str, bytes], Agent, int, bool]:
    """a runs r for real and claims `stop r` of plan epoch 1; its lease expires during the stop.
    Returns the store's values after a's report, the agent, the stop's action id and whether r
    still runs."""
    store = MemoryStore()
    agent = Agent(store, "a", cluster="rg", ttl=5, state_dir=str(tmp))
    ra = agent.agent_for(SPEC, "r")
    assert ra is not None and (await ra.start(5)).ok_for("start")
    try:
        leases = {"a": await store.grant(5), "b": await store.grant(5)}
        agent.keeper.lease = leases["a"]  # the keeper is not run: the test plays the store's side
        base = {
            K.config: st.dumps({"version": 1, "spec": SPEC.model_dump(mode="json")}),
            K.member("a"): st.dumps({"probed": True}),
            K.member("b"): st.dumps({"probed": True}),
            K.status_of("a", "r"): st.dumps(st.status_doc(await ra.monitor(5), "start", ok=True, at=0.0)),
            K.node("a"): st.dumps({"standby": True}),  # r moves to b: stop r on a, then start on b
        }
        plan = pl.PlanDoc.of(schedule(*st.scheduler_input(SPEC, base, K, 1.0)), 1, "b", 1.0)
        stop = next(a for a in plan.actions if a.task == "stop")
        assert stop.node == "a" and stop.resource == "r"
        await store.txn([], stored({**base, K.plan: pl.encode(plan)}, leases))
        kvs, revision = await store.get_prefix(K.prefix)
        agent.mirror.apply(Snapshot({kv.key: kv.value for kv in kvs}, revision))
        work = asyncio.create_task(agent._execute(SPEC))
        # The claim lands and the stop begins; then a's lease expires (a paused or cut-off node).
        while await store.get(K.running_of("a")) is None:
            assert not work.done()
            await asyncio.sleep(0.01)
        await store.revoke(leases["a"])
        await work
        kvs, _ = await store.get_prefix(K.prefix)
        return {kv.key: kv.value for kv in kvs}, agent, stop.id, (await ra.monitor(5)).running
    finally:
        await ra.stop(5)
        await store.close()


def test_a_report_after_the_claiming_lease_expired_is_refused(tmp_path: Path) -> None:
    values, agent, stop_id, still_running = asyncio.run(lease_expires_during_the_stop(tmp_path))
    assert not still_running  # the stop itself was carried out
    # Its report was refused: r is still reported on a, the stop not marked done.
    assert K.status_of("a", "r") in values
    assert K.done_of(1, stop_id) not in values
    assert stop_id not in agent.executed
    # a is lost with r reported: unclean, fenced before r starts on b.
    spec, state = st.scheduler_input(SPEC, values, K, 2.0)
    assert state.nodes["a"].unclean
    plan = schedule(spec, state)
    fence, start = plan.find("fence", None, "a"), plan.find("start", "r")
    assert fence is not None and start is not None and start.node == "b"
    assert plan.before(fence, start)
