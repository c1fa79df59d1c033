"""The simulated cluster: the store model behind a simulated network, and one shell per node that
carries out its brain's effects (hakeeper.agent.core.types) and feeds the answers back.

The shell plays the part of the asyncio daemon around the core: it keeps the lease (grant, then a
keep-alive every ttl/5, as coord/lease.py), follows the store with a watch (replay from the
mirror's revision, a full read after a compaction, as coord/watch.py), runs resource operations
and recurring monitors on the world's simulated agents, runs the real scheduler for Decide, and
fences through the world's simulated devices. Every message between a node and the store takes a
few milliseconds and is lost when the link is cut in its direction; a request whose answer does
not come back in time fails (it may still have been applied, as with a real store).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hakeeper.agent import state as st
from hakeeper.agent.core import types as t
from hakeeper.coord.store import Compacted, Event, LeaseExpired, Put, StoreError, TxnResult, absent
from hakeeper.coord.watch import Changes, Snapshot
from hakeeper.placement import Plan, schedule
from hakeeper.resources.result import Status
from hakeeper.spec import ClusterSpec, ClusterState

from .clock import Clock
from .store import ModelStore
from .world import FenceDevice, ResourceAgents, Truth

WATCH_NOTICE = 1.0  # how long a node takes to notice its watch stream broke
REAP_RETRY = 0.05  # s between looks at an overdue lease the store cannot expire yet
RETRY = 0.2


_DECISIONS: dict[tuple[int, str], tuple[ClusterSpec, Plan]] = {}


class Brain(Protocol):
    def handle(self, now: float, inp: t.Input) -> list[t.Effect]: ...

    def deadline(self) -> float | None: ...


@dataclass
class Link:
    to_store: bool = True
    from_store: bool = True


class Shell:
    """One node: its agent process (the brain), its lease, its watch, its monitors."""

    def __init__(self, sim: Cluster, name: str) -> None:
        self.sim = sim
        self.name = name
        self.link = Link()
        self.up = False
        self.machine = 0  # bumps when the machine loses power: its processes die
        self.incarnation = 0  # bumps when the agent process dies
        self.paused_until = float("-inf")
        self.ops_epoch = 0  # bumped when an agent starts and ends what earlier ones left running
        self._deferred: list[Callable[[], None]] = []  # what came due while paused, in order
        self._resume_at = float("-inf")  # when the next _resume is scheduled
        self.brain: Brain | None = None
        self.lease = 0
        self.watching = False
        self.session = 0
        self.watch_clock = 0.0
        self.revision = 0
        self.monitors: dict[str, int] = {}
        self.tick_at = float("inf")
        self._gen = 0

    # ----- events addressed to this node -----

    def later(self, delay: float, fn: Callable[[], None], label: str = "") -> None:
        """Run fn in this agent incarnation after `delay` (a paused node runs it when it resumes;
        a restarted agent never)."""
        inc = self.incarnation

        def run() -> None:
            if inc != self.incarnation or not self.up:
                return
            if self.sim.clock.now < self.paused_until:
                self._defer(run)
                return
            fn()

        self.sim.clock.after(delay, run, label)

    def _defer(self, run: Callable[[], None]) -> None:
        """A paused node runs what came due during its pause once it resumes, in the order it
        came due, also when the pause is extended meanwhile: a watch stream's messages must stay
        in order (rescheduling each at the pause's end put the ones deferred before an extension
        after the ones that came during it; the stream then dropped the older revisions and the
        node's mirror stayed stale for good: seed 77010, a leader that never saw the plan)."""
        self._deferred.append(run)
        if self._resume_at < self.paused_until:
            self._resume_at = self.paused_until
            self.sim.clock.at(self.paused_until, self._resume, "resume")

    def _resume(self) -> None:
        self._resume_at = float("-inf")
        queue, self._deferred = self._deferred, []
        for run in queue:  # each its own step, in order (a run still paused defers itself again)
            self.sim.clock.at(self.sim.clock.now, run)

    def feed(self, inp: t.Input) -> None:
        assert self.brain is not None
        effects = self.brain.handle(self.sim.clock.now, inp)
        for effect in effects:
            self.carry(effect)
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        assert self.brain is not None
        when = self.brain.deadline()
        if when is None:
            return
        when = max(when, self.sim.clock.now + 0.05)
        if when >= self.tick_at > self.sim.clock.now:
            return
        self.tick_at = when

        def tick() -> None:
            if self.tick_at == when:
                self.tick_at = float("inf")
                self.feed(t.Tick())

        self.later(when - self.sim.clock.now, tick, "tick")

    # ----- lifecycle -----

    def start(self) -> None:
        self.incarnation += 1
        # The new agent first ends the operations a dead predecessor left running (as the
        # daemon does with runner.end_leftovers): they never end, and the truth stays as it was
        # when they began (a half-done stop: still active).
        self.ops_epoch += 1
        self.up = True
        self.brain = self.sim.make_brain(self.name)
        self.lease, self.watching, self.revision, self.monitors, self.tick_at = 0, False, 0, {}, float("inf")
        self.sim.note(self.name, "agent starts")
        self.feed(t.Started())
        self._lease_loop()
        self._connect()

    def crash(self, power: bool) -> None:
        if not self.up and not power:
            return
        self.up = False
        self.incarnation += 1
        self.sim.watchers.discard(self.name)
        if power:
            self.machine += 1
            self.sim.truth.active.pop(self.name, None)
        self.sim.note(self.name, "machine powered off" if power else "agent crashed")

    # ----- lease (coord/lease.py) -----

    def _lease_loop(self) -> None:
        sim, sent = self.sim, self.sim.clock.now
        if self.lease == 0:

            def granted(lease: Any) -> None:
                self.lease = lease
                self.feed(_lease_input(t.LeaseGranted, lease, sent))
                self.later(sim.ttl / 5, self._lease_loop)

            sim.request(
                self,
                lambda s: s.grant(sim.ttl, sim.clock.now),
                granted,
                lambda e: self.later(0.1, self._lease_loop),
                max(1.0, sim.ttl),
            )
            return
        lease = self.lease

        def refreshed(_: Any) -> None:
            if lease == self.lease:
                self.feed(_lease_input(t.LeaseRefreshed, lease, sent))
            self.later(sim.ttl / 5, self._lease_loop)

        def failed(exc: Exception) -> None:
            if isinstance(exc, LeaseExpired) and lease == self.lease:
                self.lease = 0
                self.feed(t.LeaseLost())
                self._lease_loop()
                return
            self.later(0.1, self._lease_loop)

        sim.request(self, lambda s: s.keepalive(lease, sim.clock.now), refreshed, failed, max(0.5, sim.ttl / 2))

    # ----- watch (coord/watch.py) -----

    def _connect(self) -> None:
        sim = self.sim
        self.session += 1
        session = self.session

        def open_watch(store: ModelStore) -> None:
            # A watch an earlier session (or an earlier incarnation of the agent) asked for, reaching
            # the store late, is nobody's: registering it would feed its changes to the current
            # session before that one's own opening read (an agent restarted during a store stall
            # then never saw the configuration; seed 1546).
            if session != self.session:
                return
            # Registered in the same instant as the history is read: nothing falls in between.
            update: Snapshot | Changes | None = None
            if self.revision:
                with contextlib.suppress(Compacted):
                    update = Changes(store.events_since(sim.keys.prefix, self.revision + 1), store.revision)
            if update is None:
                kvs, rev = store.get_prefix(sim.keys.prefix)
                update = Snapshot({kv.key: kv.value for kv in kvs}, rev)
            sim.watchers.add(self.name)
            self.watching = True
            self.push(update, session)

        sim.request(self, open_watch, lambda _: None, lambda e: self._broken(session), 2.0)

    def push(self, update: Snapshot | Changes, session: int) -> None:
        """Send a watch message: one stream, so messages arrive in the order they were sent. A
        message that cannot get through breaks the stream (nothing after it may arrive)."""
        if not self.link.from_store:
            self.sim.watch_broken(self)
            return
        self.watch_clock = max(self.watch_clock, self.sim.clock.now) + self.sim.latency()

        def arrive() -> None:
            if session == self.session:
                self.receive(update)

        self.later(self.watch_clock - self.sim.clock.now, arrive)

    def _broken(self, session: int) -> None:
        if session != self.session:
            return
        self.session += 1
        self.watching = False
        self.sim.watchers.discard(self.name)
        self.later(RETRY, self._connect, "watch retry")

    def receive(self, update: Snapshot | Changes) -> None:
        if isinstance(update, Changes):
            events = [e for e in update.events if e.revision > self.revision]
            if not events and update.events:
                return
            update = Changes(events, max(update.revision, self.revision))
        self.revision = update.revision
        self.feed(t.StoreUpdate(update))

    # ----- effects -----

    def carry(self, effect: t.Effect) -> None:
        sim = self.sim
        if isinstance(effect, t.Txn):
            tok = effect.token
            sim.note(self.name, f"txn {effect.why}")

            def answered(res: TxnResult) -> None:
                if not res.succeeded and effect.why == "report":
                    # state.report_guard: the lease that claimed the action is gone.
                    sim.note(self.name, "report refused: the claim is gone with its lease")
                self.feed(t.TxnDone(tok, res.succeeded))

            sim.request(
                self,
                lambda s: s.txn(effect.compares, effect.ops),
                answered,
                lambda exc: self.feed(t.TxnDone(tok, False, error=str(exc) or type(exc).__name__)),
                2.0,
            )
        elif isinstance(effect, t.Campaign):
            self._campaign(effect)
        elif isinstance(effect, t.RunOp):
            self._run_op(
                effect.rsc, effect.op, effect.timeout, effect.meta, lambda res: self.feed(t.OpDone(effect.token, res))
            )
        elif isinstance(effect, t.StartMonitor):
            self._gen += 1
            self.monitors[effect.rsc] = self._gen
            self._monitor(effect, self._gen)
        elif isinstance(effect, t.StopMonitor):
            self.monitors.pop(effect.rsc, None)
        elif isinstance(effect, t.Decide):
            plan = sim.decide(effect.spec, effect.state)
            self.later(0.01, lambda: self.feed(t.Decided(effect.token, plan, 0.01)))
        elif isinstance(effect, t.Fence):
            sim.fence(self, effect)
        elif isinstance(effect, t.Emit):
            sim.note(self.name, f"{effect.kind}: {effect.message}")
        elif isinstance(effect, t.Exit):
            self.crash(power=False)
        # Cancel: a fence device already at work goes on (as a cancelled fence agent may have
        # fenced already); the core ignores the answer of a token it cancelled.

    def _campaign(self, c: t.Campaign) -> None:
        """coord/election.campaign: put the leader key if absent; if that compare fails, read the
        key (a second request): won if it holds this node's name under this lease (an earlier
        campaign's transaction went through, its answer was lost)."""
        sim, key, me = self.sim, self.sim.keys.leader, self.name.encode()
        sim.note(self.name, "txn campaign")

        def failed(exc: Exception) -> None:
            self.feed(t.TxnDone(c.token, False, error=str(exc) or type(exc).__name__))

        def read(kv: Any) -> None:
            self.feed(t.TxnDone(c.token, kv is not None and kv.value == me and kv.lease == c.lease))

        def answered(res: Any) -> None:
            if res.succeeded:
                self.feed(t.TxnDone(c.token, True))
                return
            sim.request(self, lambda s: s.get(key), read, failed, 2.0)

        put = (Put(key, me, c.lease),)
        sim.request(self, lambda s: s.txn((absent(key),), put), answered, failed, 2.0)

    def _run_op(self, rsc: str, op: str, timeout: float, meta: dict[str, str], done: Callable[[Any], None]) -> None:
        sim, machine, epoch = self.sim, self.machine, self.ops_epoch
        promotable = meta.get("promotable") == "true"
        if op in ("start", "promote"):
            sim.checks.before_start(self.name, rsc, op)
        plan = sim.agents.begin(self.name, rsc, op, timeout, promotable, sim.clock.now)
        if op != "monitor":
            sim.note(self.name, f"{op} {rsc} begins")

        def end() -> None:
            if machine != self.machine:
                return  # the machine lost power: the operation died with it
            if epoch != self.ops_epoch:
                sim.note(self.name, f"{op} {rsc}: ended by the next agent")
                return
            if sim.clock.now < self.paused_until:
                sim.clock.at(self.paused_until, end)
                return
            sim.agents.end(self.name, rsc, op, plan.result, promotable)
            if op != "monitor":
                sim.note(self.name, f"{op} {rsc}: {plan.result.status.value}")
            if self.up and inc == self.incarnation:
                done(plan.result)

        inc = self.incarnation
        sim.clock.after(plan.duration, end, f"{op} {rsc}")

    def _monitor(self, m: t.StartMonitor, gen: int) -> None:
        def due() -> None:
            if self.monitors.get(m.rsc) != gen:
                return

            def seen(res: Any) -> None:
                if self.monitors.get(m.rsc) != gen:
                    return
                if res.status is (Status.PROMOTED if m.role == "Promoted" else Status.SUCCESS):
                    self._monitor(m, gen)
                    return
                del self.monitors[m.rsc]
                # The agent forgets it only on a clean "not running" (daemon._note_monitor_result).
                if res.status is Status.NOT_RUNNING and m.rsc in self.sim.truth.on(self.name):
                    self.sim.monitor_dropped.add((self.name, m.rsc))
                self.feed(t.MonitorFailed(m.rsc, res, m.interval))

            self._run_op(m.rsc, "monitor", m.timeout, {}, seen)

        self.later(m.interval, due, f"monitor {m.rsc}")


def _lease_input(cls: Any, lease: int, sent: float) -> Any:
    """The lease input, with the time its request was sent if the interface carries it: the
    lease lives at least ttl from then, never from when the answer came (after a pause, say)."""
    if "sent" in getattr(cls, "__dataclass_fields__", {}):
        return cls(lease, sent=sent)
    return cls(lease)


class Checks(Protocol):
    def before_start(self, node: str, rsc: str, op: str) -> None: ...

    def committed(self, events: list[Event], expired: bool) -> None: ...


class Cluster:
    """The world of one run: clock, store, network, truth, nodes, fence devices."""

    def __init__(
        self,
        rng: random.Random,
        nodes: list[str],
        ttl: int,
        make_brain: Callable[[str], Brain],
        cluster: str = "sim",
        op_fail_rate: float = 0.0,
        max_op: float = 1.0,
        stops_fail: bool = True,
    ) -> None:
        self.rng = rng
        self.clock = Clock()
        self.store = ModelStore()
        self.truth = Truth()
        # Without stonith a failed stop cannot be made safe by any cluster manager (a node cut off
        # from the store cannot even say it failed), so the random failures spare stops and demotes.
        failing = {"start", "promote", "monitor"} | ({"stop", "demote"} if stops_fail else set())
        self.agents = ResourceAgents(rng, self.truth, op_fail_rate, max_op, frozenset(failing))
        self.devices: dict[str, FenceDevice] = {}
        self.ttl = ttl
        self.keys = st.Keys(cluster)
        self.make_brain = make_brain
        self.shells = {n: Shell(self, n) for n in nodes}
        self.watchers: set[str] = set()
        # (node, rsc) whose monitor failed while it still ran there (for the checkers' notes).
        self.monitor_dropped: set[tuple[str, str]] = set()
        self.trace: list[tuple[float, str, str]] = []
        self.checks: Checks
        self._reaper_at = float("inf")
        self.fences_end = 0.0  # when the last fence begun so far ends

    def note(self, who: str, what: str) -> None:
        self.trace.append((round(self.clock.now, 4), who, what))

    # ----- the network between a node (or the operator) and the store -----

    def latency(self) -> float:
        return self.rng.uniform(0.001, 0.005)

    def request(
        self,
        shell: Shell | None,
        apply: Callable[[ModelStore], Any],
        ok: Callable[[Any], None],
        fail: Callable[[Exception], None],
        timeout: float,
    ) -> None:
        """Send a request: it reaches the store if the link allows, waits out an election, is
        applied, and its answer comes back if the link allows and in time; else `fail`."""
        sent = self.clock.now
        settled = [False]

        def answer(fn: Callable[[], None]) -> None:
            if not settled[0]:
                settled[0] = True
                fn()

        def deliver(fn: Callable[[], None], delay: float) -> None:
            if shell is None:
                self.clock.after(delay, lambda: answer(fn))
            else:
                shell.later(delay, lambda: answer(fn))

        deliver(lambda: fail(TimeoutError(f"no answer within {timeout:g}s")), timeout)
        if shell is not None and not shell.link.to_store:
            return

        def arrive() -> None:
            if self.store.stalled(self.clock.now):
                self.clock.at(self.store.stalled_until, arrive)
                return
            before = self.store.revision
            try:
                result = apply(self.store)
            except StoreError as exc:
                if self.store.quorum:  # no quorum: no answer at all, the client times out
                    error = exc
                    deliver(lambda: fail(error), self.latency())
                return
            if self.store.revision != before:
                self.committed(self.store.history_since(before), expired=False)
            if shell is not None and not shell.link.from_store:
                return
            if self.clock.now - sent < timeout:
                deliver(lambda: ok(result), self.latency())

        self.clock.after(self.latency(), arrive)

    def committed(self, events: list[Event], expired: bool) -> None:
        """A change in the store: the checkers see it, live watches carry it to their nodes."""
        self.checks.committed(events, expired)
        self.reap_later()
        mine = [e for e in events if e.key.startswith(self.keys.prefix)]
        if not mine:
            return
        batch = Changes(mine, mine[-1].revision)
        for name in sorted(self.watchers):
            shell = self.shells[name]
            if not shell.link.from_store:
                self.watch_broken(shell)
                continue
            shell.push(batch, shell.session)

    def watch_broken(self, shell: Shell) -> None:
        self.watchers.discard(shell.name)
        if shell.watching:
            shell.watching = False
            session = shell.session
            shell.later(WATCH_NOTICE, lambda: shell._broken(session), "watch broken")

    def reap_later(self) -> None:
        """Expire leases when the next one runs out (the store's own timer)."""
        when = self.store.next_expiry()
        if when is None:
            return
        if when <= self.clock.now:
            # Overdue: the store could not expire it (no quorum, or stalled in an election). Look
            # again a little later rather than at once, which looped forever without time passing.
            when = self.clock.now + REAP_RETRY
        if when >= self._reaper_at > self.clock.now:
            return
        self._reaper_at = when

        def reap() -> None:
            if self._reaper_at != when:
                return
            self._reaper_at = float("inf")
            before = self.store.revision
            if self.store.expire(self.clock.now):
                self.note("store", "lease expired")
                self.committed(self.store.history_since(before), expired=True)
            self.reap_later()

        self.clock.at(when, reap)

    # ----- the leader's helpers -----

    def decide(self, spec: ClusterSpec, state: ClusterState) -> Plan:
        # The scheduler is pure: the same input gives the same plan. The leader's core parses
        # each configuration once, so the spec is one object per configuration (kept alive in
        # the memo, so its id is not reused); the state is keyed by its content without `now`,
        # which only failure-timeout reads and the simulated configuration does not set.
        key = (id(spec), state.model_dump_json(exclude={"now"}))
        found = _DECISIONS.get(key)
        if found is None or found[0] is not spec:
            if len(_DECISIONS) > 4096:
                _DECISIONS.clear()
            found = _DECISIONS[key] = (spec, schedule(spec, state))
        return found[1]

    def fence(self, shell: Shell, f: t.Fence) -> None:
        device = self.devices.setdefault(f.device, FenceDevice())
        took, ok = device.plan(self.rng, self.clock.now + f.delay)
        self.fences_end = max(self.fences_end, self.clock.now + f.delay + took)
        self.note(shell.name, f"fencing {f.victim} with {f.device}")

        def done() -> None:
            if ok:
                victim = self.shells[f.victim]
                victim.crash(power=True)
                machine = victim.machine

                def boot() -> None:
                    if victim.machine == machine and not victim.up:  # nobody booted it meanwhile
                        victim.start()

                self.clock.after(self.rng.uniform(2, 8), boot, f"{f.victim} boots")
            self.note(shell.name, f"fence {f.victim}: {'ok' if ok else 'failed'}")
            shell.later(0.0, lambda: shell.feed(t.FenceDone(f.token, ok, "", took)))

        self.clock.after(f.delay + took, done)
