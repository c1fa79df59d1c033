"""The leader loop, Patroni style: snapshot → decide → compare-and-set publish.

Every agent runs this loop; the one holding the leader key (bound to its lease) acts. On each
change in the store it builds the ClusterState from the mirror, calls the scheduler (the narrow
`Decide` function, `hakeeper.placement.schedule` by default) and publishes a new plan epoch only
if the work it computes differs from the work still outstanding in the current plan. Publishing
is a transaction guarded by "I am still the leader" and "the plan is what I read", so a deposed
leader can never overwrite its successor's plan. The leader also runs the plan's fence actions:
a lost node's resources start elsewhere only after its fencing succeeded and its reports were
withdrawn in the same transaction that marks the fence action done.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from hakeeper.agent import state as st
from hakeeper.coord import election
from hakeeper.coord.store import Compare, Delete, Put, StoreError, absent, wait_event
from hakeeper.resources.stonith import device_for, fence_delay

if TYPE_CHECKING:
    from hakeeper.agent.daemon import Agent

log = logging.getLogger("hakeeper.leader")
FENCE_RETRY = 3.0
FENCE_TIMEOUT = 60.0
EVENTS_KEPT = 1000


class Leader:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.keys = agent.keys
        self.is_leader = False
        self.fencing: dict[str, asyncio.Task[None]] = {}
        self.fence_retry: dict[str, float] = {}
        self.last_decide = 0.0  # seconds the last scheduler run took (for the benchmark)
        self.suspects: frozenset[str] = frozenset()

    def _suspects(self) -> frozenset[str]:
        """Nodes whose heartbeat stopped (see heartbeat.py); only with fencing to keep it safe."""
        a = self.agent
        spec = a.spec()
        if spec is None or not spec.cluster.stonith_enabled:
            return frozenset()
        members = [k[len(self.keys.members) :] for k in a.mirror.values if k.startswith(self.keys.members)]
        now = asyncio.get_running_loop().time()
        return frozenset(a.heartbeats.suspects(members, now, a.node_timeout))

    async def run(self) -> None:
        ev = self.agent.subscribe()
        loop = asyncio.get_running_loop()
        # Heartbeats are checked on a short tick (cheap); the scheduler runs on a change, when the
        # suspects change, and every second (failure-timeout expiry and fence retries are timed).
        last = loop.time()
        while True:
            timeout = self.agent.node_timeout
            tick = min(1.0, timeout / 6) if timeout > 0 else 1.0
            await wait_event(ev, tick)
            suspects = self._suspects()
            if not ev.is_set() and suspects == self.suspects and loop.time() - last < 1.0:
                continue
            if suspects != self.suspects and suspects:
                log.warning("heartbeat silent for %.1fs: %s", self.agent.node_timeout, ", ".join(sorted(suspects)))
            self.suspects = suspects
            last = loop.time()
            ev.clear()
            try:
                await self.step()
            except StoreError as exc:
                log.warning("leader: %s", exc)
                await asyncio.sleep(0.1)

    async def step(self) -> None:
        a = self.agent
        loop = asyncio.get_running_loop()
        if a.quorum_lost or not a.keeper.lease or not a.keeper.healthy(loop.time(), a.ttl * 0.25):
            self._set_leader(False)
            return
        holder = a.mirror.values.get(self.keys.leader)
        if holder is not None and holder != a.node.encode() and holder.decode() in self.suspects:
            # The leader's own heartbeat stopped: take the key over now rather than after its
            # lease expires. Safe as every leader write is guarded by "I hold the key"; with
            # stonith (the only case with suspects) the old leader's node is then fenced.
            self._set_leader(False)
            res = await a.store.txn(
                [Compare(self.keys.leader, "value", "==", holder)],
                [Put(self.keys.leader, a.node.encode(), a.keeper.lease)],
            )
            if res.succeeded:
                await a.event("leader", f"{a.node} is the leader ({holder.decode()}'s heartbeat stopped)")
                self._set_leader(True)
        elif holder is None or not self.is_leader:
            won = await election.campaign(a.store, self.keys.leader, a.node, a.keeper.lease)
            if won and not self.is_leader:
                await a.event("leader", f"{a.node} is the leader")
            self._set_leader(won)
        elif holder != a.node.encode():
            self._set_leader(False)
        if self.is_leader:
            await self.lead()

    def _set_leader(self, value: bool) -> None:
        if self.is_leader and not value:
            for task in self.fencing.values():
                task.cancel()
            self.fencing.clear()
        self.is_leader = value
        self.agent.metrics.leader.set(1 if value else 0)

    async def lead(self) -> None:
        a = self.agent
        values = dict(a.mirror.values)
        found = st.config_of(values, self.keys)
        if found is None:
            return
        spec = found[1]
        now = a.clock()
        expired = st.expired_fail_counts(spec, values, self.keys, now)
        if expired:
            await a.store.txn([self._still_leader()], [Delete(k) for k in expired])
            await a.event("failure-timeout", f"expired fail counts: {', '.join(k.split('/', 4)[-1] for k in expired)}")
            return
        forgotten = st.orphan_fail_counts(spec, values, self.keys)
        if forgotten:
            await a.store.txn([self._still_leader()], [Delete(k) for k in forgotten])
            names = ", ".join(k.split("/", 4)[-1] for k in forgotten)
            await a.event("orphan-cleanup", f"fail counts of resources no longer configured nor running: {names}")
            return
        # Orphans and nodes dropped from the configuration included (see st.cluster_state).
        sched_spec, state = st.scheduler_input(spec, values, self.keys, now, self.suspects)
        t0 = time.perf_counter()
        plan = await asyncio.to_thread(a.decide, sched_spec, state)
        self.last_decide = time.perf_counter() - t0
        a.metrics.decide_seconds.set(self.last_decide)
        raw = values.get(self.keys.plan)
        current = st.loads(raw) if raw is not None else None
        epoch = int(current.get("epoch", 0)) if isinstance(current, dict) else 0
        done = st.done_marks(values, self.keys, epoch)
        doc = st.plan_doc(plan, epoch + 1, a.node, now)
        new_work = st.work(doc)
        outstanding = st.remaining(current, done) if isinstance(current, dict) else set()
        failed = any(not ok for ok in done.values())
        in_flight = any(k.startswith(self.keys.running) for k in values)
        probing = st.probing(values, self.keys, self.suspects)
        if new_work and (new_work != outstanding or failed) and not in_flight and not probing:
            # Like a DC, wait for actions in flight to finish before changing the plan.
            guard = Compare(self.keys.plan, "value", "==", raw) if raw is not None else absent(self.keys.plan)
            claims = values.get(self.keys.claims)
            claims_guard = (
                Compare(self.keys.claims, "value", "==", claims) if claims is not None else absent(self.keys.claims)
            )
            res = await a.store.txn(
                [self._still_leader(), guard, claims_guard],
                [Put(self.keys.plan, st.dumps(doc)), Delete(self.keys.done, prefix=True)],
            )
            if res.succeeded:
                a.metrics.plans.inc()
                await self._prune_events(values)
                await a.event(
                    "plan",
                    f"epoch {epoch + 1}: "
                    + ("; ".join(plan.summary) or ", ".join(sorted(" ".join(w) for w in new_work))),
                    epoch=epoch + 1,
                    decide=self.last_decide,
                    fence=sorted({a.node for a in plan.actions if a.task == "fence"}),
                    suspects=sorted(self.suspects),
                )
            return
        if isinstance(current, dict):
            self._fence(spec, current, done)

    async def _prune_events(self, values: dict[str, bytes]) -> None:
        """Keep the newest EVENTS_KEPT events (keys sort by time): the history must not grow forever."""
        events = sorted(k for k in values if k.startswith(self.keys.events))
        if len(events) > 2 * EVENTS_KEPT:
            await self.agent.store.txn([], [Delete(k) for k in events[: len(events) - EVENTS_KEPT]])

    def _still_leader(self) -> Compare:
        return Compare(self.keys.leader, "value", "==", self.agent.node.encode())

    def _fence(self, spec: Any, plan: dict[str, Any], done: dict[int, bool]) -> None:
        now = time.monotonic()
        for action in plan.get("actions", []):
            victim = action["node"]
            if action["task"] != "fence" or action["id"] in done:
                continue
            if victim in self.fencing or self.fence_retry.get(victim, 0) > now:
                continue
            self.fencing[victim] = asyncio.create_task(self._fence_one(spec, victim, int(plan["epoch"]), action["id"]))

    async def _fence_one(self, spec: Any, victim: str, epoch: int, action_id: int) -> None:
        a = self.agent
        try:
            devices = st.stonith_devices(spec, victim)
            if not devices:
                await a.event("fence-failed", f"no fence device can fence {victim}; its resources stay where they were")
            for prim in devices:
                device = device_for(prim.agent.type, prim.params)
                base, spread = fence_delay(prim.params)
                if base or spread:
                    await asyncio.sleep(base + random.uniform(0, spread))
                t0 = time.perf_counter()
                res = await device.fence(victim, FENCE_TIMEOUT)
                took = time.perf_counter() - t0
                a.metrics.fencing.labels(victim, "ok" if res.ok else "failed").inc()
                if not res.ok:
                    await a.event("fence-failed", f"{prim.id} could not fence {victim}: {res.output}")
                    continue
                record = {"at": a.clock(), "ok": True, "device": prim.id, "output": res.output, "seconds": took}
                await a.store.txn(
                    [self._still_leader()],
                    [
                        Put(f"{self.keys.fence}{victim}", st.dumps(record)),
                        Delete(f"{self.keys.status}{victim}/", prefix=True),
                        # Reboot-lifetime attributes die with the node, as in Pacemaker: a stale
                        # galera `-bootstrap` or seqno must not outlive the fence until the lease does.
                        Delete(f"{self.keys.attrs}{victim}/", prefix=True),
                        Delete(f"{self.keys.prefix}attr-requests/{victim}/", prefix=True),
                        Put(self.keys.done_of(epoch, action_id), st.dumps({"ok": True, "fenced": victim})),
                    ],
                )
                await a.event(
                    "fenced", f"{victim} fenced by {prim.id} in {took:.2f}s: {res.output}", victim=victim, seconds=took
                )
                self.fence_retry.pop(victim, None)
                return
            self.fence_retry[victim] = time.monotonic() + FENCE_RETRY
        finally:
            self.fencing.pop(victim, None)
            a.wake()
