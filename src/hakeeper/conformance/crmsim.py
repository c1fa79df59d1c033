"""Pacemaker's scheduler as an oracle: run crm_simulate on a CIB and read the placement it decides.

`run_crm_simulate` is the imperative shell (a subprocess with a timeout, in a private shadow
directory); `placement_from_result` is pure and reads crm_simulate's `--output-as=xml` answer.

A placement is `{primitive id: sorted list of distinct nodes}`. A clone's instances are listed under
their primitive's id, one node per node running an instance, because crm_simulate's status does not
number anonymous instances and Pacemaker may renumber them from one run to the next. Nodes are
distinct because an anonymous clone runs its agent once per node: Pacemaker 2.1.5 does, in one case,
schedule a second instance of a cloned group on a node that already has one (clone-max above the
number of usable nodes), which its own simulated execution (-S) then shows as one; the lists follow
that. Stopped primitives map to an empty list.

With `-R` (decisions only) the final placement is the current one (`cluster_status`) with the
transition's resource actions applied; with `-S` crm_simulate also executes the transition and prints
the `revised_cluster_status`, read directly. Both give the same answer (a test checks this); `-R` costs
far less.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from hakeeper.conformance.measured import run_measured

Placement = dict[str, list[str]]


class CrmSimulateError(RuntimeError):
    """crm_simulate failed, refused the CIB, or did not finish in time."""


@dataclass(frozen=True)
class Action:
    """One line of the Transition Summary: a resource action with its nodes."""

    action: str  # start, stop, move, recover, restart, migrate, promote, demote, reload...
    resource: str  # as crm_simulate names it: `rsc`, or `rsc:N` for a clone instance
    node: str | None = None
    source: str | None = None
    dest: str | None = None
    blocked: bool = False
    reason: str | None = None


@dataclass
class SimResult:
    placement: Placement
    actions: list[Action]
    fenced: list[str]
    xml: bytes = field(repr=False)
    seconds: float = 0.0
    max_rss_kib: int = 0  # the child's peak resident set (ru_maxrss), where measured


def base_id(resource: str) -> str:
    """`rsc:3` → `rsc`: the primitive behind an anonymous clone instance."""
    return resource.split(":", 1)[0]


def _status_placement(status: etree._Element, primitives: Iterable[str] = ()) -> dict[str, list[str]]:
    placement: dict[str, list[str]] = {p: [] for p in primitives}
    for rsc in status.iter("resource"):
        rid = base_id(rsc.get("id", ""))
        nodes = placement.setdefault(rid, [])
        if rsc.get("active") != "true":
            continue
        nodes.extend(n.get("name", "") for n in rsc.iter("node"))
    return placement


def _child(parent: etree._Element, tag: str) -> etree._Element:
    found = parent.find(tag)
    return parent if found is None else found


def _actions(actions: etree._Element | None) -> tuple[list[Action], list[str]]:
    found: list[Action] = []
    fenced: list[str] = []
    if actions is None:
        return found, fenced
    for el in actions:
        if el.tag == "node_action":
            if "fence" in el.get("task", "").lower() and el.get("node"):
                fenced.append(el.get("node", ""))
        elif el.tag == "rsc_action":
            found.append(Action(action=el.get("action", ""), resource=el.get("resource", ""),
                                node=el.get("node"), source=el.get("source"), dest=el.get("dest"),
                                blocked=el.get("blocked") == "true", reason=el.get("reason")))
    return found, fenced


def apply_actions(current: Placement, actions: Iterable[Action]) -> Placement:
    """The placement after a transition: stops and moves take a node away, starts and moves add one."""
    result = {rid: list(nodes) for rid, nodes in current.items()}
    for act in actions:
        if act.blocked:
            continue
        nodes = result.setdefault(base_id(act.resource), [])
        gone, new = None, None
        if act.action == "start":
            new = act.node or act.dest
        elif act.action == "stop":
            gone = act.node or act.source
        elif act.action in ("move", "migrate") or (act.action == "recover" and act.source and act.dest):
            gone, new = act.source, act.dest
        if gone is not None:
            if gone not in nodes:
                raise CrmSimulateError(f"{act.action} {act.resource}: not active on {gone} ({nodes})")
            nodes.remove(gone)
        if new is not None:
            nodes.append(new)
    return {rid: sorted(set(nodes)) for rid, nodes in result.items()}


def placement_from_result(xml: bytes, primitives: Iterable[str] = ()) -> SimResult:
    """Read crm_simulate's XML answer; `primitives` are listed even if nothing places them."""
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise CrmSimulateError(f"crm_simulate printed no XML: {exc}") from exc
    status = root.find("status")
    if status is not None and status.get("code") not in (None, "0"):
        raise CrmSimulateError(f"crm_simulate: {status.get('message')} (code {status.get('code')})")
    prims = list(primitives)
    actions, fenced = _actions(root.find("actions"))
    revised = root.find("revised_cluster_status")
    if revised is not None:
        final = _status_placement(_child(revised, "resources"), prims)
        placement = {rid: sorted(set(nodes)) for rid, nodes in final.items()}
    else:
        current = root.find("cluster_status")
        if current is None:
            raise CrmSimulateError("crm_simulate's answer has no cluster_status")
        placement = apply_actions(_status_placement(_child(current, "resources"), prims), actions)
    return SimResult(placement=placement, actions=actions, fenced=fenced, xml=xml)


def crm_simulate_command(cib_path: Path, *, execute: bool = False, binary: str = "crm_simulate") -> list[str]:
    return [binary, "-x", str(cib_path), "-S" if execute else "-R", "--output-as=xml"]


def run_crm_simulate(cib: bytes, *, execute: bool = False, timeout: float = 300.0,
                     primitives: Iterable[str] = (), binary: str = "crm_simulate") -> SimResult:
    """Run crm_simulate on `cib` (-R, or -S with `execute`) and return its placement and actions.

    Raises CrmSimulateError when it fails, refuses the CIB or runs past `timeout` seconds (the child
    is killed then).
    """
    with tempfile.TemporaryDirectory(prefix="hakeeper-crmsim-") as tmp:
        path = Path(tmp) / "cib.xml"
        path.write_bytes(cib)
        shadow = Path(tmp) / "shadow"
        shadow.mkdir()
        env = {**os.environ, "LC_ALL": "C", "CIB_shadow_dir": str(shadow)}
        run = run_measured(crm_simulate_command(path, execute=execute, binary=binary), timeout=timeout, env=env)
    if run.timed_out:
        raise CrmSimulateError(f"crm_simulate did not finish in {timeout:g} s")
    if run.returncode != 0:
        raise CrmSimulateError(
            f"crm_simulate exited {run.returncode}: {run.stderr.decode(errors='replace')[-2000:]}")
    result = placement_from_result(run.stdout, primitives)
    result.seconds = run.seconds
    result.max_rss_kib = run.max_rss_kib
    return result
