"""A fake Nova and a fake store driving recovery.decide the way engine.py does, with crashes
anywhere: the pure core's invariants are checked on what the fake Nova saw, not on our records."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field

from hakeeper.instanceha import recovery as rc
from hakeeper.instanceha.model import Recovery, Settings


class Refused(Exception):
    def __init__(self, reason: str, permanent: bool = False, unsure: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.unsure = unsure  # no answer: the request may be in Nova's hands (nova.NovaError.unsure)


# Nova acts on a request it holds within this many seconds of its sending (the simulation's
# settings give claims a 5 s grace): beyond the grace no engine could know, and none should guess.
HOLD_MAX = 4.0


@dataclass
class Server:
    id: str
    host: str
    ha: bool = False
    status: str = "ACTIVE"
    task_state: str | None = None
    evacuations: int = 0  # evacuate calls Nova accepted
    rebuilds: int = 0  # evacuations that completed
    target: str = ""
    # Nova's target compute clears the task and only then moves the host (under its resource lock):
    # in between the instance looks idle on the dead host, as when Nova gives up.
    finishing: bool = False
    migration: str = ""  # the status of Nova's migration record of the latest evacuation


@dataclass
class FakeNova:
    hosts: list[str]
    servers: dict[str, Server] = field(default_factory=dict)
    forced: set[str] = field(default_factory=set)
    up: set[str] = field(default_factory=set)
    refuse_next: int = 0  # evacuate calls to refuse (transient)
    fail_async_next: int = 0  # accepted evacuations that end in ERROR
    fail_quiet_next: int = 0  # accepted evacuations that fail leaving the instance ACTIVE where it was
    unreachable: bool = False
    hold_next: int = 0  # evacuate calls Nova takes but answers too late: the engine times out
    held: list[tuple[float, str, str]] = field(default_factory=list)  # (sent at, instance, target)
    violations: list[str] = field(default_factory=list)
    fenced: set[str] = field(default_factory=set)  # set by the test when the fence device ran
    updated: dict[str, int] = field(default_factory=dict)

    def _check(self) -> None:
        if self.unreachable:
            raise Refused("connection refused")

    def force_down(self, host: str) -> str:
        self._check()
        if host not in self.hosts:
            raise Refused(f"no nova-compute service on {host}", permanent=True)
        self.forced.add(host)
        return str(self.updated.get(host, 0))

    def unforce(self, host: str) -> None:
        self._check()
        self.forced.discard(host)

    def on_host(self, host: str) -> list[rc.NovaInstance]:
        self._check()
        return [self.view(s) for s in self.servers.values() if s.host == host]

    def view(self, s: Server, actions: bool = False) -> rc.NovaInstance:
        return rc.NovaInstance(
            s.id, s.id, s.host, s.status, s.task_state, s.ha,
            s.evacuations if actions else None, s.migration if actions else None,
        )

    def send(self, iid: str, target: str, now: float) -> None:
        """An evacuate call as the wire sees it: answered at once, or held (the answer comes too
        late for the engine, which gets no answer; Nova acts on it later all the same)."""
        self._check()
        if self.hold_next:
            self.hold_next -= 1
            self.held.append((now, iid, target))
            raise Refused("Nova does not answer: timed out", unsure=True)
        self.evacuate(iid, target)

    def deliver(self, now: float, everything: bool = False) -> None:
        """Nova gets to the requests it held: the oldest, or every one due by `now` (or all)."""
        while self.held and (everything or self.held[0][0] + HOLD_MAX <= now):
            _, iid, target = self.held.pop(0)
            with contextlib.suppress(Refused):
                self.evacuate(iid, target)

    def evacuate(self, iid: str, target: str) -> None:
        self._check()
        s = self.servers[iid]
        if s.host not in self.forced:
            self.violations.append(f"{iid}: evacuated from {s.host}, not forced down")
        if s.host not in self.fenced:
            self.violations.append(f"{iid}: evacuated from {s.host}, never fenced")
        if s.task_state is not None:
            # Nova refuses it (409), but the engine must never ask: it would be a second
            # evacuation had Nova's first one already ended.
            self.violations.append(f"{iid}: evacuate called while Nova was rebuilding it")
            raise Refused("instance is in task_state rebuilding")
        if s.rebuilds:
            self.violations.append(f"{iid}: evacuated again after a completed evacuation")
        if s.finishing:
            # Nova would take it: the host is still the dead one and no task is set.
            self.violations.append(f"{iid}: evacuate called while Nova was finishing its evacuation")
        if self.refuse_next:
            self.refuse_next -= 1
            raise Refused("No valid host was found")
        s.evacuations += 1
        s.task_state = "rebuilding"
        s.target = target
        s.migration = "accepted"

    def progress(self) -> None:
        """Nova's conductor and the target compute finish what was accepted."""
        for s in self.servers.values():
            if s.finishing:  # the host moves: the evacuation is done
                s.host = s.target or next(h for h in self.hosts if h in self.up and h != s.host)
                s.finishing, s.migration = False, "done"
                s.rebuilds += 1
                continue
            if s.task_state != "rebuilding":
                continue
            s.task_state = None
            if self.fail_async_next:
                self.fail_async_next -= 1
                s.status, s.migration = "ERROR", "failed"
            elif self.fail_quiet_next:
                self.fail_quiet_next -= 1
                s.migration = "failed"  # a failed claim on the target: ACTIVE where it was
            else:
                s.status, s.finishing = "ACTIVE", True


