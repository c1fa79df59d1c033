"""Differential testing: hakeeper's importer and scheduler against crm_simulate on generated CIBs.

`run_case(seed)` generates a cluster, renders its CIB, asks Pacemaker (crm_simulate -R) and hakeeper
(`importers.cib.read_cib` then `placement.schedule`) where every primitive ends up, and compares the
two placements. Both are reduced to `{primitive id: sorted distinct nodes}`: clone instances are
compared as the set of nodes running the clone, since instance numbers may legitimately differ.

`features(spec)` names what a case exercises, so mismatches can be grouped by feature.
"""

from __future__ import annotations

import io
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hakeeper.conformance.cibgen import Knobs, generate
from hakeeper.conformance.cibxml import render_cib
from hakeeper.conformance.crmsim import Placement, SimResult, base_id, run_crm_simulate
from hakeeper.importers.cib import read_cib
from hakeeper.placement import schedule_cib
from hakeeper.spec.model import ClusterSpec
from hakeeper.spec.values import INFINITY


def normalise(placement: Mapping[str, Iterable[str]], primitives: Iterable[str] = ()) -> Placement:
    """`{id or child:N: nodes}` → `{primitive id: sorted distinct nodes}`, every primitive listed."""
    result: dict[str, set[str]] = {p: set() for p in primitives}
    for rid, nodes in placement.items():
        result.setdefault(base_id(rid), set()).update(nodes)
    return {rid: sorted(nodes) for rid, nodes in result.items()}


def hakeeper_placement(cib: bytes, primitives: Iterable[str] = ()) -> tuple[Placement, list[str]]:
    """Import the CIB and schedule it: hakeeper's final placement and its transition summary."""
    spec = read_cib(io.BytesIO(cib), file="generated.xml")
    plan = schedule_cib(spec, spec.state)
    return normalise(plan.placement, primitives), list(plan.summary)


@dataclass(frozen=True)
class Difference:
    resource: str
    ours: list[str]
    pacemaker: list[str]

    @property
    def kind(self) -> str:
        if not self.ours:
            return "we stop, Pacemaker runs"
        if not self.pacemaker:
            return "we run, Pacemaker stops"
        return "different nodes"


def compare(ours: Placement, pacemaker: Placement) -> list[Difference]:
    return [Difference(rid, ours.get(rid, []), pacemaker.get(rid, []))
            for rid in sorted(set(ours) | set(pacemaker))
            if ours.get(rid, []) != pacemaker.get(rid, [])]


def features(spec: ClusterSpec) -> set[str]:
    """What a generated case exercises (for grouping mismatches)."""
    found: set[str] = set()
    res, cons, state = spec.resources, spec.constraints, spec.state
    if res.groups:
        found.add("group")
    if res.clones:
        found.add("clone")
        clone_children = {c.child for c in res.clones}
        if any(g.id in clone_children for g in res.groups):
            found.add("cloned-group")
        if any(c.meta.clone_max is not None for c in res.clones):
            found.add("clone-max")
    if any(loc.rules for loc in cons.location):
        found.add("rule")
    if any(loc.score in (INFINITY, -INFINITY) for loc in cons.location):
        found.add("location-infinity")
    if cons.colocation:
        found.add("colocation")
        if any(abs(c.score) < INFINITY for c in cons.colocation):
            found.add("colocation-finite")
        if any(c.score <= -INFINITY for c in cons.colocation):
            found.add("anti-colocation")
    if cons.order:
        found.add("order")
    if spec.cluster.resource_stickiness or any(p.meta.resource_stickiness for p in res.primitives):
        found.add("stickiness")
    if not spec.cluster.symmetric_cluster:
        found.add("opt-in")
    if spec.cluster.stonith_enabled:
        found.add("stonith")
    if any(p.meta.target_role == "Stopped" for p in res.primitives):
        found.add("target-role")
    if spec.cluster.migration_threshold != INFINITY or any(p.meta.migration_threshold for p in res.primitives):
        found.add("migration-threshold")
    if any(n.attributes.get("standby") == "on" for n in spec.nodes):
        found.add("standby")
    if state is not None:
        if not state.have_quorum:
            found.add(f"no-quorum-{spec.cluster.no_quorum_policy}")
        if any(ns.standby for ns in state.nodes.values()):
            found.add("standby")
        if any(not ns.online and not ns.unclean for ns in state.nodes.values()):
            found.add("offline")
        if any(ns.unclean for ns in state.nodes.values()):
            found.add("unclean")
        if any(rs.failed and rs.failed_op == "monitor" for rs in state.resources):
            found.add("failed-monitor")
        if any(rs.failed and rs.failed_op == "start" for rs in state.resources):
            found.add("failed-start")
    return found


