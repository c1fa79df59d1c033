"""ADAPTER: the node's decisions, MIRRORING agent/daemon.py until hakeeper.agent.core covers them
(issue 10, part 1: the leader's decisions are in the core already and the simulation runs the real
`LeaderCore` next to this, see brain.py).

It speaks the core's real interface (hakeeper.agent.core.types: inputs in, effects out, `now`
passed in), so the simulation's shell (tests/sim/cluster.py) drives it exactly as it will drive
a real `NodeCore`; when that lands, brain.py switches to it and this module goes. What is real
code here: every pure helper it calls (agent/state.py's done_marks, fail counts, definitions,
pending reports; agent/plan.py's typed plan: parse, ready; core/quorum.py's QuorumWatch). What is
mirrored by hand, in the same order as the daemon does it: register after a lease grant, probe,
claim by compare-and-set, run, report; monitors; the quorum rule (stop everything locally after
75% of the TTL without a refresh).

Left out (the simulation does not model them): heartbeats (node-timeout 0, lease expiry only),
node attributes, orphans, event keys, the shutdown drain.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Any

from hakeeper.agent import plan as pl
from hakeeper.agent import state as st
from hakeeper.agent.core import types as t
from hakeeper.agent.core.quorum import STALL, QuorumWatch
from hakeeper.coord.store import Compare, Delete, Put, absent
from hakeeper.coord.watch import Mirror
from hakeeper.resources.result import Result, Status
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

    # ----- the interface -----

    def deadline(self) -> float | None:
        times: list[float] = []
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
        return out

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

    def _status(self, res: Result, op: str, ok: bool, role: str) -> bytes:
        doc: dict[str, Any] = {
            "role": role if res.running or (ok and op != "stop") else "Stopped",
            "op": op,
            "rc": res.rc,
        }
        if res.status is Status.PROMOTED:
            doc["role"] = "Promoted"
        if not ok:  # as daemon._status_doc: a failed promoted instance stays Promoted
            failed_role = "Promoted" if role == "Promoted" else "Started"
            doc.update({"failed": True, "kind": st.failure_kind(res), "role": failed_role})
        return st.dumps(doc)

    def _role(self, spec: ClusterSpec, rsc: str, res: Result) -> str:
        if res.status is Status.PROMOTED:
            return "Promoted"
        return "Unpromoted" if st.ocf_meta(spec, rsc, self.node).get("promotable") == "true" else "Started"

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

    def _fail_count(self, spec: ClusterSpec, rsc: str, op: str) -> Put:
        old = st.loads(self.values.get(self.keys.fail_of(self.node, rsc))) or {}
        count = st.next_fail_count(spec, op, int(old.get("count", 0)))
        return Put(self.keys.fail_of(self.node, rsc), st.dumps({"count": count, "last": self.now}))

    # ----- quorum (daemon._quorum, _lost_quorum, _stop_locally) -----

    def _quorum(self) -> list[t.Effect]:
        healthy = self.healthy(self.ttl * 0.25)
        verdict = self.quorum_watch.check(self.now, healthy, self.lease, self.last_refresh)
        if verdict == "lost" and not self.quorum_lost and self.last_refresh > float("-inf"):
            self.quorum_lost = True
            spec = self.spec()
            if spec is None or spec.cluster.no_quorum_policy in ("freeze", "ignore"):
                return []
            # As _stop_locally: what this agent believes runs here, at this moment, in reverse
            # definition order, demoting first. It does not wait for an action in flight.
            order = [p.id for p in spec.resources.primitives]

            def position(rsc: str) -> int:
                prim = st.primitive(spec, rsc)
                return -order.index(prim.id) if prim is not None and prim.id in order else 0

            todo = sorted(self.local_running, key=lambda r: (position(r), r))
            self.stopping = True
            self.local_stops = [
                s for r in todo for s in ([(r, "demote")] if r in self.local_promoted else []) + [(r, "stop")]
            ]
            self.left = set()
            out: list[t.Effect] = [t.StopMonitor(r) for r in sorted(self.local_running)]
            return [*out, *self._stop_next(spec), t.Emit("no-quorum", f"{self.node} cut off: stopping {len(todo)}")]
        # The daemon notices the store again in the same task that runs the local stops: only
        # once they are over.
        if healthy and self.quorum_lost and not self.stopping:
            self.quorum_lost = False
            self.probe_needed = True
        return []

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
        key = self.keys.status_of(self.node, rsc)
        ops, out = list(data["ops"]), []
        if res.running:
            self.local_running.add(rsc)
            role = self._role(spec, rsc, res)
            if role == "Promoted":
                self.local_promoted.add(rsc)
            ops.append(Put(key, self._status(res, "monitor", True, role)))
            out += self._monitor(spec, rsc, role)
        elif res.stopped:
            self.local_running.discard(rsc)
            self.local_promoted.discard(rsc)
            ops.append(Delete(key))
        else:
            ops.append(Put(key, self._status(res, "monitor", False, "Started")))
        return out + self._probe_next(spec, data["todo"], ops)

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
        claim = st.claim_value(self.node, doc.epoch, action.id, self.lease)
        running = st.running_value(doc.epoch, action.id, self.lease)
        ops: list[Any] = [
            Put(self.keys.running_of(self.node), running, self.lease),
            Put(self.keys.claims, claim),
        ]
        # As daemon._execute: a start or promote leaves a pending report not bound to the lease
        # (time left out of it, as from every report here, so equal states memoise alike).
        rsc = st.local_id(spec, action.resource or "")
        promotable = st.ocf_meta(spec, rsc, self.node).get("promotable") == "true"
        pending = st.pending_doc(action.task, 0.0, promotable)
        if pending is not None:
            ops.append(Put(self.keys.status_of(self.node, rsc), st.dumps(pending)))
        compares = [Compare(self.keys.plan, "value", "==", raw), absent(self.keys.done_of(doc.epoch, action.id))]
        data = {"epoch": doc.epoch, "action": action, "raw": raw, "running": running}
        return [self._txn("claim", compares, ops, seen=seen, **data)]

    def _claimed(self, spec: ClusterSpec, data: dict[str, Any]) -> list[t.Effect]:
        action: pl.PlanAction = data["action"]
        rsc = st.local_id(spec, action.resource or "")  # what this node's reports call it
        if st.primitive(spec, rsc) is None:
            self.busy = False
            return []
        out: list[t.Effect] = []
        if action.task in ("stop", "demote", "promote"):
            out.append(t.StopMonitor(rsc))
        claimed = {k: data[k] for k in ("epoch", "raw", "running")}
        return [*out, self._run(spec, rsc, action.task, action=action, **claimed)]

    def _ran(self, spec: ClusterSpec, rsc: str, res: Result, data: dict[str, Any]) -> list[t.Effect]:
        action: pl.PlanAction = data["action"]
        task = action.task
        ok = res.ok_for(task)
        key = self.keys.status_of(self.node, rsc)
        ops: list[Any] = [Put(self.keys.done_of(data["epoch"], action.id), st.dumps({"ok": ok, "rc": res.rc}))]
        if ok and task in ("promote", "demote", "stop"):
            (self.local_promoted.add if task == "promote" else self.local_promoted.discard)(rsc)
        if ok and task == "stop":
            ops.append(Delete(key))
            self.local_running.discard(rsc)
        elif ok:
            role = "Promoted" if task == "promote" else self._role(spec, rsc, res)
            ops.append(Put(key, self._status(res, task, True, role)))
            self.local_running.add(rsc)
        else:
            failed_role = "Promoted" if task == "demote" and res.status is not Status.NOT_RUNNING else "Started"
            ops.append(Put(key, self._status(res, task, False, failed_role)))
            ops.append(self._fail_count(spec, rsc, task))
        ops.append(Delete(self.keys.running_of(self.node)))
        # As daemon._run_action: the report counts only while this incarnation's claim stands.
        guard = [st.report_guard(self.keys, self.node, data["running"])]
        return [self._txn("report", guard, ops, epoch=data["epoch"], action=action, ok=ok, rsc=rsc, raw=data["raw"])]

    def _reported(self, spec: ClusterSpec, data: dict[str, Any]) -> list[t.Effect]:
        action: pl.PlanAction = data["action"]
        if self.executed_plan == data["raw"]:
            self.executed[action.id] = data["ok"]
        if data["ok"] and action.task in ("start", "promote", "demote"):
            return self._monitor(spec, data["rsc"], "Promoted" if action.task == "promote" else "Started")
        return []

    def _monitor_failed(self, inp: t.MonitorFailed) -> list[t.Effect]:
        spec = self.spec()
        # As daemon._monitor: a failed promoted instance is reported Promoted.
        was_promoted = inp.rsc in self.local_promoted
        failed_role = (
            "Promoted" if was_promoted and inp.result.status not in (Status.NOT_RUNNING, Status.SUCCESS) else "Started"
        )
        # As daemon._note_monitor_result: only a clean "not running" takes it off the list.
        if inp.result.status is Status.NOT_RUNNING:
            self.local_running.discard(inp.rsc)
            self.local_promoted.discard(inp.rsc)
        elif inp.result.status is Status.SUCCESS:
            self.local_promoted.discard(inp.rsc)
        elif inp.result.status in (Status.PROMOTED, Status.FAILED_PROMOTED):
            self.local_promoted.add(inp.rsc)
        if spec is None or st.primitive(spec, inp.rsc) is None:
            return []
        ops = [
            Put(self.keys.status_of(self.node, inp.rsc), self._status(inp.result, "monitor", False, failed_role)),
            self._fail_count(spec, inp.rsc, "monitor"),
        ]
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
            return self._ran(spec, rsc, inp.result, p.data)
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
                action = p.data["action"]
                if p.data["ok"] and action.task in ("start", "promote", "demote"):
                    return self._monitor(spec, p.data["rsc"], "Promoted" if action.task == "promote" else "Started")
                return []
            if p.kind == "probed":
                self.probed = True
                return []
            return self._reported(spec, p.data)
        if p.kind == "monitor-failed":
            if inp.error is not None:  # the daemon retries until the store takes it
                return [self._txn("monitor-failed", [], p.data["retry"], retry=p.data["retry"])]
            return []
        return []
        return []
