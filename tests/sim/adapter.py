"""One simulated node's own side (not the leader's): the agent's real node decisions,
`hakeeper.agent.core.node` (the claim transaction, the report of a result, a probe's and a failed
monitor's reports, what runs here, the stop order without the leader), sequenced as the daemon's
asyncio tasks sequence them (agent/daemon.py, agent/leaving.py): register after a lease grant,
probe, claim by compare-and-set, run, report; monitors; the quorum rule (stop everything locally
after 75% of the TTL without a refresh).

It speaks the core's interface (hakeeper.agent.core.types: inputs in, effects out, `now` passed
in), so the simulation's shell (tests/sim/cluster.py) drives it as it drives the leader's core
(brain.py). What is here and not in the agent's core is that sequencing: the daemon's is spread
over its tasks (worker, monitors, quorum) and awaits the store, this one is a state machine with
answer tokens; each place says which part of the daemon it follows.

Heartbeats are written when the configuration sets node-timeout (SimConfig.node_timeout).
Left out (the simulation does not model them): node attributes, orphans, event keys, notifications, the shutdown drain.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Any

from hakeeper.agent import plan as pl
from hakeeper.agent import state as st
from hakeeper.agent.core import node as node_core
from hakeeper.agent.core import types as t
from hakeeper.agent.core.quorum import STALL, QuorumWatch
from hakeeper.agent.heartbeat import interval_for
from hakeeper.coord.store import Compare, Delete, Put
from hakeeper.coord.watch import Mirror
from hakeeper.resources.result import Result
from hakeeper.spec import ClusterSpec


@functools.lru_cache(maxsize=64)
def _spec_of(raw: bytes | None, cluster: str) -> ClusterSpec | None:
    keys = st.Keys(cluster)
    found = st.config_of({keys.config: raw}, keys) if raw is not None else None
    return None if found is None else found[1]


@functools.lru_cache(maxsize=256)
def _plan_of(raw: bytes) -> pl.PlanDoc | None:
    try:
        return pl.parse(raw)
    except pl.PlanError:
        return None


@dataclass
class Pending:
    """What an answer with this token continues."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class NodeAdapter:
    """One node's own decisions (not the leader's); `handle(now, input) -> effects`, `deadline()` as the core's."""

    def __init__(self, node: str, cluster: str, ttl: int) -> None:
        self.node = node
        self.cluster = cluster
        self.keys = st.Keys(cluster)
        self.ttl = ttl
        self.mirror = Mirror()
        self.values: dict[str, bytes] = self.mirror.values
        self.revision = 0
        self.lease = 0
        self.last_refresh = float("-inf")
        self.quorum_lost = False
        self.quorum_watch = QuorumWatch(ttl * 0.25)  # the daemon's: a stall of this node is its own silence
        self.probed = False
        self.probe_needed = False
        self.probed_ids: set[str] = set()
        self.busy = False  # the worker: a probe, an action, or the local stop in flight
        self.local_running: set[str] = set()
        self.local_promoted: set[str] = set()
        self.local_stops: list[tuple[str, str]] = []  # no quorum: the local stops still to run
        self.left: set[str] = set()  # of those, what could not be stopped
        self.stopping = False
        self.stop_deferred = False  # the local stop waits for a plan action's operation in flight
        self.registered = 0  # the lease this incarnation registered its member key under
        self.executed_epoch = 0
        self.executed: dict[int, bool] = {}
        self.executed_plan: bytes | None = None  # as the daemon: results belong to the plan as stored
        self._executed_at: tuple[int, int, int] | None = None
        self.pending: dict[int, Pending] = {}
        self._spec_raw: bytes | None = None
        self._spec: ClusterSpec | None = None
        self._tokens = itertools.count(1)
        self.now = 0.0
        self.beat = 0  # heartbeats written (the cluster option node-timeout > 0: daemon._heartbeat)
        self.next_beat = 0.0

    # ----- the interface -----

    def deadline(self) -> float | None:
        times: list[float] = []
        if self.node_timeout() > 0:
            times.append(self.next_beat)
        if self.lease and not self.quorum_lost:
            times.append(self.last_refresh + self.ttl * 0.75)
            # The daemon checks its lease every 50 ms: a longer gap is a stall (a pause) only
            # because the node did not run, never because nothing woke it.
            times.append(self.quorum_watch.last_check + STALL / 2)
        return min(times, default=None)

    def handle(self, now: float, inp: t.Input) -> list[t.Effect]:
        self.now = now
        out: list[t.Effect] = []
        if isinstance(inp, t.LeaseGranted):
            self.lease = inp.lease
            self.last_refresh = getattr(inp, "sent", now)
            self.probed = False
            self.probe_needed = True
            out.append(self._register())
        elif isinstance(inp, t.LeaseRefreshed):
            if inp.lease == self.lease:
                self.last_refresh = max(self.last_refresh, getattr(inp, "sent", now))
        elif isinstance(inp, t.LeaseLost):
            self.lease = 0
        elif isinstance(inp, t.StoreUpdate):
            self._apply(inp.update)
            if self.keys.reprobe + self.node in self.values:
                self.probe_needed = True
        elif isinstance(inp, t.MonitorFailed):
            out += self._monitor_failed(inp)
        elif isinstance(inp, (t.TxnDone, t.OpDone, t.Decided, t.FenceDone)):
            pending = self.pending.pop(inp.token, None)
            if pending is not None:
                out += self._answer(pending, inp)
        out += self._quorum()
        out += self._worker()
        out += self._heartbeat()
        return out

    def node_timeout(self) -> float:
        """The cluster option node-timeout (the simulated agents have no --node-timeout: 0)."""
        spec = self.spec()
        return float(spec.cluster.node_timeout or 0.0) if spec is not None else 0.0

    def _heartbeat(self) -> list[t.Effect]:
        """As daemon._heartbeat: every interval, while the node has a lease and the store, the
        heartbeat key is rewritten (bound to the lease), with at most four writes in flight."""
        timeout = self.node_timeout()
        if timeout <= 0 or self.now < self.next_beat:
            return []
        self.next_beat = self.now + interval_for(self.ttl, timeout)
        in_flight = sum(1 for p in self.pending.values() if p.kind == "heartbeat")
        if not self.lease or self.quorum_lost or in_flight >= 4:
            return []
        self.beat += 1
        beat = Put(self.keys.heartbeat + self.node, str(self.beat).encode(), self.lease)
        return [self._txn("heartbeat", [], [beat])]

    # ----- helpers -----

    def _token(self, kind: str, **data: Any) -> int:
        token = next(self._tokens)
        self.pending[token] = Pending(kind, data)
        return token

    def _register(self) -> t.Txn:
        member = Put(self.keys.member(self.node), st.dumps({"probed": False}), self.lease)
        return self._txn("register", [], [member], lease=self.lease)

    def _txn(self, why: str, compares: list[Compare], ops: list[Any], **data: Any) -> t.Txn:
        return t.Txn(self._token(why, **data), tuple(compares), tuple(ops), why)

    def _apply(self, update: Any) -> None:
        self.mirror.apply(update)  # the daemon's own Mirror
        self.values, self.revision = self.mirror.values, self.mirror.revision

    def spec(self) -> ClusterSpec | None:
        # Parsed once per configuration version, as the daemon does.
        raw = self.values.get(self.keys.config)
        if raw is not self._spec_raw:
            self._spec_raw, self._spec = raw, _spec_of(raw, self.cluster)
        return self._spec

    def healthy(self, margin: float) -> bool:
        return self.lease != 0 and self.now - self.last_refresh < self.ttl - margin

    def _promotable(self, spec: ClusterSpec, rsc: str) -> bool:
        return st.ocf_meta(spec, rsc, self.node).get("promotable") == "true"

    def _old_fail(self, rsc: str) -> int:
        return st.fail_count_of(self.values, self.keys, self.node, rsc)

    def _run(self, spec: ClusterSpec, rsc: str, op: str, **data: Any) -> t.RunOp:
        prim = st.primitive(spec, rsc)
        assert prim is not None
        return t.RunOp(
            self._token("op", rsc=rsc, op=op, **data),
            rsc,
            op,  # type: ignore[arg-type]
            st.op_timeout(prim, op),
            str(prim.agent),
            dict(prim.params),
            st.ocf_meta(spec, rsc, self.node),
        )

    def _monitor(self, spec: ClusterSpec, rsc: str, role: str) -> list[t.Effect]:
        prim = st.primitive(spec, rsc)
        op = st.monitor_op(prim, role) if prim is not None else None
        if op is None:
            return []
        return [t.StartMonitor(rsc, op[0], op[1], role)]  # type: ignore[arg-type]

    # ----- quorum (daemon._quorum, _lost_quorum, _stop_locally) -----

    def _quorum(self) -> list[t.Effect]:
        healthy = self.healthy(self.ttl * 0.25)
        verdict = self.quorum_watch.check(self.now, healthy, self.lease, self.last_refresh)
        if verdict == "lost" and not self.quorum_lost and self.last_refresh > float("-inf"):
            self.quorum_lost = True
            spec = self.spec()
            if spec is None or spec.cluster.no_quorum_policy in ("freeze", "ignore"):
                return []
            self.stopping = True
            out: list[t.Effect] = [t.StopMonitor(r) for r in sorted(self.local_running)]
            if any(
                p.kind == "op" and not p.data.get("local") and not p.data.get("probe") for p in self.pending.values()
            ):
                # As leaving.stop_locally: a plan action's operation in flight is waited for,
                # and what it started is stopped with the rest (seed 80619).
                self.stop_deferred = True
                return out
            return [*out, *self._begin_local_stop(spec)]
        # The daemon notices the store again in the same task that runs the local stops: only
        # once they are over.
        if healthy and self.quorum_lost and not self.stopping:
            self.quorum_lost = False
            self.probe_needed = True
        return []

    def _begin_local_stop(self, spec: ClusterSpec) -> list[t.Effect]:
        """As leaving.stop_locally: what this agent believes runs here, in the core's stop order,
        demoting first."""
        todo = node_core.stop_order(spec, self.local_running)
        self.local_stops = [
            s for r in todo for s in ([(r, "demote")] if r in self.local_promoted else []) + [(r, "stop")]
        ]
        self.left = set()
        return [*self._stop_next(spec), t.Emit("no-quorum", f"{self.node} cut off: stopping {len(todo)}")]

    def _stop_next(self, spec: ClusterSpec) -> list[t.Effect]:
        while self.local_stops:
            rsc, op = self.local_stops.pop(0)
            if st.primitive(spec, rsc) is not None:
                return [self._run(spec, rsc, op, local=True)]
            self.left.add(rsc)
        # Done: what could not be stopped is what runs here now (the daemon assigns it likewise).
        self.stopping = False
        self.local_running = set(self.left)
        self.local_promoted &= self.local_running
        return []

    # ----- the worker (daemon._worker, _probe, _execute, _run_action) -----

    def _worker(self) -> list[t.Effect]:
        if self.busy or self.quorum_lost or not self.lease or self.registered != self.lease:
            return []  # the daemon registers (awaited) before its worker may probe
        spec = self.spec() or ClusterSpec()
        ids = {p.id for p in spec.resources.primitives}
        if self.probe_needed or not ids <= self.probed_ids:
            self.probe_needed = False
            self.probed_ids = set(ids)
            todo = [p.id for p in spec.resources.primitives]
            return self._probe_next(spec, todo, [])
        return self._execute(spec)

    def _probe_next(self, spec: ClusterSpec, todo: list[str], ops: list[Any]) -> list[t.Effect]:
        self.busy = True
        if todo:
            return [self._run(spec, todo[0], "monitor", probe=True, todo=todo[1:], ops=ops)]
        ops = [
            *ops,
            Delete(self.keys.reprobe + self.node),
            Put(self.keys.member(self.node), st.dumps({"probed": True}), self.lease),
        ]
        return [self._txn("probed", [], ops)]

    def _probe_result(self, spec: ClusterSpec, rsc: str, res: Result, data: dict[str, Any]) -> list[t.Effect]:
        known = st.definition(spec, rsc, self.node)
        found = node_core.probe_report(
            self.keys, self.node, rsc, res, self._promotable(spec, rsc), known, False, self.now
        )
        found.hosting.apply(rsc, self.local_running, self.local_promoted)
        out = self._monitor(spec, rsc, found.monitor) if found.monitor is not None else []
        return out + self._probe_next(spec, data["todo"], [*data["ops"], found.op])

    def _execute(self, spec: ClusterSpec) -> list[t.Effect]:
        raw = self.values.get(self.keys.plan)
        if raw is None:
            return []
        doc = _plan_of(raw)
        if doc is None:
            return []
        if self.executed_plan != raw:
            self.executed_plan, self.executed_epoch, self.executed = raw, doc.epoch, {}
        seen = (self.revision, doc.epoch, len(self.executed))
        if seen == self._executed_at:
            return []  # nothing changed since the last look: nothing new is ready
        done = {**st.done_marks(self.values, self.keys, doc.epoch), **self.executed}
        todo = doc.ready(done, self.node)
        if not todo:
            self._executed_at = seen
            return []
        if not todo:
            return []
        action = todo[0]
        self.busy = True
        instance = action.resource or ""
        rsc = st.local_id(spec, instance)
        known = st.definition(spec, instance, self.node)
        claimed = node_core.claim(
            self.keys, self.node, raw, doc.epoch, action, self.lease, rsc, self._promotable(spec, rsc), known, self.now
        )
        data = {"epoch": doc.epoch, "action": action, "raw": raw, "running": claimed.running}
        return [self._txn("claim", list(claimed.compares), list(claimed.ops), seen=seen, **data)]

    def _claimed(self, spec: ClusterSpec, data: dict[str, Any]) -> list[t.Effect]:
        action: pl.PlanAction = data["action"]
        rsc = st.local_id(spec, action.resource or "")  # what this node's reports call it
        if st.primitive(spec, rsc) is None:
            self.busy = False
            return []
        out: list[t.Effect] = []
        if node_core.stops_monitor_first(action.task):
            out.append(t.StopMonitor(rsc))
        claimed = {k: data[k] for k in ("epoch", "raw", "running")}
        return [*out, self._run(spec, rsc, action.task, action=action, **claimed)]

    def _ran(self, spec: ClusterSpec, rsc: str, res: Result, data: dict[str, Any]) -> list[t.Effect]:
        action: pl.PlanAction = data["action"]
        known = st.definition(spec, action.resource or rsc, self.node)
        report = node_core.action_report(
            self.keys,
            self.node,
            spec,
            data["epoch"],
            action,
            rsc,
            res,
            data["running"],
            self._promotable(spec, rsc),
            known,
            self._old_fail(rsc),
            False,
            self.quorum_lost,  # as the daemon: cut off meanwhile, the local stop stops it, no monitor
            self.now,
        )
        report.hosting.apply(rsc, self.local_running, self.local_promoted)
        return [
            self._txn(
                "report", [report.guard], list(report.ops), action=action, report=report, rsc=rsc, raw=data["raw"]
            )
        ]

    def _reported(self, spec: ClusterSpec, data: dict[str, Any]) -> list[t.Effect]:
        report: node_core.Report = data["report"]
        if self.executed_plan == data["raw"]:
            self.executed[data["action"].id] = report.ok
        return self._monitor(spec, data["rsc"], report.monitor) if report.monitor is not None else []

    def _monitor_failed(self, inp: t.MonitorFailed) -> list[t.Effect]:
        spec = self.spec()
        # As daemon._monitor: a failed promoted instance is reported Promoted.
        was_promoted = inp.rsc in self.local_promoted
        node_core.monitor_hosting(inp.result.status).apply(inp.rsc, self.local_running, self.local_promoted)
        if spec is None or st.primitive(spec, inp.rsc) is None:
            return []
        known = st.definition(spec, inp.rsc, self.node)
        ops = list(
            node_core.monitor_failure(
                self.keys,
                self.node,
                spec,
                inp.rsc,
                inp.result,
                was_promoted,
                inp.interval,
                known,
                self._old_fail(inp.rsc),
                self.now,
            )
        )
        return [self._txn("monitor-failed", [], ops, retry=ops)]

    # ----- answers -----

    def _answer(self, p: Pending, inp: Any) -> list[t.Effect]:
        spec = self.spec() or ClusterSpec()
        if p.kind == "op":
            rsc, op = p.data["rsc"], p.data["op"]
            if p.data.get("local"):
                if op == "stop" and not inp.result.ok_for(op):  # a failed demote: stop anyway
                    self.left.add(rsc)
                    self.local_stops = [s for s in self.local_stops if s[0] != rsc]
                return self._stop_next(spec)
            if p.data.get("probe"):
                return self._probe_result(spec, rsc, inp.result, p.data)
            out = self._ran(spec, rsc, inp.result, p.data)
            if self.stop_deferred:
                self.stop_deferred = False
                out += self._begin_local_stop(spec)
            return out
        if p.kind == "claim":
            if inp.ok and self.lease:
                return self._claimed(spec, p.data)
            self.busy = False
            if inp.error is None:
                # The plan changed under the claim (or its action is done): as the daemon's
                # worker, wait for the next change in the store after the state the claim was
                # made on. A change that came while the claim was out is one: the daemon's
                # `changed` event stays set (seed 4970: the report of the action before, held
                # up by a store stall, arrived during the claim; marking the answer's revision
                # as seen lost it, and the node never claimed its next action). A claim that got
                # no answer is tried again at once.
                self._executed_at = p.data["seen"]
            return []
        if p.kind == "register":
            if p.data["lease"] != self.lease:
                return []
            if inp.error is None:
                self.registered = self.lease
                return []
            return [self._register()]
        if p.kind in ("probed", "report"):
            self.busy = False
            if inp.error is not None or not inp.ok:
                if p.kind == "probed":
                    self.probe_needed = True
                    return []
                # As daemon._run_action: what the action started is monitored even when the
                # report's answer was lost (the report may be in the store: no claim succeeds again)
                # or the report was refused (the lease that claimed the action is gone: the next
                # incarnation's probe reports it).
                report: node_core.Report = p.data["report"]
                return self._monitor(spec, p.data["rsc"], report.monitor) if report.monitor is not None else []
            if p.kind == "probed":
                self.probed = True
                return []
            return self._reported(spec, p.data)
        if p.kind == "monitor-failed":
            if inp.error is not None:  # the daemon retries until the store takes it
                return [self._txn("monitor-failed", [], p.data["retry"], retry=p.data["retry"])]
            return []
        return []