@dataclass
class CaseResult:
    seed: int
    cib: bytes = field(repr=False)
    pacemaker: Placement
    ours: Placement | None
    differences: list[Difference]
    features: set[str]
    pacemaker_summary: list[str] = field(default_factory=list)
    our_summary: list[str] = field(default_factory=list)
    error: str | None = None  # hakeeper raised: the traceback
    pacemaker_seconds: float = 0.0
    our_seconds: float = 0.0
    cloned: set[str] = field(default_factory=set)  # primitives inside a clone

    @property
    def agrees(self) -> bool:
        return self.error is None and not self.differences

    @property
    def category(self) -> str:
        """A rough first sorting of a mismatch, to point at the part of the scheduler to read."""
        if self.error:
            return "hakeeper error"
        if not self.differences:
            return "agrees"
        ids = {d.resource for d in self.differences}
        if ids <= self.cloned:
            return "clone instances (count or nodes)"
        if ids == {"fencing"}:
            return "fencing device node"
        stopped_by_them = {d.resource for d in self.differences if not d.pacemaker}
        if any(line.split(" ")[1].split(":")[0] in stopped_by_them and "due to" in line
               for line in self.pacemaker_summary if line.startswith("stop ")):
            return "stop of a dependent (colocation/order with an unrunnable resource)"
        if any(d.kind != "different nodes" for d in self.differences):
            return "runs or not"
        return "node choice"

    def report(self, *, with_cib: bool = True) -> str:
        lines = [f"seed {self.seed}: features {', '.join(sorted(self.features))}"]
        if self.error:
            lines.append(f"hakeeper failed:\n{self.error}")
        for diff in self.differences:
            lines.append(f"  {diff.resource}: hakeeper {diff.ours or 'stopped'}, "
                         f"Pacemaker {diff.pacemaker or 'stopped'} ({diff.kind})")
        lines.append("Pacemaker's transition summary:")
        lines += [f"  {line}" for line in self.pacemaker_summary] or ["  (nothing to do)"]
        lines.append("hakeeper's transition summary:")
        lines += [f"  {line}" for line in self.our_summary] or ["  (nothing to do)"]
        lines.append(f"Pacemaker placement: {self.pacemaker}")
        lines.append(f"hakeeper placement:  {self.ours}")
        if with_cib:
            lines.append("CIB:")
            lines.append(self.cib.decode())
        return "\n".join(lines)


def _pacemaker_summary(result: SimResult) -> list[str]:
    lines = [f"Fence {node}" for node in result.fenced]
    for act in result.actions:
        where = f"{act.source} -> {act.dest}" if act.source and act.dest else act.node or act.dest or act.source
        why = f" due to {act.reason}" if act.reason else ""
        lines.append(f"{act.action} {act.resource} ({where}){why}{' (blocked)' if act.blocked else ''}")
    return lines


def _cloned(spec: ClusterSpec) -> set[str]:
    children = {c.child for c in spec.resources.clones}
    members = {m for g in spec.resources.groups if g.id in children for m in g.members}
    return (children | members) - {g.id for g in spec.resources.groups}


def run_case(seed: int, knobs: Knobs | None = None, *, binary: str = "crm_simulate",
             timeout: float = 120.0) -> CaseResult:
    spec = generate(seed, knobs)
    primitives = [p.id for p in spec.resources.primitives]
    cib = render_cib(spec)
    theirs = run_crm_simulate(cib, primitives=primitives, binary=binary, timeout=timeout)
    result = CaseResult(seed=seed, cib=cib, pacemaker=theirs.placement, ours=None, differences=[],
                        features=features(spec), pacemaker_summary=_pacemaker_summary(theirs),
                        pacemaker_seconds=theirs.seconds,
                        cloned=_cloned(spec))
    start = time.perf_counter()
    try:
        ours, summary = hakeeper_placement(cib, primitives)
    except Exception:  # a crash is a finding to report with its seed, not a reason to stop the run
        result.error = traceback.format_exc()
        return result
    result.our_seconds = time.perf_counter() - start
    result.ours, result.our_summary = ours, summary
    result.differences = compare(ours, theirs.placement)
    return result