@dataclass
class FakeStore:
    records: dict[rc.Key, tuple[Recovery, int]] = field(default_factory=dict)
    revision: int = 100

    def cas(self, rec: Recovery, expected: int) -> bool:
        key = (rec.node, rec.failure)
        current = self.records.get(key)
        if (current[1] if current else 0) != expected:
            return False
        self.revision += 1
        self.records[key] = (rec, self.revision)
        return True


@dataclass
class Engine:
    name: str
    store: FakeStore
    nova: FakeNova
    settings: Settings
    in_flight: set[str] = field(default_factory=set)
    # The views of this engine's last listing and when it was asked: a "stale" round decides from
    # them (a listing asked before the round's evacuations were accepted, as a slow one is).
    last_view: tuple[float, dict[str, rc.NovaInstance]] = (0.0, {})

    def world(
        self, now: float, fences: dict[str, rc.Fence], members: dict[str, int], quorum: bool,
        view: str = "fresh",
    ) -> rc.World:
        """`view`: "fresh" (asked now), "stale" (the last listing again) or "paused" (none: the
        engine spares Nova's API; first attempts still go out)."""
        recs = {k: r for k, (r, _) in self.store.records.items()}
        ids = {i.id for r in recs.values() for i in r.instances}
        viewed_at = now
        if view == "paused":
            views, nova_ok = {}, False
        elif view == "stale":
            viewed_at, views = self.last_view
            nova_ok = not self.nova.unreachable
        else:
            try:
                views = {i: self.nova.view(self.nova.servers[i], actions=True) for i in ids if i in self.nova.servers}
                nova_ok = not self.nova.unreachable
            except Refused:
                views, nova_ok = {}, False
            if nova_ok:
                self.last_view = (now, views)
        updated = {h: str(v) for h, v in self.nova.updated.items()}
        return rc.World(
            me=self.name,
            now=now,
            quorum=quorum,
            settings=self.settings,
            fences=fences,
            incarnations=members,
            recoveries=recs,
            nova_ok=nova_ok,
            instances=views if nova_ok else {},
            viewed_at=viewed_at,
            view_paused=view == "paused",
            service_updated=updated,
            in_flight=frozenset(self.in_flight),
        )

    def round(
        self,
        world: rc.World,
        crash_after_claim: bool = False,
        crash_after_call: bool = False,
        crash_after_send: bool = False,
    ) -> list[rc.Action]:
        """Carry out one round of decisions; `crash_after_claim`: die between a claim and its call;
        `crash_after_call`: die after Nova accepted, before the result is written;
        `crash_after_send`: die with the request sent and Nova not yet at it (it acts later)."""
        actions = rc.decide(world)
        s, now = self.settings, world.now
        for a in actions:
            if isinstance(a, rc.Begin):
                self.store.cas(a.recovery, 0)
                continue
            key = (a.recovery.node, a.recovery.failure) if isinstance(a, rc.Update) else a.key
            if key not in self.store.records:
                continue
            rec, rev = self.store.records[key]
            if isinstance(a, rc.Update):
                self.store.cas(a.recovery, rev)
            elif isinstance(a, rc.ForceDown):
                try:
                    self.store.cas(rc.forced_down(rec, self.nova.force_down(a.host), now), rev)
                except Refused as exc:
                    self.store.cas(rc.host_step_failed(rec, str(exc), exc.permanent, s, now), rev)
            elif isinstance(a, rc.ListInstances):
                try:
                    self.store.cas(rc.listed(rec, self.nova.on_host(a.host), s), rev)
                except Refused as exc:
                    self.store.cas(rc.host_step_failed(rec, str(exc), exc.permanent, s, now), rev)
            elif isinstance(a, rc.EnableReserved):
                self.store.cas(rc.reserved_enabled(rec), rev)
            elif isinstance(a, rc.Unforce):
                try:
                    self.nova.unforce(a.host)
                    self.store.cas(rc.unforced(rec), rev)
                except Refused:
                    pass
            elif isinstance(a, rc.Evacuate):
                claimed = rc.claim(rec, a.instance, self.name, a.target, now)
                if not self.store.cas(claimed, rev):
                    continue
                if crash_after_claim:
                    raise Crash
                rec, rev = self.store.records[key]
                if crash_after_send:
                    self.nova.hold_next += 1
                try:
                    self.nova.send(a.instance, a.target, now)
                    if crash_after_call:
                        raise Crash
                    after = rc.evacuate_result(rec, a.instance, True, "", False, s, now)
                except Refused as exc:
                    if crash_after_send:
                        raise Crash from exc
                    after = rc.evacuate_result(
                        rec, a.instance, False, str(exc), exc.permanent, s, now, unsure=exc.unsure
                    )
                self.store.cas(after, rev)
        return actions


class Crash(Exception):
    pass


def settings(**kw: object) -> Settings:
    base = Settings(computes=frozenset({"c1", "c2", "c3"}), parallel=3, retries=2, claim_grace=5.0)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]
