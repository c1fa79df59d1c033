"""The node agent: keeps its node's lease, probes and monitors the resources it hosts, carries out
its part of the leader's plan in order, and stops everything when it loses the store.

Tasks, all on one asyncio loop:
  lease     LeaseKeeper: grant, refresh every ttl/3; a new lease re-registers and re-probes
  follow    the whole prefix mirrored through a resilient watch; every change wakes the others
  worker    runs this node's ready plan actions, one at a time, in plan order
  monitors  one task per hosted resource with a monitor operation
  quorum    no refresh for too long: apply no-quorum-policy (stop = stop every local resource)
  heartbeat rewrites this node's heartbeat key every interval (heartbeat.py: fast detection)
  leader    (leader.py) feeds the leader's pure core (core/leader.py) and carries out its effects

Stopping without the leader (no quorum, the end of a shutdown) is in leaving.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from hakeeper.agent import leaving
from hakeeper.agent import state as st
from hakeeper.agent.core import node as node_core
from hakeeper.agent.core.leader import LeaderView, suspects_of
from hakeeper.agent.core.quorum import QuorumWatch
from hakeeper.agent.heartbeat import DEFAULT_NODE_TIMEOUT, Heartbeats, interval_for, note_update, write_deadline
from hakeeper.agent.metrics import Metrics
from hakeeper.agent.notifying import run_notify
from hakeeper.agent.plan import NODE_TASKS, PlanAction, PlanError, parse
from hakeeper.coord import election
from hakeeper.coord.lease import DEFAULT_LEASE_TTL, LeaseKeeper
from hakeeper.coord.store import Compare, Delete, Put, Store, StoreError
from hakeeper.coord.watch import Changes, Mirror, Snapshot, follow
from hakeeper.placement import Plan, schedule
from hakeeper.resources import pacemaker_cli
from hakeeper.resources.base import ResourceAgent, make_agent, ops_dir
from hakeeper.resources.crm_attribute import attrs_dir, clear_attrs, read_attrs, write_view
from hakeeper.resources.ocf import OcfAgent
from hakeeper.resources.result import Result, Status
from hakeeper.resources.runner import end_leftovers
from hakeeper.spec import ClusterSpec, ClusterState

log = logging.getLogger("hakeeper.agent")
SHUTDOWN_MARGIN = leaving.SHUTDOWN_MARGIN  # how long beyond the stop timeouts a shutdown may take

Decide = Callable[[ClusterSpec, ClusterState], Plan]


class Agent:
    def __init__(
        self,
        store: Store,
        node: str,
        cluster: str = "hakeeper",
        ttl: int = DEFAULT_LEASE_TTL,
        state_dir: str = "/run/hakeeper",
        decide: Decide = schedule,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        node_timeout: float = DEFAULT_NODE_TIMEOUT,
    ) -> None:
        self.store = store
        self.node = node
        self.cluster = cluster
        self.keys = st.Keys(cluster)
        self.ttl = ttl
        self.state_dir = os.path.join(state_dir, node)
        self.decide = decide
        self.metrics = metrics or Metrics(node)
        self.clock = clock
        self.mirror = Mirror()
        self.listeners: list[asyncio.Event] = []
        self.changed = self.subscribe()
        self.keeper = LeaseKeeper(store, ttl, on_grant=self._registered)
        self.probed = False
        self.registered = 0  # the lease this incarnation's member key was last registered under
        self.quorum_lost = False
        self.monitors: dict[str, asyncio.Task[None]] = {}
        self.agents: dict[str, ResourceAgent] = {}
        self.local_running: set[str] = set()  # what this agent believes it runs
        self.stopped = asyncio.Event()
        self.executed_epoch = 0
        self.leaving = False
        self.draining = False  # shutting down: the leader moves everything away first
        self.local_promoted: set[str] = set()  # instances this agent promoted (demote before stop)
        self.action_lock = asyncio.Lock()
        self.probed_ids: set[str] = set()
        self.executed: dict[int, bool] = {}
        self.executed_plan: bytes | None = None  # the plan (as stored) `executed` belongs to
        self._bad_plan: bytes | None = None  # the unreadable plan last complained about
        self._probe_needed = asyncio.Event()
        self._node_timeout = node_timeout  # the --node-timeout flag; the cluster option wins
        self.heartbeats = Heartbeats(node)
        self._attrs_view: dict[str, dict[str, str]] | None = None
        self.cluster_view_text: str | None = None  # what pacemaker_cli last wrote for the shims
        self._attrs_published = -1  # the attribute directory's mtime when last published after a monitor
        self._spec_raw: bytes | None = None
        self._spec: ClusterSpec | None = None
        self._meta_spec: ClusterSpec | None = None
        self._meta: dict[str, dict[str, str]] = {}
        # Last known definitions of what runs here (also in each status report): what stopping a
        # resource needs once the configuration drops it.
        self.definitions: dict[str, st.Definition] = {}
        self.in_flight_timeout = 0.0  # the timeout of the action running now, for shutdown's budget
        # Clear while a plan action's operation runs, set again once what it did is counted in
        # local_running: the no-quorum stop waits for it (leaving.stop_locally).
        self.op_settled = asyncio.Event()
        self.op_settled.set()

    # ----- shared helpers -----

    def spec(self) -> ClusterSpec | None:
        # Parsed once per configuration version: monitors, heartbeats and the leader ask often.
        raw = self.mirror.values.get(self.keys.config)
        if raw is not self._spec_raw:
            found = st.config_of(self.mirror.values, self.keys)
            self._spec_raw, self._spec = raw, (None if found is None else found[1])
        return self._spec

    @property
    def node_timeout(self) -> float:
        """Seconds of heartbeat silence after which the leader treats a node as lost (0: lease
        expiry only). The cluster option `node-timeout`, so every agent beats to the same rhythm,
        else this agent's --node-timeout."""
        spec = self.spec()
        if spec is not None and spec.cluster.node_timeout is not None:
            return spec.cluster.node_timeout
        return self._node_timeout

    def wake(self) -> None:
        for ev in self.listeners:
            ev.set()

    def subscribe(self) -> asyncio.Event:
        ev = asyncio.Event()
        self.listeners.append(ev)
        return ev

    async def event(self, kind: str, message: str, rsc: str | None = None, **extra: Any) -> None:
        now = self.clock()
        doc = {"at": now, "node": self.node, "kind": kind, "rsc": rsc, "message": message, **extra}
        log.info("%s: %s%s", kind, f"{rsc}: " if rsc else "", message)
        with contextlib.suppress(StoreError):
            await self.store.put(self.keys.event(time.time_ns(), self.node), st.dumps(doc))

    def agent_for(self, spec: ClusterSpec, rsc: str) -> ResourceAgent | None:
        """The agent for `rsc` (a resource, or the clone instance a plan names) on this node; for
        an orphan, built from its last known definition."""
        prim = st.primitive(spec, rsc)
        if prim is None:
            return self._orphan_agent(self.local_name(spec, rsc))
        local = st.local_id(spec, rsc)
        current = self.agents.get(local)
        if current is None or str(current.name) != str(prim.agent) or current.params != prim.params:
            try:
                current = make_agent(local, str(prim.agent), prim.params, self.state_dir)
            except ValueError as exc:
                log.error("%s: %s", rsc, exc)
                return None
            self.agents[local] = current
        current.meta = self._ocf_meta(spec, rsc)
        return current

    def _orphan_agent(self, rsc: str) -> ResourceAgent | None:
        known = self.known(rsc)
        if known is None:
            return None
        current = self.agents.get(rsc)
        if current is None or str(current.name) != known.agent or current.params != known.params:
            try:
                current = make_agent(rsc, known.agent, known.params, self.state_dir)
            except ValueError as exc:
                log.error("%s (orphan): %s", rsc, exc)
                return None
            self.agents[rsc] = current
        current.meta = dict(known.meta)
        return current

    def local_name(self, spec: ClusterSpec, instance: str) -> str:
        """What this node's reports call the resource a plan names. An orphaned anonymous clone's
        instance gets a number for the scheduler only (st.cluster_state): here it is the
        primitive's id its report was written under."""
        local = st.local_id(spec, instance)
        base, _, number = local.partition(":")
        if number.isdigit() and not st.configured(spec, local) and self.known(local) is None:
            return base
        return local

    def known(self, rsc: str) -> st.Definition | None:
        """The last known definition of `rsc` here: remembered, else from this node's report."""
        found = self.definitions.get(rsc)
        if found is None:
            doc = st.loads(self.mirror.values.get(self.keys.status_of(self.node, rsc)))
            found = st.Definition.from_json(doc.get("definition")) if isinstance(doc, dict) else None
            if found is not None:
                self.definitions[rsc] = found
        return found

    def _definition(self, spec: ClusterSpec, rsc: str, instance: str | None = None) -> st.Definition | None:
        """The definition to record in `rsc`'s report: as configured now (and remembered), else
        the last known one."""
        found = st.definition(spec, instance or rsc, self.node)
        if found is None:
            return self.known(rsc)
        self.definitions[rsc] = found
        return found

    def timeout_for(self, spec: ClusterSpec, rsc: str, op: str) -> float:
        prim = st.primitive(spec, rsc)
        if prim is not None:
            return st.op_timeout(prim, op)
        known = self.known(self.local_name(spec, rsc))
        return known.timeout(op) if known is not None else 20.0

    def _forget(self, rsc: str) -> None:
        """An orphan stopped (or found stopped): nothing more to know about it."""
        self.definitions.pop(rsc, None)
        self.agents.pop(rsc, None)

    def _ocf_meta(self, spec: ClusterSpec, rsc: str) -> dict[str, str]:
        """st.ocf_meta, worked out once per configuration: monitors ask on every tick."""
        if not st.configured(spec, rsc):
            known = self.known(self.local_name(spec, rsc))
            return dict(known.meta) if known is not None else {"on_node": self.node}
        if spec is not self._meta_spec:
            self._meta_spec, self._meta = spec, {}
        if rsc not in self._meta:
            self._meta[rsc] = st.ocf_meta(spec, rsc, self.node)
        return self._meta[rsc]

    # ----- node attributes (crm_attribute from resource agents) -----

    def attr_ops(self) -> list[Any]:
        """Publish this node's attribute files (crm_attribute writes them) where the store differs;
        bound to the lease, as Pacemaker's transient attributes end with the node's membership."""
        local = read_attrs(self.state_dir)
        stored = st.attributes(self.mirror.values, self.keys).get(self.node, {})
        lease = self.keeper.lease
        ops: list[Any] = [
            Put(self.keys.attr_of(self.node, n), st.dumps(v), lease) for n, v in local.items() if stored.get(n) != v
        ]
        ops += [Delete(self.keys.attr_of(self.node, n)) for n in stored if n not in local]
        ops += pacemaker_cli.outbox_ops(self)  # attributes set for other nodes: requests to them
        return ops if lease else []

    async def _publish_attrs(self, ra: ResourceAgent) -> None:
        """After a good monitor: publish the attributes the resource agent left. Any class may
        leave some (OCF agents through crm_attribute, native ones such as rabbitmq's `<rid>-cluster`
        directly). OCF agents are always looked at (crm_attribute may also queue requests for other
        nodes); for any other class one stat says whether the attribute directory changed since
        the last publish, so a monitor that writes nothing costs no more than that."""
        try:
            stamp = os.stat(attrs_dir(self.state_dir)).st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        if stamp == self._attrs_published and not isinstance(ra, OcfAgent):
            return
        ops = self.attr_ops()
        try:
            if ops:
                await self.store.txn([], ops)
        except StoreError:
            return  # looked at again after the next monitor
        # Without a lease nothing was published. And file systems stamp times coarsely: a write
        # right after this look could leave the same mtime, so a fresh one is not trusted yet.
        if self.keeper.lease and time.time_ns() - stamp > 1_000_000_000:
            self._attrs_published = stamp

    def _write_attrs_view(self) -> None:
        """Every node's attributes where crm_attribute -N NODE -G finds them."""
        view = st.attributes(self.mirror.values, self.keys)
        if view != self._attrs_view:
            write_view(self.state_dir, view)
            self._attrs_view = view

    # ----- lifecycle -----

    async def run(self) -> None:
        from hakeeper.agent.leader import Leader, LeaderPorts

        os.makedirs(self.state_dir, exist_ok=True)
        # Before anything runs here: end what a dead predecessor left running (runner.end_leftovers).
        for what in end_leftovers(ops_dir(self.state_dir)):
            await self.event("leftover-ended", f"ended what a previous agent on {self.node} left running: {what}")
        leader = Leader(
            LeaderPorts(
                store=self.store,
                node=self.node,
                cluster=self.cluster,
                decide=self.decide,
                metrics=self.metrics,
                clock=self.clock,
                emit=self.event,
                view=self.leader_view,
                node_timeout=lambda: self.node_timeout,
                changed=self.subscribe(),
                wake=self.wake,
            )
        )
        tasks = [
            asyncio.create_task(self.keeper.run(), name="lease"),
            asyncio.create_task(self._follow(), name="follow"),
            asyncio.create_task(self._worker(), name="worker"),
            asyncio.create_task(self._quorum(), name="quorum"),
            asyncio.create_task(leader.run(), name="leader"),
        ]
        tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        tasks.append(asyncio.create_task(pacemaker_cli.follow_requests(self), name="attr-requests"))
        try:
            done, _ = await asyncio.wait(
                [*tasks, asyncio.create_task(self.stopped.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            for t in done:
                if t in tasks and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            await cancel_all([*tasks, *self.monitors.values()])

    async def _registered(self, lease: int) -> None:
        """A new lease: a new incarnation of this node. Register, then probe before acting."""
        self.probed = False
        # Transient attributes belong to an incarnation: the probe's monitors set them afresh.
        clear_attrs(self.state_dir)
        await pacemaker_cli.purge_requests(self)  # requests made for an earlier incarnation are void
        await election.register(
            self.store,
            self.keys.members,
            self.node,
            lease,
            self.member_info(probed=False),
        )
        self.registered = lease
        self.metrics.lease_grants.inc()
        self._probe_needed.set()
        self.wake()

    async def _heartbeat(self) -> None:
        """Rewrite the heartbeat key (bound to the lease) every interval; the leader watches it.
        A write does not hold up the next one (a few in flight at most), and waits on one etcd
        member only a third of node-timeout before the client tries the next (write_deadline)."""
        beat = 0
        in_flight: set[asyncio.Task[None]] = set()

        async def put(value: bytes, lease: int, within: float) -> None:
            with contextlib.suppress(StoreError):
                await self.store.put_within(self.keys.heartbeat + self.node, value, lease, within)

        try:
            while True:
                # Recomputed each time: the cluster option may change with the configuration.
                timeout = self.node_timeout
                interval = interval_for(self.ttl, timeout) if timeout > 0 else 0.5
                lease = self.keeper.lease
                if timeout > 0 and lease and not self.quorum_lost and not self.leaving and len(in_flight) < 4:
                    beat += 1
                    task = asyncio.create_task(put(str(beat).encode(), lease, write_deadline(timeout)))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.sleep(interval)
        finally:
            for task in in_flight:
                task.cancel()

    def leader_view(self, changed: bool) -> LeaderView:
        """What the leader's core looks at: the store's values (a copy), the lease, whether the
        store answers (no refresh for 75% of the TTL: not), and whose heartbeat stopped (timed on
        the event loop's clock, as heartbeats are noted)."""
        values = dict(self.mirror.values)
        lease = self.keeper.lease
        loop_now = asyncio.get_running_loop().time()
        healthy = not self.quorum_lost and bool(lease) and self.keeper.healthy(loop_now, self.ttl * 0.25)
        suspects = suspects_of(self.spec(), values, self.keys, self.heartbeats, loop_now, self.node_timeout)
        return LeaderView(values, lease, healthy, suspects, changed)

    def _note_heartbeats(self, update: Snapshot | Changes) -> bool:
        """Note heartbeats (on the monotonic clock, as the leader's view reads them); True if the
        update held nothing else."""
        now = asyncio.get_running_loop().time()
        return note_update(self.heartbeats, self.keys.heartbeat, self.keys.members, update, now)

    async def _follow(self) -> None:
        async for update in follow(self.store, self.keys.prefix):
            self.mirror.apply(update)
            if isinstance(update, Snapshot) or any(e.key.startswith(self.keys.attrs) for e in update.events):
                self._write_attrs_view()
            if self._note_heartbeats(update):
                self.metrics.revision.set(self.mirror.revision)
                continue
            pacemaker_cli.refresh_view(self)  # what cibadmin/crm_mon/crm_node answer agents
            if self.keys.reprobe + self.node in self.mirror.values:
                self._probe_needed.set()  # `resource cleanup` asks for a fresh look
            self.metrics.revision.set(self.mirror.revision)
            self.wake()

    # ----- probing and plan execution -----

    async def _probe(self, spec: ClusterSpec) -> set[str]:
        """Find out what runs here (after a (re)start or a new lease): one monitor per configured
        resource, and one per orphan this node reports (with its last known definition), so an
        orphan is neither lost track of nor left running. Returns the ids probed."""
        ops: list[Any] = []
        probed: set[str] = set()
        targets = [(prim.id, st.op_timeout(prim, "monitor")) for prim in spec.resources.primitives]
        orphans = st.orphans_of(spec, self.mirror.values, self.keys, self.node)
        for rsc in sorted(orphans):
            known = self.known(rsc)
            if known is None:
                # A report without a definition (written before reports carried one): nothing
                # here can stop it. Say so rather than pretend; the report stays.
                await self.event(
                    "orphan-unknown",
                    f"{rsc} is reported on {self.node} but is neither configured nor described: "
                    "it cannot be probed or stopped here; stop it by hand, then `resource cleanup`",
                    rsc,
                )
                probed.add(rsc)
                continue
            targets.append((rsc, known.timeout("monitor")))
        for rsc, timeout in targets:
            ra = self.agent_for(spec, rsc)
            if ra is None:
                continue
            probed.add(rsc)
            res = await ra.action("monitor", timeout)
            known = self._definition(spec, rsc)
            found = node_core.probe_report(
                self.keys, self.node, rsc, res, self._promotable(spec, rsc), known, rsc in orphans, self.clock()
            )
            found.hosting.apply(rsc, self.local_running, self.local_promoted)
            ops.append(found.op)
            if found.monitor is not None:
                self._start_monitor(spec, rsc, found.monitor)
            if found.forget:
                self._forget(rsc)
        ops.append(Delete(self.keys.reprobe + self.node))
        ops += self.attr_ops()
        lease = self.keeper.lease
        ops.append(
            Put(
                self.keys.member(self.node),
                st.dumps(self.member_info(probed=True)),
                lease,
            )
        )
        await self.store.txn([], ops)
        self.probed = True
        orphan_count = len(orphans)
        await self.event(
            "probe",
            f"probed {len(spec.resources.primitives)} resources"
            + (f" and {orphan_count} orphan{'s' if orphan_count != 1 else ''}" if orphan_count else "")
            + f", {len(self.local_running)} running here",
        )
        return probed

    def status_doc(
        self, res: Result, op: str, ok: bool, role: str = "Started", known: st.Definition | None = None
    ) -> dict[str, Any]:
        return st.status_doc(res, op, ok, self.clock(), role, known)

    async def _worker(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            # Nothing before this incarnation is registered (then it probes first): a claim made
            # in between would act for a node the leader does not count as a member.
            if self.quorum_lost or self.leaving or not self.keeper.lease or self.registered != self.keeper.lease:
                continue
            spec = self.spec() or ClusterSpec()
            try:
                # Probe after a new lease, on request, and when the configuration names resources
                # (or this node's reports name orphans) this agent has not looked for yet.
                ids = {p.id for p in spec.resources.primitives}
                ids |= set(st.orphans_of(spec, self.mirror.values, self.keys, self.node))
                if self._probe_needed.is_set() or not ids <= self.probed_ids:
                    self._probe_needed.clear()
                    self.probed_ids = await self._probe(spec) | ids
                await self._execute(spec)
            except StoreError as exc:
                log.warning("worker: %s", exc)
                if not self.probed:
                    self._probe_needed.set()
                await asyncio.sleep(0.2)
                self.wake()

    async def _execute(self, spec: ClusterSpec) -> None:
        raw = self.mirror.values.get(self.keys.plan)
        if raw is None:
            return
        try:
            plan = parse(raw)
        except PlanError as exc:
            # Nothing here acts on it; the leader publishes a new plan over it.
            if raw != self._bad_plan:
                log.error("%s; waiting for the leader's next plan", exc)
                self._bad_plan = raw
            return
        epoch = plan.epoch
        # Our own results count at once: the store's copy of them may not have come back yet.
        # They belong to this very plan (a plan written over an unreadable one may repeat its
        # epoch), so they go with it.
        if self.executed_plan != raw:
            self.executed_plan, self.executed_epoch, self.executed = raw, epoch, {}
        done = {**st.done_marks(self.mirror.values, self.keys, epoch), **self.executed}
        todo = plan.ready(done, self.node, NODE_TASKS)
        if not todo:
            return
        action = todo[0]
        # Claim it (core/node.py: claim, and the protocol): either the leader sees the claim and
        # waits for it, or its new plan wins and the claim fails. Never both.
        instance = action.resource or ""
        rsc = self.local_name(spec, instance)
        known = self._definition(spec, rsc, instance)
        promotable = self._promotable(spec, rsc)
        claimed = node_core.claim(
            self.keys, self.node, raw, epoch, action, self.keeper.lease, rsc, promotable, known, self.clock()
        )
        res = await self.store.txn(list(claimed.compares), list(claimed.ops))
        if not res.succeeded:
            return
        running = claimed.running
        async with self.action_lock:
            if self.leaving:
                return
            await self._run_action(spec, raw, epoch, action, running)
        self.wake()  # the next ready action may already be waiting

    async def _run_action(self, spec: ClusterSpec, raw: bytes, epoch: int, action: PlanAction, running: bytes) -> None:
        if action.task == "notify":  # a clone's notification: agent/notifying.py
            await run_notify(self, spec, epoch, action, running)
            return
        instance, task = action.resource or "", action.task
        rsc = self.local_name(spec, instance)  # what this node's reports and bookkeeping call it
        orphan = not st.configured(spec, rsc)
        ra = self.agent_for(spec, instance)
        known = self._definition(spec, rsc, instance)
        if node_core.stops_monitor_first(task):
            self.stop_monitor(rsc)
        if ra is None:
            res = Result(Status.NOT_CONFIGURED, 6, f"no resource {rsc} in the configuration, nor a definition of it")
        else:
            timeout = self.timeout_for(spec, instance, task)
            self.in_flight_timeout = timeout
            self.op_settled.clear()
            try:
                res = await ra.action(task, timeout)
            finally:
                self.in_flight_timeout = 0.0
                self.op_settled.set()  # (no await before the result is counted just below)
        promotable, old_fail, cut_off = self._promotable(spec, rsc), self._fail_count(rsc), self.quorum_lost
        report = node_core.action_report(
            self.keys,
            self.node,
            spec,
            epoch,
            action,
            rsc,
            res,
            running,
            promotable,
            known,
            old_fail,
            orphan,
            cut_off,
            self.clock(),
        )
        ok = report.ok
        self.metrics.actions.labels(task, "ok" if ok else res.status.value).inc()
        if not ok:
            self.metrics.failures.labels(rsc, task).inc()
        report.hosting.apply(rsc, self.local_running, self.local_promoted)
        ops: list[Any] = [*report.ops, *self.attr_ops()]
        try:
            # Only while this incarnation's claim stands (state.report_guard): a node whose lease
            # expired meanwhile may be being fenced, and its report must not make it look clean.
            reported = await self.store.txn([report.guard], ops)
        except StoreError:
            # The action ran, whatever became of its report: what it started is monitored. A
            # report whose answer was lost may well be in the store, and then no claim of the
            # action succeeds again to get here (found by the simulation, seed 1345).
            if report.monitor is not None:
                self._start_monitor(spec, rsc, report.monitor)
            raise
        if not reported.succeeded:
            # The lease that claimed the action is gone: this node's next incarnation probes and
            # reports what runs here; until then (or its fence) its old reports stand.
            why = "its report is void: the lease that claimed it expired"
            log.warning("%s %s on %s: %s; %s", task, rsc, self.node, res.describe(), why)
            if report.monitor is not None:
                self._start_monitor(spec, rsc, report.monitor)
            return
        if ok and task == "stop" and orphan:
            self._forget(rsc)
        if self.executed_plan == raw:
            self.executed[action.id] = ok
        await self.event(
            task if ok else f"{task}-failed",
            f"{task}{' (orphan, with its last known definition)' if orphan else ''} on {self.node}: "
            f"{res.describe()} in {res.duration:.2f}s{'' if ok else ' ' + res.output.strip()[-200:]}",
            rsc,
        )
        if report.monitor is not None:
            self._start_monitor(spec, rsc, report.monitor)

    def _fail_count(self, rsc: str) -> int:
        return st.fail_count_of(self.mirror.values, self.keys, self.node, rsc)

    def _promotable(self, spec: ClusterSpec, rsc: str) -> bool:
        return self._ocf_meta(spec, rsc).get("promotable") == "true"

    # ----- monitors -----

    def _start_monitor(self, spec: ClusterSpec, rsc: str, role: str = "Started") -> None:
        prim = st.primitive(spec, rsc)
        op = st.monitor_op(prim, role) if prim is not None else None
        if op is None:
            return
        self.stop_monitor(rsc)
        interval, timeout = op
        self.monitors[rsc] = asyncio.create_task(self._monitor(rsc, interval, timeout, role == "Promoted"))

    def stop_monitor(self, rsc: str) -> None:
        task = self.monitors.pop(rsc, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _monitor(self, rsc: str, interval: float, timeout: float, promoted: bool) -> None:
        while True:
            await asyncio.sleep(interval)
            spec = self.spec()
            # An orphan is not monitored: the leader has it stopped (or, with
            # stop-orphan-resources false, left alone).
            ra = self.agent_for(spec, rsc) if spec is not None and st.configured(spec, rsc) else None
            if ra is None or spec is None:
                if self.monitors.get(rsc) is asyncio.current_task():
                    del self.monitors[rsc]
                return
            res = await ra.action("monitor", timeout, interval)
            self.metrics.monitors.labels(rsc, res.status.value).inc()
            # Running in the role it should have (a promoted instance found unpromoted, or the
            # reverse, is a failure as in Pacemaker).
            if res.status is (Status.PROMOTED if promoted else Status.SUCCESS):
                await self._publish_attrs(ra)
                continue
            # Expected running, found otherwise: a failure (a clean "not running" included).
            self.monitors.pop(rsc, None)
            node_core.monitor_hosting(res.status).apply(rsc, self.local_running, self.local_promoted)
            self.metrics.failures.labels(rsc, "monitor").inc()
            known = self._definition(spec, rsc)
            ops = node_core.monitor_failure(
                self.keys, self.node, spec, rsc, res, promoted, interval, known, self._fail_count(rsc), self.clock()
            )
            while True:
                try:
                    await self.store.txn([], list(ops))
                    break
                except StoreError:
                    await asyncio.sleep(0.2)
            await self.event(
                "monitor-failed", f"monitor on {self.node}: {res.describe()} {res.output.strip()[-200:]}", rsc
            )
            return

    # ----- quorum -----

    async def _quorum(self) -> None:
        loop = asyncio.get_running_loop()
        # Lost when no refresh for 75% of the TTL: the stop must finish before the lease can expire
        # in the store and another node may start the resources (after fencing this one).
        # After a stall of this process, the keeper first gets a chance to refresh (core/quorum.py).
        margin = self.ttl * 0.25
        watch = QuorumWatch(margin)
        while True:
            await asyncio.sleep(0.05)
            now, keeper = loop.time(), self.keeper
            healthy = keeper.healthy(now, margin)
            verdict = watch.check(now, healthy, keeper.lease, keeper.last_refresh)
            self.metrics.quorum.set(1 if healthy else 0)
            if verdict == "lost" and not self.quorum_lost and keeper.last_refresh > float("-inf"):
                self.quorum_lost = True
                await self._lost_quorum()
            elif healthy and self.quorum_lost:
                self.quorum_lost = False
                self._probe_needed.set()
                log.warning("store reachable again: probing before acting")
                self.wake()

    async def _lost_quorum(self) -> None:
        spec = self.spec()
        policy = spec.cluster.no_quorum_policy if spec is not None else "stop"
        log.error("cut off from the store; no-quorum-policy=%s", policy)
        if policy in ("freeze", "ignore") or spec is None:
            return
        await self._stop_locally(spec, "no quorum")
        self.metrics.quorum_stops.inc()
        if policy == "suicide":
            self.stopped.set()

    async def _stop_locally(self, spec: ClusterSpec, why: str) -> list[str]:
        return await leaving.stop_locally(self, spec, why)

    def member_info(self, probed: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {"pid": os.getpid(), "started": self.clock(), "probed": probed}
        if self.draining:
            doc["shutdown"] = True
        return doc

    async def shutdown(self, stop_resources: bool = True, drain_timeout: float = 120.0) -> None:
        """Leave cleanly: the leader moves everything away first, then the rest stops here
        (leaving.shutdown has the rules and the bound)."""
        await leaving.shutdown(self, stop_resources, drain_timeout)


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until every one has ended. CPython before 3.12 can lose a
    cancellation inside asyncio.wait_for when the awaited thing finishes at the same moment; a
    loop task that lost it would run on and a plain gather would wait forever. So whatever is still
    running a second later is cancelled again."""
    pending = {t for t in tasks if not t.done()}
    for t in pending:
        t.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        for t in pending:
            t.cancel()


def compare_leader(keys: st.Keys, node: str) -> Compare:
    return Compare(keys.leader, "value", "==", node.encode())
