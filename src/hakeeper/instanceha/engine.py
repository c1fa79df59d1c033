"""The evacuation engine: reads the store and Nova, asks recovery.decide, carries out its actions.

It runs as the `instanceha:evacuator` primitive's process (resource.py), so hakeeper's placement
keeps one running and moves it when its node is lost. Every record write is a compare-and-set on
the record's revision, guarded by this node's member key: an engine on a node the cluster lost
(its lease gone) cannot write, and without a claim it never calls Nova's evacuate.

Store layout added under /hakeeper/<cluster>/:
  instanceha/recovery/<node>/<failure>   the Recovery record (model.py)          the engine, by CAS
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import methodcaller
from typing import Any

from hakeeper.agent import state as st
from hakeeper.coord.store import Compare, Put, Store, StoreError
from hakeeper.instanceha import recovery as rc
from hakeeper.instanceha import serverview
from hakeeper.instanceha.model import TERMINAL, InstanceState, Phase, Recovery, Settings
from hakeeper.instanceha.nova import Nova, NovaError

log = logging.getLogger("hakeeper.instanceha")

# After a server listing that took t seconds, the next one waits VIEW_PAUSE * t: polling then
# takes at most a third of one of Nova's API threads however loaded the controller is. A listing
# quicker than SLOW_VIEW costs too little to be worth a pause.
VIEW_PAUSE = 2.0
SLOW_VIEW = 0.25  # s


def recovery_prefix(keys: st.Keys) -> str:
    return keys.prefix + "instanceha/recovery/"


def recovery_key(keys: st.Keys, node: str, failure: int) -> str:
    return f"{recovery_prefix(keys)}{node}/{failure}"


async def read_recoveries(store: Store, keys: st.Keys) -> dict[rc.Key, tuple[Recovery, int]]:
    kvs, _ = await store.get_prefix(recovery_prefix(keys))
    out: dict[rc.Key, tuple[Recovery, int]] = {}
    for kv in kvs:
        rec = Recovery.loads(kv.value)
        if rec is not None:
            out[(rec.node, rec.failure)] = (rec, kv.mod_revision)
    return out


@dataclass(frozen=True)
class Options:
    ha_tag: str = "HA"  # instance tag that marks an instance for evacuation first
    ha_flavor_key: str = "hakeeper:ha"  # flavor extra spec ("true") that does the same
    interval: float = 0.5  # s between rounds
    view_margin: float = serverview.MARGIN  # s a changes-since listing reaches back (serverview.py)
    full_view_every: float = serverview.FULL_EVERY  # s between full server listings


@dataclass(frozen=True)
class NovaView:
    """One round's view of the instances being evacuated: whether Nova answered, what it said,
    when it was asked (wall time), and whether it was not asked only to pace the listings."""

    ok: bool
    instances: dict[str, rc.NovaInstance]
    asked: float
    paused: bool = False


class Engine:
    def __init__(
        self, store: Store, keys: st.Keys, node: str, nova: Callable[[], Nova], settings: Settings, options: Options
    ) -> None:
        self.store, self.keys, self.node = store, keys, node
        self.nova_factory = nova
        self._nova: Nova | None = None
        self.settings, self.options = settings, options
        self.me = f"{node}:{os.getpid()}:{int(time.time())}"
        self.in_flight: set[str] = set()
        self.busy: set[rc.Key] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.members_seen: set[str] = set()
        self.locks: dict[rc.Key, asyncio.Lock] = {}
        self.next_view = 0.0  # monotonic time before which Nova's server listing is not asked again
        self.servers: serverview.ServerView | None = None  # Nova's rows as the last listings left them
        self.wake = asyncio.Event()  # a call ended: its slot is free for the next one now

    # ----- store -----

    def _member_guard(self) -> Compare:
        return Compare(self.keys.member(self.node), "create", ">", 0)

    async def event(self, kind: str, message: str, **extra: Any) -> None:
        log.info("%s: %s", kind, message)
        doc = {"at": time.time(), "node": self.node, "kind": kind, "rsc": "instanceha", "message": message, **extra}
        with contextlib.suppress(StoreError):
            await self.store.put(self.keys.event(time.time_ns(), self.node), st.dumps(doc))

    async def mutate(self, key: rc.Key, change: Callable[[Recovery], Recovery | None]) -> Recovery | None:
        """Apply `change` to the record as it is now, by compare-and-set (again on a conflict);
        None when `change` declines or the write is refused (no membership)."""
        path = recovery_key(self.keys, *key)
        # One writer per record in this engine: its own tasks never make each other retry.
        async with self.locks.setdefault(key, asyncio.Lock()):
            return await self._mutate(path, change)

    async def _mutate(self, path: str, change: Callable[[Recovery], Recovery | None]) -> Recovery | None:
        for _ in range(10):
            kv = await self.store.get(path)
            rec = Recovery.loads(kv.value) if kv else None
            if rec is None or kv is None:
                return None
            new = change(rec)
            if new is None:
                return None
            res = await self.store.txn(
                [Compare(path, "mod", "==", kv.mod_revision), self._member_guard()], [Put(path, new.dumps())]
            )
            if res.succeeded:
                return new
            if (await self.store.get(self.keys.member(self.node))) is None:
                return None
        return None

    # ----- Nova -----

    async def nova(self, call: Callable[[Nova], Any]) -> Any:
        """Run one blocking openstacksdk call in a thread; NovaError for every failure."""
        if self._nova is None:
            self._nova = self.nova_factory()
        client = self._nova
        return await asyncio.to_thread(call, client)

    async def warm_up(self) -> None:
        """Build the client (openstacksdk's import, the clouds.yaml, endpoint discovery) and make
        one cheap call before any host is lost: on a loaded node that is seconds, which would
        otherwise come between a fence and the force-down."""
        try:
            await self.nova(methodcaller("warm_up"))
        except NovaError as exc:
            log.warning("Nova is not ready yet (tried again when a host is lost): %s", exc.reason)

    async def nova_view(self, recs: dict[rc.Key, Recovery]) -> NovaView:
        active = [r for r in recs.values() if r.phase == Phase.EVACUATING]
        if not active:
            return NovaView(True, {}, time.time())
        if time.monotonic() < self.next_view:
            # No view this round (only first attempts go out): the listing is the costliest call,
            # and Nova's API serves it with the threads that take the evacuations.
            return NovaView(False, {}, time.time(), paused=True)
        o = self.options
        ids = frozenset(i.id for r in active for i in r.instances)
        asked = time.time()  # before the call: what it shows may predate anything accepted since
        began = time.monotonic()
        changed_since = serverview.since(self.servers, ids, asked, o.view_margin, o.full_view_every)
        try:
            rows: dict[str, rc.NovaInstance] = await self.nova(
                lambda n: n.instances(ids, o.ha_tag, o.ha_flavor_key, changed_since)
            )
            self.servers = serverview.merged(self.servers, ids, rows, asked, changed_since)
            views = serverview.of(self.servers, ids)
            took = time.monotonic() - began
            self.next_view = time.monotonic() + (took * VIEW_PAUSE if took > SLOW_VIEW else 0.0)
            now = time.time()
            for rec in active:
                for inst in rec.instances:
                    if inst.id in views and _needs_actions(inst, self.in_flight, now, self.settings):
                        count = await self.nova(methodcaller("evacuations", inst.id, rec.fenced_at))
                        views[inst.id] = dataclasses.replace(views[inst.id], evacuations=count)
                    if inst.id in views and rc.needs_migration_status(rec, inst, views[inst.id], asked):
                        status = await self.nova(methodcaller("evacuation_status", inst.id, rec.fenced_at))
                        views[inst.id] = dataclasses.replace(views[inst.id], evacuation_status=status)
        except NovaError as exc:
            log.warning("Nova's view: %s", exc.reason)
            return NovaView(False, {}, asked)
        return NovaView(True, views, asked)

    async def services_updated(self, recs: dict[rc.Key, Recovery]) -> dict[str, str]:
        out: dict[str, str] = {}
        for rec in recs.values():
            if rec.phase in TERMINAL and rec.forced_down_at and not rec.unforced:
                with contextlib.suppress(NovaError):
                    out[rec.host] = (await self.nova(methodcaller("service", rec.host))).updated_at
        return out

    # ----- a round -----

    async def world(self) -> tuple[rc.World, dict[rc.Key, Recovery]]:
        fences_kv, _ = await self.store.get_prefix(self.keys.fence)
        members_kv, _ = await self.store.get_prefix(self.keys.members)
        incarnations = {kv.key[len(self.keys.members) :]: kv.create_revision for kv in members_kv}
        fences: dict[str, rc.Fence] = {}
        for kv in fences_kv:
            doc = st.loads(kv.value) or {}
            fences[kv.key[len(self.keys.fence) :]] = rc.Fence(
                kv.mod_revision, bool(doc.get("ok")), float(doc.get("at", 0))
            )
        recs = {k: r for k, (r, _) in (await read_recoveries(self.store, self.keys)).items()}
        await self._note_losses(set(incarnations))
        view = await self.nova_view(recs)
        world = rc.World(
            me=self.me,
            now=time.time(),
            quorum=self.node in incarnations,
            settings=self.settings,
            fences=fences,
            incarnations=incarnations,
            recoveries=recs,
            nova_ok=view.ok,
            instances=view.instances,
            viewed_at=view.asked,
            view_paused=view.paused,
            service_updated=await self.services_updated(recs),
            in_flight=frozenset(self.in_flight),
            busy=frozenset(self.busy),
        )
        return world, recs

    async def _note_losses(self, members: set[str]) -> None:
        for node in sorted((self.members_seen - members) & self.settings.computes):
            await self.event("compute-lost", f"compute {node} left the cluster: waiting for its fence", host=node)
        self.members_seen = members

    async def round(self) -> None:
        world, recs = await self.world()
        for action in rc.decide(world):
            await self.carry_out(action, recs)

    async def carry_out(self, a: rc.Action, recs: dict[rc.Key, Recovery]) -> None:
        if isinstance(a, rc.Begin):
            rec = a.recovery
            path = recovery_key(self.keys, rec.node, rec.failure)
            res = await self.store.txn(
                [Compare(path, "create", "==", 0), self._member_guard()], [Put(path, rec.dumps())]
            )
            if res.succeeded:
                await self.event("recovery-started", f"{rec.node} is fenced: recovering its instances", host=rec.node)
        elif isinstance(a, rc.Update):
            base = recs.get((a.recovery.node, a.recovery.failure))
            # Calls in flight write their results meanwhile: those instances keep them.
            key = (a.recovery.node, a.recovery.failure)
            done = await self.mutate(key, lambda cur: rc.rebase(a.recovery, base, cur))
            if done is not None:
                await self._report(base, done)
        elif isinstance(a, rc.Evacuate):
            await self._evacuate(a)
        else:
            self.busy.add(a.key)
            self._spawn(self._host_step(a))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _host_step(self, a: rc.HostStep) -> None:
        s, o = self.settings, self.options

        def due(change: Callable[[Recovery], Recovery]) -> Callable[[Recovery], Recovery | None]:
            return lambda r: change(r) if rc.still_due(r, a) else None

        try:
            kv = await self.store.get(recovery_key(self.keys, *a.key))
            current = Recovery.loads(kv.value) if kv else None
            if current is None or not rc.still_due(current, a):
                return  # decided from a snapshot that a step of the round before has overtaken
            if isinstance(a, rc.ForceDown):
                seen = await self.nova(lambda n: n.force_down(a.host))
                if await self.mutate(a.key, due(lambda r: rc.forced_down(r, seen, time.time()))):
                    await self.event("forced-down", f"nova-compute on {a.host} forced down", host=a.key[0])
            elif isinstance(a, rc.ListInstances):
                found = await self.nova(lambda n: n.on_host(a.host, o.ha_tag, o.ha_flavor_key))
                rec = await self.mutate(a.key, due(lambda r: rc.listed(r, found, s)))
                if rec is not None:
                    ha = sum(1 for i in rec.instances if i.ha)
                    await self.event("instances-listed", f"{len(rec.instances)} instances on {a.host} ({ha} HA)")
            elif isinstance(a, rc.EnableReserved):
                for host in a.hosts:
                    await self.nova(methodcaller("enable", host))
                if await self.mutate(a.key, due(rc.reserved_enabled)):
                    await self.event("reserved-enabled", f"reserved hosts enabled: {', '.join(a.hosts)}")
            else:
                await self.nova(lambda n: n.unforce(a.host))
                if await self.mutate(a.key, due(rc.unforced)):
                    await self.event("unforced", f"{a.host} is back: its nova-compute is no longer forced down")
        except NovaError as exc:
            err = exc
            if isinstance(a, rc.Unforce):
                waiting = await self.mutate(a.key, due(lambda r: rc.unforce_refused(r, err.reason, time.time())))
                if waiting is not None and waiting.host_attempts == 1:
                    await self.event("unforce-waits", err.reason, host=a.key[0])  # told once
                return  # the recovery is over; asked again after the pause
            await self.event("recovery-step-failed", exc.reason, host=a.key[0])
            failed = await self.mutate(
                a.key, due(lambda r: rc.host_step_failed(r, err.reason, err.permanent, s, time.time()))
            )
            if failed is not None and failed.phase == Phase.FAILED:
                await self.event("recovery-failed", f"{a.key[0]}: {exc.reason}; fix it, then `hakeeper recovery retry`")
        except StoreError as exc:
            log.warning("store: %s", exc)
        finally:
            self.busy.discard(a.key)

    async def _evacuate(self, a: rc.Evacuate) -> None:
        def claim(rec: Recovery) -> Recovery | None:
            inst = rec.instance(a.instance)
            if inst is None or inst.state != InstanceState.PENDING or rec.phase != Phase.EVACUATING:
                return None
            return rc.claim(rec, a.instance, self.me, a.target, time.time())

        if await self.mutate(a.key, claim) is None:
            return  # someone else changed it first: decide again next round
        self.in_flight.add(a.instance)
        self._spawn(self._evacuate_call(a))

    async def _evacuate_call(self, a: rc.Evacuate) -> None:
        s = self.settings
        ok, reason, permanent, unsure = True, "", False, False
        try:
            await self.nova(lambda n: n.evacuate(a.instance, a.target))
        except NovaError as exc:
            ok, reason, permanent, unsure = False, exc.reason, exc.permanent, exc.unsure
        try:
            await self.mutate(
                a.key, lambda r: rc.evacuate_result(r, a.instance, ok, reason, permanent, s, time.time(), unsure)
            )
            if unsure:
                told = f"{a.instance}: {reason}; Nova may still accept it: its record decides in {s.claim_grace:g}s"
                await self.event("evacuation-unanswered", told, host=a.key[0])
            elif not ok:
                await self.event("evacuation-failed", f"{a.instance}: {reason}", host=a.key[0])
        finally:
            self.in_flight.discard(a.instance)
            self.wake.set()

    async def _report(self, before: Recovery | None, after: Recovery) -> None:
        old = {i.id: i for i in (before.instances if before else ())}
        moved: dict[str, int] = {}
        for inst in after.instances:
            prev = old.get(inst.id)
            if prev is not None and prev.state != inst.state:
                if inst.state == InstanceState.EVACUATED:
                    moved[inst.target] = moved.get(inst.target, 0) + 1
                elif inst.state == InstanceState.FAILED:
                    await self.event("evacuation-failed", f"{inst.name} ({inst.id}) gave up: {inst.reason}")
        for target, n in sorted(moved.items()):
            await self.event("evacuated", f"{n} evacuated from {after.host} to {target}", host=after.node, count=n)
        if before is not None and before.phase != after.phase and after.phase in TERMINAL:
            took = after.finished_at - after.fenced_at
            ok = after.count(InstanceState.EVACUATED)
            await self.event(
                f"recovery-{after.phase}",
                f"{after.node}: {ok} of {len(after.instances)} instances evacuated, {took:.1f}s after the fence"
                + (f"; {after.reason}; see `hakeeper recovery show {after.node}`" if after.reason else ""),
                host=after.node,
            )

    async def _pause(self, stop: asyncio.Event) -> None:
        """Until the next round: the interval, or less when a call ends (its slot is free)."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.options.interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self.wake.clear()

    async def run(self, stop: asyncio.Event) -> None:
        await self.event(
            "evacuator-started", f"evacuation engine {self.me} watching {len(self.settings.computes)} computes"
        )
        await self.warm_up()
        while not stop.is_set():
            try:
                await self.round()
            except StoreError as exc:
                log.warning("store unavailable: %s", exc)
            except NovaError as exc:
                log.warning("Nova: %s", exc.reason)
                self._nova = None  # a client that could not be built is built again next round
            except Exception:  # a bug must not end the engine: the records let the next round go on
                log.exception("evacuation round failed")
            await self._pause(stop)
        for task in list(self.tasks):
            task.cancel()


def _needs_actions(inst: Any, in_flight: set[str], now: float, s: Settings) -> bool:
    """Nova's count of evacuations decides only for a claim whose engine may have died, and for an
    instance that was attempted before: one call per such instance and round."""
    if inst.state == InstanceState.CLAIMED:
        return inst.id not in in_flight and now - inst.claimed_at >= s.claim_grace
    return bool(inst.state == InstanceState.PENDING and inst.attempts > 0)

