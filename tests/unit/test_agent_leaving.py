"""Stopping without the leader (agent/leaving.py): a shutting-down agent withdraws its reports
only while its incarnation is still the member, as an action's report counts only while its claim
stands; the no-quorum stop waits for a plan action's operation in flight and stops what it started.

Real parts: the agent (agent/daemon.py) on the in-process store (hakeeper.coord.memory, etcd's
semantics), a `process` resource (a real `sleep`), its real lease keeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from hakeeper.agent import leaving
from hakeeper.agent import state as st
from hakeeper.agent.daemon import Agent, cancel_all
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import Put
from hakeeper.spec import parse_spec

SPEC = parse_spec("""
cluster: {name: w, stonith-enabled: false}
nodes: [{name: n1}]
resources:
  primitives:
    - {id: svc, agent: process, params: {command: "sleep 1000"}}
""")
K = st.Keys("w")


async def _until(cond: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _running_agent(store: MemoryStore, tmp: Path) -> tuple[Agent, asyncio.Task[None]]:
    """n1's agent, running svc; its tasks then stopped (as a stalled or dying process's), its
    lease still alive."""
    await store.put(K.config, st.dumps({"version": 1, "spec": SPEC.model_dump(mode="json")}))
    agent = Agent(store, "n1", cluster="w", ttl=5, state_dir=str(tmp))
    task = asyncio.create_task(agent.run())

    async def reported() -> bool:
        return await store.get(K.status_of("n1", "svc")) is not None

    await _until(reported)
    task.cancel()
    await cancel_all([task, *agent.monitors.values()])
    return agent, task


def _kill_svc(tmp: Path) -> None:
    for pidfile in tmp.glob("*/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.killpg(int(pidfile.read_text().split()[0]), signal.SIGKILL)


def test_reports_are_withdrawn_while_the_incarnation_is_the_member(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        agent, _ = await _running_agent(store, tmp_path)
        await leaving.withdraw_reports(agent, SPEC, [])
        assert await store.get(K.status_of("n1", "svc")) is None

    try:
        asyncio.run(scenario())
    finally:
        _kill_svc(tmp_path)


def test_reports_stay_once_the_lease_is_gone_or_a_next_incarnation_registered(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        agent, _ = await _running_agent(store, tmp_path)
        old_lease = agent.keeper.lease
        await store.revoke(old_lease)  # the lease expired: the leader may be fencing n1
        await leaving.withdraw_reports(agent, SPEC, [])
        assert await store.get(K.status_of("n1", "svc")) is not None
        # n1's next agent registered and probed; the old one's late withdrawal must not undo that.
        new_lease = await store.grant(5)
        await store.txn([], [Put(K.member("n1"), st.dumps({"probed": True}), new_lease)])
        await leaving.withdraw_reports(agent, SPEC, [])
        assert await store.get(K.status_of("n1", "svc")) is not None

    try:
        asyncio.run(scenario())
    finally:
        _kill_svc(tmp_path)


def test_the_local_stop_waits_for_the_operation_in_flight_and_stops_what_it_started(tmp_path: Path) -> None:
    """The simulation's seed 80619 (no stonith): a node claimed `start vip` just before it lost
    the store; its no-quorum stop stopped what ran then, the start went on, and the leader
    started vip elsewhere once the lease expired. Here the start is real (a `process` resource)
    and in flight as far as the agent knows (op_settled clear, as daemon._run_action leaves it
    during an operation) when the local stop begins."""

    async def scenario() -> None:
        agent = Agent(MemoryStore(), "n1", cluster="w", ttl=5, state_dir=str(tmp_path))
        os.makedirs(agent.state_dir, exist_ok=True)
        ra = agent.agent_for(SPEC, "svc")
        assert ra is not None
        agent.op_settled.clear()
        agent.in_flight_timeout = 10.0
        started = asyncio.create_task(ra.action("start", 10.0))
        stopping = asyncio.create_task(leaving.stop_locally(agent, SPEC, "no quorum"))
        assert (await started).running or (await ra.action("monitor", 5.0)).running
        await asyncio.sleep(0.3)
        assert not stopping.done()  # it waits for the operation's result
        agent.local_running.add("svc")  # the result is counted (core/node.py Hosting)...
        agent.op_settled.set()  # ...and the operation is over
        assert await asyncio.wait_for(stopping, 15) == []
        assert (await ra.action("monitor", 5.0)).stopped

    try:
        asyncio.run(scenario())
    finally:
        _kill_svc(tmp_path)
