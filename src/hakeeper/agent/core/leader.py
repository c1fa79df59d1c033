"""The leader's decisions, pure: when to take or give up leadership, when to publish a plan, and
how to fence. No I/O, no clock: `LeaderCore.handle(now, input)` returns effects (types.py).

One *step* is what the leader does on a change in the store, when the suspects change, and at
least every STEP_INTERVAL seconds (failure-timeout expiry and fence retries are timed):

  1. Leadership. Without a healthy lease it is not the leader. A leader whose heartbeat stopped
     (a suspect) has its key taken over at once by compare-and-set on its name; a node that sees
     another node's key does nothing more; otherwise a node that is not the leader campaigns
     (puts the key bound to its lease if nobody holds it).
  2. Housekeeping, one transaction per step: expired fail counts, then fail counts of resources
     neither configured nor reported any more.
  3. Plan. The scheduler (`Decide`) runs on the store's values; a new epoch is published only if
     the work it computes differs from the work still outstanding in the current plan (or an
     action of it failed, or the stored plan is unreadable), and nothing runs (`running/`).
     The publish is one transaction guarded by "I am the leader", "the plan is what I read" and
     "the claims key is what I read": a node's claim rewrites `claims` under "the plan is what I
     read", so a claim and a new plan never both succeed.
  4. Fencing, when the plan was kept: each fence action not done gets the devices able to fence
     its node, one after the other; the first that succeeds records the fence, withdraws the
     node's reports and marks the action done in one transaction (so its resources start
     elsewhere only after it). When all fail, the node is retried FENCE_RETRY seconds later.

A step that waits for an answer (a transaction, the scheduler) goes on when the answer comes; a
store error ends it, and the next one starts no sooner than RETRY_AFTER_ERROR later.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hakeeper.agent import state as st
from hakeeper.agent.core.types import (
    Campaign,
    Cancel,
    Decide,
    Decided,
    Effect,
    Emit,
    Fence,
    FenceDone,
    Txn,
    TxnDone,
)
from hakeeper.agent.heartbeat import Heartbeats
from hakeeper.agent.plan import PlanDoc, PlanError, encode, parse
from hakeeper.coord.store import Compare, Delete, Put, absent
from hakeeper.resources.stonith import fence_delay
from hakeeper.spec import ClusterSpec, Primitive

log = logging.getLogger("hakeeper.leader")
FENCE_RETRY = 3.0
EVENTS_KEPT = 1000
STEP_INTERVAL = 1.0
RETRY_AFTER_ERROR = 0.1


@dataclass(frozen=True)
class LeaderView:
    """What a step looks at: the store's values as this node mirrors them (a copy), its lease
    (0: none), whether the store answers (the quorum rule: a lease refreshed recently), the
    nodes whose heartbeat stopped (`suspects_of`), and whether anything changed since the last
    view."""

    values: Mapping[str, bytes]
    lease: int
    healthy: bool
    suspects: frozenset[str] = frozenset()
    changed: bool = True


LeaderInput = LeaderView | TxnDone | Decided | FenceDone


def suspects_of(
    spec: ClusterSpec | None, values: Mapping[str, bytes], keys: st.Keys, heartbeats: Heartbeats, now: float,
    node_timeout: float,
) -> frozenset[str]:
    """Members whose heartbeat stopped (heartbeat.py); only with fencing, which keeps it safe."""
    if spec is None or not spec.cluster.stonith_enabled:
        return frozenset()
    members = [k[len(keys.members) :] for k in values if k.startswith(keys.members)]
    return frozenset(heartbeats.suspects(members, now, node_timeout))


@dataclass
class _Fencing:
    """One victim being fenced: the devices still to try, and what is in flight."""

    victim: str
    epoch: int
    action: int
    devices: list[Primitive]
    token: int = 0  # the Fence in flight, or the record's Txn
    device: str = ""
    recording: bool = False
    output: str = ""  # what the device that fenced it said
    seconds: float = 0.0


@dataclass
class _Wait:
    """The answer a step waits for, and what to do with it."""

    token: int
    what: str
    then: list[Effect] = field(default_factory=list)  # emitted once answered
    only_if_ok: bool = False  # ... and only if the transaction's compares held
    holder: bytes = b""
    view: LeaderView | None = None


class LeaderCore:
    def __init__(self, node: str, cluster: str) -> None:
        self.node = node
        self.keys = st.Keys(cluster)
        self.is_leader = False
        self.suspects: frozenset[str] = frozenset()
        self.fencing: dict[str, _Fencing] = {}
        self.fence_retry: dict[str, float] = {}  # victim -> not before
        # Fences recorded by this leader, as (epoch, action id), until its view shows their done
        # markers: a view behind the store (a watch moving to another member) still lists the
        # fence as to do, and without this the leader fenced the same node 27 times in 1.4 s.
        self.fences_recorded: set[tuple[int, int]] = set()
        self.last_decide = 0.0  # seconds the last scheduler run took
        self._tokens = itertools.count(1)
        self._wait: _Wait | None = None
        self._last_step = float("-inf")
        self._retry_at = float("-inf")
        self._due = False  # a step is owed regardless of changes (a fence ended, a change was held back)
        self._epoch_seen = 0
        self._bad_plan: bytes | None = None  # the unreadable plan last complained about
        self._config: tuple[bytes | None, tuple[int, ClusterSpec] | None] = (None, None)
        self._plan: tuple[bytes | None, PlanDoc | None] = (None, None)

    # ----- driving -----

    def busy(self) -> bool:
        return self._wait is not None

    def deadline(self) -> float:
        return max(self._last_step + STEP_INTERVAL, self._retry_at)

    def handle(self, now: float, event: LeaderInput) -> list[Effect]:
        if isinstance(event, LeaderView):
            return self._view(now, event)
        if isinstance(event, FenceDone):
            return self._fenced(now, event)
        if isinstance(event, TxnDone):
            fencing = next((f for f in self.fencing.values() if f.recording and f.token == event.token), None)
            if fencing is not None:
                return self._recorded(fencing, event)
        wait = self._wait
        if wait is None or wait.token != event.token:
            return []  # an answer nobody waits for any more
        self._wait = None
        if isinstance(event, Decided):
            return self._decided(now, wait, event)
        if event.error is not None:
            log.warning("leader: %s", event.error)
            self._retry_at = now + RETRY_AFTER_ERROR
            self._due = True
            return []
        if wait.what == "takeover":
            if not event.ok:
                return []
            old = wait.holder.decode(errors="replace")
            effects: list[Effect] = [Emit("leader", f"{self.node} is the leader ({old}'s heartbeat stopped)")]
            return effects + self._set_leader(True) + self._lead(now, wait.view)
        if wait.what == "campaign":
            effects = [Emit("leader", f"{self.node} is the leader")] if event.ok and not self.is_leader else []
            effects += self._set_leader(event.ok)
            return effects + (self._lead(now, wait.view) if self.is_leader else [])
        return list(wait.then) if event.ok or not wait.only_if_ok else []

    def _ask(
        self,
        what: str,
        make: Callable[[int], Effect],
        view: LeaderView | None = None,
        then: list[Effect] | None = None,
        only_if_ok: bool = False,
        holder: bytes = b"",
    ) -> list[Effect]:
        """The effect `make(token)`, whose answer the step then waits for."""
        token = next(self._tokens)
        self._wait = _Wait(token, what, then or [], only_if_ok, holder, view)
        return [make(token)]

    # ----- one step -----

    def _view(self, now: float, view: LeaderView) -> list[Effect]:
        self._due = self._due or view.changed
        if self._wait is not None or now < self._retry_at:
            return []
        if not self._due and view.suspects == self.suspects and now - self._last_step < STEP_INTERVAL:
            return []
        if view.suspects != self.suspects and view.suspects:
            log.warning("heartbeat silent: %s", ", ".join(sorted(view.suspects)))
        self.suspects = view.suspects
        self._last_step, self._due = now, False
        if not view.healthy or not view.lease:
            return self._set_leader(False)
        me = self.node.encode()
        holder = view.values.get(self.keys.leader)
        if holder is not None and holder != me and holder.decode(errors="replace") in self.suspects:
            # The leader's own heartbeat stopped: take the key over now rather than after its
            # lease expires. Safe as every leader write is guarded by "I hold the key"; with
            # stonith (the only case with suspects) the old leader's node is then fenced.
            guard = (Compare(self.keys.leader, "value", "==", holder),)
            put = (Put(self.keys.leader, me, view.lease),)
            take = self._ask("takeover", lambda t: Txn(t, guard, put, "takeover"), view=view, holder=holder)
            return self._set_leader(False) + take
        if holder is not None and holder != me:
            # Another node leads: a campaign could only fail (the key exists), at two requests a
            # step for every follower. Its key going (its lease ended) or its heartbeat stopping
            # (above) is a change that brings the next step.
            return self._set_leader(False)
        if holder is None or not self.is_leader:
            lease = view.lease
            return self._ask("campaign", lambda t: Campaign(t, lease), view=view)
        return self._lead(now, view)

    def _set_leader(self, value: bool) -> list[Effect]:
        effects: list[Effect] = []
        if self.is_leader and not value:
            effects = [Cancel(f.token) for f in self.fencing.values() if not f.recording]
            self.fencing.clear()
        self.is_leader = value
        return effects

    def _still_leader(self) -> Compare:
        return Compare(self.keys.leader, "value", "==", self.node.encode())

    def _config_of(self, values: Mapping[str, bytes]) -> tuple[int, ClusterSpec] | None:
        """st.config_of, parsed once per stored configuration: a step looks at it every second
        and on every change, and validating the whole configuration each time was most of a step."""
        raw = values.get(self.keys.config)
        if raw is None:
            return None
        if raw != self._config[0]:
            self._config = (raw, st.config_of(values, self.keys))
        return self._config[1]

    def _lead(self, now: float, view: LeaderView | None) -> list[Effect]:
        if view is None:
            return []
        values = view.values
        found = self._config_of(values)
        if found is None:
            return []
        spec = found[1]
        expired = st.expired_fail_counts(spec, values, self.keys, now)
        if expired:
            names = ", ".join(k.split("/", 4)[-1] for k in expired)
            then: list[Effect] = [Emit("failure-timeout", f"expired fail counts: {names}")]
            ops = tuple(Delete(k) for k in expired)
            return self._ask("expire", lambda t: Txn(t, (self._still_leader(),), ops, "expire"), then=then)
        forgotten = st.orphan_fail_counts(spec, values, self.keys)
        if forgotten:
            names = ", ".join(k.split("/", 4)[-1] for k in forgotten)
            why = f"fail counts of resources no longer configured nor running: {names}"
            gone = tuple(Delete(k) for k in forgotten)
            cleanup: list[Effect] = [Emit("orphan-cleanup", why)]
            return self._ask("forget", lambda t: Txn(t, (self._still_leader(),), gone, "forget"), then=cleanup)
        # Orphans and nodes dropped from the configuration included (see st.cluster_state).
        sched_spec, state = st.scheduler_input(spec, values, self.keys, now, self.suspects)
        return self._ask("decide", lambda t: Decide(t, sched_spec, state), view=view)

    def _current(self, raw: bytes | None, values: Mapping[str, bytes]) -> tuple[PlanDoc | None, int, bool]:
        """(the stored plan, its epoch, whether it is unreadable). An unreadable plan's epoch is
        the highest this leader can find, so the plan that replaces it is newer than any a node
        may still remember results of."""
        if raw is None:
            return None, 0, False
        try:
            # Parsed once per stored plan: the plan stays the same over most steps.
            cached_raw, cached = self._plan
            current = cached if cached is not None and raw == cached_raw else parse(raw)
            self._plan = (raw, current)
        except PlanError as exc:
            if raw != self._bad_plan:
                log.error("%s; publishing a new plan over it", exc)
                self._bad_plan = raw
            return None, max(self._epoch_seen, _epoch_in(raw), _done_epoch(values, self.keys)), True
        self._epoch_seen = max(self._epoch_seen, current.epoch)
        return current, current.epoch, False

    def _decided(self, now: float, wait: _Wait, answer: Decided) -> list[Effect]:
        self.last_decide = answer.seconds
        view = wait.view
        assert view is not None
        values = view.values
        raw = values.get(self.keys.plan)
        current, epoch, unreadable = self._current(raw, values)
        done = st.done_marks(values, self.keys, epoch)
        doc = PlanDoc.of(answer.plan, epoch + 1, self.node, now)
        new_work = doc.work()
        outstanding = current.remaining(done) if current is not None else set()
        found = self._config_of(values)
        changed = st.local_work(found[1] if found else None, new_work) != st.local_work(
            found[1] if found else None, outstanding)
        failed = any(not ok for ok in done.values())
        in_flight = any(k.startswith(self.keys.running) for k in values)
        probing = st.probing(values, self.keys, view.suspects)
        if (unreadable or (new_work and (changed or failed))) and not in_flight and not probing:
            # Like a DC, wait for actions in flight to finish before changing the plan.
            guard = Compare(self.keys.plan, "value", "==", raw) if raw is not None else absent(self.keys.plan)
            claims = values.get(self.keys.claims)
            claims_guard = (
                Compare(self.keys.claims, "value", "==", claims) if claims is not None else absent(self.keys.claims)
            )
            then = self._prune_events(values)
            summary = "; ".join(answer.plan.summary) or ", ".join(sorted(" ".join(w) for w in new_work))
            then.append(
                Emit(
                    "plan",
                    f"epoch {epoch + 1}: " + (summary or "replaces an unreadable plan"),
                    extra={
                        "epoch": epoch + 1,
                        "decide": answer.seconds,
                        "fence": sorted({a.node for a in answer.plan.actions if a.task == "fence"}),
                        "suspects": sorted(self.suspects),
                    },
                )
            )
            ops = (Put(self.keys.plan, encode(doc)), Delete(self.keys.done, prefix=True))
            compares = (self._still_leader(), guard, claims_guard)
            return self._ask("publish", lambda t: Txn(t, compares, ops, "publish"), then=then, only_if_ok=True)
        if current is None:
            return []
        found = self._config_of(values)
        return self._fence(now, found[1], current, done) if found is not None else []

    def _prune_events(self, values: Mapping[str, bytes]) -> list[Effect]:
        """Keep the newest EVENTS_KEPT events (keys sort by time): the history must not grow forever."""
        events = sorted(k for k in values if k.startswith(self.keys.events))
        if len(events) <= 2 * EVENTS_KEPT:
            return []
        ops = tuple(Delete(k) for k in events[: len(events) - EVENTS_KEPT])
        return [Txn(next(self._tokens), (), ops, "prune events")]

    # ----- fencing -----

    def _fence(self, now: float, spec: ClusterSpec, plan: PlanDoc, done: Mapping[int, bool]) -> list[Effect]:
        effects: list[Effect] = []
        self.fences_recorded = {(e, a) for e, a in self.fences_recorded if e == plan.epoch and a not in done}
        for action in plan.fences(done):
            victim = action.node
            if victim in self.fencing or self.fence_retry.get(victim, 0) > now:
                continue
            if (plan.epoch, action.id) in self.fences_recorded:
                continue
            devices = st.stonith_devices(spec, victim)
            if not devices:
                why = f"no fence device can fence {victim}; its resources stay where they were"
                effects.append(Emit("fence-failed", why))
                self.fence_retry[victim] = now + FENCE_RETRY
                self._due = True
                continue
            fencing = _Fencing(victim, plan.epoch, action.id, list(devices))
            self.fencing[victim] = fencing
            effects.append(self._next_device(fencing))
        return effects

    def _next_device(self, fencing: _Fencing) -> Fence:
        prim = fencing.devices.pop(0)
        base, spread = fence_delay(prim.params)
        fencing.token, fencing.device = next(self._tokens), prim.id
        return Fence(fencing.token, fencing.victim, prim.id, prim.agent.type, dict(prim.params), base, spread)

    def _fenced(self, now: float, answer: FenceDone) -> list[Effect]:
        fencing = next((f for f in self.fencing.values() if not f.recording and f.token == answer.token), None)
        if fencing is None:
            return []  # cancelled: this node is no longer the leader
        victim = fencing.victim
        if not answer.ok:
            failed = Emit("fence-failed", f"{fencing.device} could not fence {victim}: {answer.output}")
            if fencing.devices:
                return [failed, self._next_device(fencing)]
            del self.fencing[victim]
            self.fence_retry[victim] = now + FENCE_RETRY
            self._due = True
            return [failed]
        record = {"at": now, "ok": True, "device": fencing.device, "output": answer.output, "seconds": answer.seconds}
        k = self.keys
        ops = (
            Put(f"{k.fence}{victim}", st.dumps(record)),
            Delete(f"{k.status}{victim}/", prefix=True),
            # Reboot-lifetime attributes die with the node, as in Pacemaker: a stale galera
            # `-bootstrap` or seqno must not outlive the fence until the lease does.
            Delete(f"{k.attrs}{victim}/", prefix=True),
            Delete(f"{k.prefix}attr-requests/{victim}/", prefix=True),
            Put(k.done_of(fencing.epoch, fencing.action), st.dumps({"ok": True, "fenced": victim})),
        )
        fencing.token, fencing.recording = next(self._tokens), True
        fencing.output, fencing.seconds = answer.output, answer.seconds
        return [Txn(fencing.token, (self._still_leader(),), ops, "fenced")]

    def _recorded(self, fencing: _Fencing, answer: TxnDone) -> list[Effect]:
        del self.fencing[fencing.victim]
        self._due = True
        if answer.error is not None:
            log.warning("leader: recording the fence of %s: %s", fencing.victim, answer.error)
            return []
        self.fence_retry.pop(fencing.victim, None)
        self.fences_recorded.add((fencing.epoch, fencing.action))
        victim, took = fencing.victim, fencing.seconds
        message = f"{victim} fenced by {fencing.device} in {took:.2f}s: {fencing.output}"
        return [Emit("fenced", message, extra={"victim": victim, "seconds": took})]


def _epoch_in(raw: bytes) -> int:
    """The epoch an unreadable plan still states, if it states one."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return 0
    epoch = doc.get("epoch") if isinstance(doc, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0


def _done_epoch(values: Mapping[str, bytes], keys: st.Keys) -> int:
    """The highest epoch done markers are kept for."""
    epochs = [rest.split("/", 1)[0] for rest in (k[len(keys.done) :] for k in values if k.startswith(keys.done))]
    return max((int(e) for e in epochs if e.isdigit()), default=0)
