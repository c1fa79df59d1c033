"""The configuration's versions: what changed from one to the next, who applied it, and the
bounded list of earlier versions kept in the store. Everything here is pure.

Each configuration document (`config`, see state.py) records who wrote it (`by`, user@host of the
operator), when (`at`), from what (`source`) and what changed from the version before (`changes`).
When a new version is written, the one it replaces moves verbatim to `history/<version>` in the
same transaction, and the one KEEP versions older is deleted there too, so the store holds at most
KEEP earlier versions and a crash can never leave a version written without its predecessor kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hakeeper.spec.model import (
    Clone,
    ClusterSpec,
    Colocation,
    Group,
    Location,
    Order,
    Primitive,
    TicketConstraint,
)

KEEP = 50

# The parts of a configuration whose items have ids, and how an item is named in a change list.
_CHANGE_PARTS = ("resources", "nodes", "constraints")


def history_prefix(prefix: str) -> str:
    """The key prefix of earlier versions below a cluster's prefix (`/hakeeper/<cluster>/`)."""
    return prefix + "history/"


def history_key(prefix: str, version: int) -> str:
    # Zero-padded so the store lists versions in order.
    return f"{history_prefix(prefix)}{version:010d}"


def pruned_version(new_version: int) -> int | None:
    """The version whose history entry leaves the store when `new_version` is written: the
    previous version enters it, so the one KEEP before that goes."""
    old = new_version - 1 - KEEP
    return old if old >= 1 else None


def _items(spec: ClusterSpec | None, part: str) -> dict[str, Any]:
    if spec is None:
        return {}
    if part == "nodes":
        return {n.name: n.model_dump(mode="json") for n in spec.nodes}
    r, c = spec.resources, spec.constraints
    items: list[Primitive | Group | Clone | Location | Colocation | Order | TicketConstraint] = []
    if part == "resources":
        items += [*r.primitives, *r.groups, *r.clones]
    else:
        items += [*c.location, *c.colocation, *c.order, *c.ticket]
    return {x.id: x.model_dump(mode="json") for x in items}


def spec_changes(old: ClusterSpec | None, new: ClusterSpec) -> dict[str, dict[str, list[str]]]:
    """{"resources"|"nodes"|"constraints": {"added"|"removed"|"changed": [ids]}, "cluster":
    {"changed": [option names]}}, listing only what is not empty."""
    out: dict[str, dict[str, list[str]]] = {}
    for part in _CHANGE_PARTS:
        before, after = _items(old, part), _items(new, part)
        entry = {
            "added": [k for k in after if k not in before],
            "removed": [k for k in before if k not in after],
            "changed": [k for k in after if k in before and before[k] != after[k]],
        }
        entry = {k: v for k, v in entry.items() if v}
        if entry:
            out[part] = entry
    before_opts = old.cluster.model_dump(mode="json", by_alias=True) if old is not None else {}
    after_opts = new.cluster.model_dump(mode="json", by_alias=True)
    changed = sorted(k for k in set(before_opts) | set(after_opts) if before_opts.get(k) != after_opts.get(k))
    if old is not None and changed:
        out["cluster"] = {"changed": changed}
    return out


def removed(changes: Mapping[str, Mapping[str, list[str]]]) -> tuple[list[str], list[str]]:
    """(resources removed, nodes removed) by a change."""
    return list(changes.get("resources", {}).get("removed", [])), list(changes.get("nodes", {}).get("removed", []))


def describe_changes(changes: Mapping[str, Mapping[str, Iterable[str]]] | None) -> str:
    """One line: `resources +web -db ~vip; nodes -n3; cluster ~resource-stickiness`."""
    if changes is None:
        return "?"
    marks = {"added": "+", "removed": "-", "changed": "~"}
    parts = []
    for part in (*_CHANGE_PARTS, "cluster"):
        entry = changes.get(part) or {}
        words = [marks[kind] + name for kind in marks for name in entry.get(kind, [])]
        if words:
            parts.append(f"{part} {' '.join(words)}")
    return "; ".join(parts) or "no change"


@dataclass
class Version:
    """One version of the configuration, as `config history` lists it."""

    version: int
    at: float | None
    by: str | None
    source: str | None
    changes: dict[str, dict[str, list[str]]] | None
    current: bool = False
    spec: dict[str, Any] = field(default_factory=dict, repr=False)


def version_of(raw: bytes, current: bool = False) -> Version | None:
    """A configuration document (current or kept) → Version; None when it is not one."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        return None
    try:
        number = int(doc.get("version", 0))
    except (TypeError, ValueError):
        return None
    at = doc.get("at")
    changes = doc.get("changes")
    return Version(
        version=number,
        at=float(at) if isinstance(at, int | float) else None,
        by=doc.get("by") if isinstance(doc.get("by"), str) else None,
        source=doc.get("source") if isinstance(doc.get("source"), str) else None,
        changes=changes if isinstance(changes, dict) else None,
        current=current,
        spec=doc["spec"],
    )


def versions(values: Mapping[str, bytes], prefix: str) -> list[Version]:
    """Every version the store holds under a cluster's prefix, oldest first, the current last."""
    found: dict[int, Version] = {}
    kept = history_prefix(prefix)
    for key, raw in values.items():
        if key.startswith(kept) and (v := version_of(raw)) is not None:
            found[v.version] = v
    current = values.get(prefix + "config")
    if current is not None and (v := version_of(current, current=True)) is not None:
        found[v.version] = v
    return [found[k] for k in sorted(found)]


def render_history(entries: Iterable[Version], when: Any) -> str:
    """The table `config history` prints; `when` formats a timestamp (kept out so this stays pure)."""
    rows = [("VERSION", "WHEN", "BY", "CHANGES")]
    for v in entries:
        mark = " *" if v.current else ""
        rows.append((f"{v.version}{mark}", when(v.at) if v.at is not None else "?", v.by or "?",
                     describe_changes(v.changes) + (f"  ({v.source})" if v.source else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows)
