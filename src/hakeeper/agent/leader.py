"""The leader loop, Patroni style: snapshot → decide → compare-and-set publish.

Every agent runs this loop; the one holding the leader key (bound to its lease) acts. The
decisions are `hakeeper.agent.core.leader.LeaderCore`'s (pure; its docstring has the rules:
leadership, housekeeping, when to publish a plan, fencing): this shell only feeds it what its node
sees (`LeaderView`) and carries out its effects (store transactions, the scheduler off the event
loop, fence devices, events), feeding each answer back. It knows its node's agent only through
`LeaderPorts`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hakeeper.agent import state as st
from hakeeper.agent.core import types as ct
from hakeeper.agent.core.leader import LeaderCore, LeaderView
from hakeeper.agent.metrics import Metrics
from hakeeper.coord import election
from hakeeper.coord.store import Store, StoreError, wait_event
from hakeeper.placement import Plan
from hakeeper.resources.stonith import device_for
from hakeeper.spec import ClusterSpec, ClusterState

log = logging.getLogger("hakeeper.leader")
FENCE_TIMEOUT = 60.0


@dataclass(frozen=True)
class LeaderPorts:
    """What the leader needs from its node's agent, and nothing more."""

    store: Store
    node: str
    cluster: str
    decide: Callable[[ClusterSpec, ClusterState], Plan]
    metrics: Metrics
    clock: Callable[[], float]  # the one clock the core sees
    emit: Callable[..., Awaitable[None]]  # record an event: (kind, message, rsc, **extra)
    view: Callable[[bool], LeaderView]  # what the node sees now; the bool: whether anything changed
    node_timeout: Callable[[], float]
    changed: asyncio.Event  # set on every change in the store
    wake: Callable[[], None]  # wake everyone waiting for a change


class Leader:
    def __init__(self, ports: LeaderPorts) -> None:
        self.ports = ports
        self.core = LeaderCore(ports.node, ports.cluster)
        self.keys = st.Keys(ports.cluster)
        self.fences: dict[int, asyncio.Task[None]] = {}  # by the Fence effect's token
        self.answers: list[ct.FenceDone] = []  # fence results not yet given to the core

    @property
    def is_leader(self) -> bool:
        return self.core.is_leader

    async def run(self) -> None:
        p = self.ports
        try:
            while True:
                # Heartbeats are checked on a short tick (cheap); the core runs the scheduler on a
                # change, when the suspects change, and every second.
                timeout = p.node_timeout()
                tick = min(1.0, timeout / 6) if timeout > 0 else 1.0
                await wait_event(p.changed, max(0.0, min(tick, self.core.deadline() - p.clock())))
                while self.answers:
                    await self._carry(self.core.handle(p.clock(), self.answers.pop(0)))
                changed = p.changed.is_set()
                p.changed.clear()
                await self._carry(self.core.handle(p.clock(), p.view(changed)))
        finally:
            for task in self.fences.values():
                task.cancel()

    async def _carry(self, effects: list[ct.Effect]) -> None:
        """Carry out effects in order; the effects an answer brings come right after it."""
        p = self.ports
        queue = deque(effects)
        while queue:
            effect = queue.popleft()
            answer: ct.TxnDone | ct.Decided | None = None
            if isinstance(effect, ct.Txn):
                try:
                    res = await p.store.txn(list(effect.compares), list(effect.ops))
                    answer = ct.TxnDone(effect.token, res.succeeded)
                except StoreError as exc:
                    answer = ct.TxnDone(effect.token, False, str(exc) or type(exc).__name__)
            elif isinstance(effect, ct.Campaign):
                try:
                    won = await election.campaign(p.store, self.keys.leader, p.node, effect.lease)
                    answer = ct.TxnDone(effect.token, won)
                except StoreError as exc:
                    answer = ct.TxnDone(effect.token, False, str(exc) or type(exc).__name__)
            elif isinstance(effect, ct.Decide):
                t0 = time.perf_counter()
                plan = await asyncio.to_thread(p.decide, effect.spec, effect.state)
                seconds = time.perf_counter() - t0
                p.metrics.decide_seconds.set(seconds)
                answer = ct.Decided(effect.token, plan, seconds)
            elif isinstance(effect, ct.Fence):
                self.fences[effect.token] = asyncio.create_task(self._fence(effect))
            elif isinstance(effect, ct.Cancel):
                task = self.fences.pop(effect.token, None)
                if task is not None:
                    task.cancel()
            elif isinstance(effect, ct.Emit):
                if effect.kind == "plan":
                    p.metrics.plans.inc()
                await p.emit(effect.kind, effect.message, effect.rsc, **effect.extra)
            if answer is not None:
                queue.extend(self.core.handle(p.clock(), answer))
        p.metrics.leader.set(1 if self.core.is_leader else 0)

    async def _fence(self, effect: ct.Fence) -> None:
        """One device, once; the answer goes back to the core from the loop."""
        answer = ct.FenceDone(effect.token, False, "not tried", 0.0)
        try:
            device = device_for(effect.agent_type, effect.params)
            if effect.delay or effect.spread:
                await asyncio.sleep(effect.delay + random.uniform(0, effect.spread))
            t0 = time.perf_counter()
            res = await device.fence(effect.victim, FENCE_TIMEOUT)
            answer = ct.FenceDone(effect.token, res.ok, res.output, time.perf_counter() - t0)
            self.ports.metrics.fencing.labels(effect.victim, "ok" if res.ok else "failed").inc()
        except Exception as exc:  # a broken device definition must not stop fencing for good
            log.error("fencing %s with %s: %s", effect.victim, effect.device, exc)
            answer = ct.FenceDone(effect.token, False, f"{type(exc).__name__}: {exc}", 0.0)
        finally:
            if self.fences.pop(effect.token, None) is not None:
                self.answers.append(answer)
            self.ports.wake()
