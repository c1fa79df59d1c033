"""The Transition Summary in Pacemaker's words and layout (crm_simulate -S, Pacemaker 2.1.5).

One line per node action (`Fence (reboot) NODE 'reason'`), then one per resource that changes, in
definition order: Start, Stop, Move, Recover, Restart, Promote, Demote, Re-promote. Like
crm_simulate, the resource and detail columns widen as longer entries are printed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hakeeper.placement.actions import Act, ActionSet, next_role, role_of
from hakeeper.placement.cluster import Cluster, Rsc


@dataclass
class _Widths:
    rsc: int = 5
    detail: int = 5


def summarize(cluster: Cluster, acts: ActionSet) -> list[str]:
    lines: list[str] = []
    for fence in acts.fences:
        lines.append(f"  * Fence (reboot) {cluster.nodes[fence.node].name} '{fence.reason}'")
    widths = _Widths()
    for rsc in cluster.primitives:
        lines += _resource_lines(cluster, acts, rsc, widths)
    return lines


def _item(cluster: Cluster, widths: _Widths, change: str, rsc: Rsc, origin: int | None,
          dest: int | None, action: Act | None, source: Act | None) -> str:
    names = [n.name for n in cluster.nodes]
    if source is None:
        source = action
    if len(rsc.id) > widths.rsc:
        widths.rsc = len(rsc.id) + 2
    role, new_role = role_of(rsc), next_role(rsc)
    need_role = role in ("Unpromoted", "Promoted") or new_role == "Promoted"
    same_host = origin is not None and dest is not None and origin == dest
    same_role = role == new_role
    o = names[origin] if origin is not None else ""
    d = names[dest] if dest is not None else ""
    if need_role and origin is None:
        details = f"{role} -> {new_role} {d}"
    elif origin is None:
        details = d
    elif need_role and dest is None:
        details = f"{role} {o}"
    elif dest is None:
        details = o
    elif need_role and same_role and same_host:
        details = f"{role} {o}"
    elif same_role and same_host:
        details = o
    elif need_role and same_role:
        details = f"{o} -> {d} {role}"
    elif same_role:
        details = f"{o} -> {d}"
    elif same_host:
        details = f"{role} -> {new_role} {o}"
    else:
        details = f"{role} {o} -> {new_role} {d}"
    widths.detail = max(widths.detail, len(details))
    runnable = action.runnable if action is not None else True
    reason = ""
    if source is not None and source.reason and not runnable:
        reason = f"due to {source.reason} (blocked)"
    elif source is not None and source.reason:
        reason = f"due to {source.reason}"
    elif not runnable:
        reason = "blocked"
    line = f"  * {change:<8}   {rsc.id:<{widths.rsc}}   ( {details:>{widths.detail}} )"
    return line + (f"  {reason}" if reason else "")


def _resource_lines(cluster: Cluster, acts: ActionSet, rsc: Rsc, widths: _Widths) -> list[str]:
    current, nxt = rsc.current, rsc.assigned
    if not rsc.managed or (current is None and nxt is None):
        return []
    moving = current is not None and nxt is not None and current != nxt
    start = acts.one(rsc, "start", nxt) if nxt is not None else None
    start_node = current if (start is not None and start.runnable) else None
    stop = acts.one(rsc, "stop", start_node) if start_node is not None else acts.one(rsc, "stop")
    if rsc.multiple_active == "stop_unexpected" and len(rsc.running_on) > 1:
        # Only the unexpected copies stop; the line speaks of one of those.
        stop = next((a for a in acts.get(rsc, "stop") if a.reason), stop)
    promote = acts.one(rsc, "promote", nxt) if nxt is not None else None
    demote = acts.one(rsc, "demote")
    role, new_role = role_of(rsc), next_role(rsc)

    def item(change: str, rsc: Rsc, origin: int | None, dest: int | None, action: Act | None,
             source: Act | None) -> str:
        return _item(cluster, widths, change, rsc, origin, dest, action, source)

    if role == new_role:
        if nxt is None:
            return []
        if start is None or start.optional:
            if demote and promote and not demote.optional and not promote.optional:
                return [item("Re-promote", rsc, current, nxt, promote, demote)]
            return []
        if not start.runnable:
            src: Act | None = stop if stop is not None and stop.reason else start
            return [item("Stop", rsc, current, None, stop, src)]
        if moving and current is not None and rsc.migrating:
            return [item("Migrate", rsc, current, nxt, start, None)]
        if moving and current is not None:
            return [item("Recover" if rsc.failed else "Move", rsc, current, nxt, stop, None)]
        if rsc.failed:
            return [item("Recover", rsc, current, None, stop, None)]
        return [item("Restart", rsc, current, nxt, start, None)]
    if stop is not None and (new_role == "Stopped" or (start is not None and not start.runnable)):
        out = []
        for node in rsc.running_on:
            stop_op = acts.one(rsc, "stop", node)
            src = stop_op if stop_op is not None and stop_op.reason else start
            out.append(item("Stop", rsc, node, None, stop_op, src))
        return out
    if stop is not None and rsc.failed and not stop.optional:
        return [item("Recover", rsc, current, nxt, stop, start)]
    if moving:
        return [item("Move", rsc, current, nxt, stop, None)]
    if stop is not None and not stop.optional:
        return [item("Restart", rsc, current, nxt, start, None)]
    if role == "Promoted":
        return [item("Demote", rsc, current, nxt, demote, None)]
    if new_role == "Promoted":
        return [item("Promote", rsc, current, nxt, promote, None)]
    if role == "Stopped" and new_role != "Stopped":
        return [item("Start", rsc, current, nxt, start, None)]
    return []
