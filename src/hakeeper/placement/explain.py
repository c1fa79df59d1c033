"""Explaining a placement in an operator's words: each node's score and what made it."""

from __future__ import annotations

from typing import Any

from hakeeper.placement.plan import Plan
from hakeeper.spec.model import ClusterSpec
from hakeeper.spec.values import format_score


def _targets(plan: Plan, resource: str) -> list[str]:
    if resource in plan.scores:
        return [resource]
    return [k for k in plan.scores if k.split(":")[0] == resource]


def _group_members(spec: ClusterSpec, resource: str) -> list[str]:
    for group in spec.resources.groups:
        if group.id == resource:
            return group.members
    for clone in spec.resources.clones:
        if clone.id == resource:
            return [clone.child]
    return []


def explain_json(spec: ClusterSpec, plan: Plan, resource: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rid in resolve(spec, plan, resource):
        out[rid] = {
            "placed_on": plan.placement.get(rid, []),
            "running_on": plan.current.get(rid, []),
            "why": plan.reasons.get(rid, ""),
            "scores": {n: format_score(s) for n, s in plan.scores.get(rid, {}).items()},
            "contributions": [{"node": c.node, "score": format_score(c.score), "why": c.why}
                              for c in plan.contributions.get(rid, [])],
        }
    return out


def resolve(spec: ClusterSpec, plan: Plan, resource: str) -> list[str]:
    ids = _targets(plan, resource)
    if ids:
        return ids
    out: list[str] = []
    for member in _group_members(spec, resource):
        out += resolve(spec, plan, member)
    return out


def explain_lines(spec: ClusterSpec, plan: Plan, resource: str) -> list[str]:
    lines: list[str] = []
    node_state = spec.state.nodes if spec.state else {}
    for rid in resolve(spec, plan, resource):
        placed = plan.placement.get(rid, [])
        running = plan.current.get(rid, [])
        where = ", ".join(placed) if placed else "nowhere (stopped)"
        lines.append(f"{rid}: placed on {where}"
                     + (f" (runs now on {', '.join(running)})" if running else ""))
        if plan.reasons.get(rid):
            lines.append(f"  because {plan.reasons[rid]}")
        lines.append("  node scores:")
        contribs = plan.contributions.get(rid, [])
        for node, score in plan.scores.get(rid, {}).items():
            ns = node_state.get(node)
            notes = []
            if ns is not None:
                if ns.unclean:
                    notes.append("node lost (unclean)")
                elif not ns.online:
                    notes.append("node offline")
                if ns.standby:
                    notes.append("node in standby")
                if ns.maintenance:
                    notes.append("node in maintenance")
            suffix = f"  [{'; '.join(notes)}: cannot run resources]" if notes else ""
            lines.append(f"    {node}: {format_score(score)}{suffix}")
            for c in contribs:
                if c.node == node:
                    lines.append(f"      {format_score(c.score):>10}  {c.why}")
        for c in contribs:
            if c.node == "*":
                lines.append(f"    ({format_score(c.score)})  {c.why}")
        for group in spec.resources.groups:
            if rid.split(":")[0] in group.members:
                i = group.members.index(rid.split(":")[0])
                lines.append(f"  member {i + 1} of group {group.id}: runs with "
                             + ("the group's other members, placed by the first member's scores"
                                if i == 0 else f"{group.members[i - 1]} and starts after it"))
        for clone in spec.resources.clones:
            if clone.child == rid.split(":")[0] or (
                    clone.child in {g.id for g in spec.resources.groups}
                    and rid.split(":")[0] in _group_members(spec, clone.child)):
                lines.append(f"  an instance of clone {clone.id}")
    return lines
