"""What-if simulation: derive a state, inject events, schedule, and render the result.

Pure functions; the CLI in commands.py only reads files and prints. When the spec carries no state,
"now" is the initial placement: the scheduler first places everything from nothing, and that
becomes the current state on which the events (a node lost, put in standby, a monitor failure, a
ticket granted, revoked, put in standby or activated) act.
"""

from __future__ import annotations

from collections.abc import Mapping

from hakeeper.placement.engine import schedule
from hakeeper.placement.plan import Plan
from hakeeper.spec.model import ClusterSpec, ClusterState, NodeState, ResourceStatus, TicketState

# Ticket events, crm_simulate's: what each does to the ticket's state.
TICKET_EVENTS = ("grant", "revoke", "standby", "activate")


def state_from_plan(spec: ClusterSpec, plan: Plan, base: ClusterState | None = None) -> ClusterState:
    """The state after `plan` is carried out (every action succeeds)."""
    state = base.model_copy(deep=True) if base is not None else ClusterState()
    for node in spec.nodes:
        state.nodes.setdefault(node.name, NodeState())
    for fenced in [a.node for a in plan.actions if a.task == "fence"]:
        ns = state.nodes.setdefault(fenced, NodeState())
        ns.unclean = False
        ns.online = False
    keep_failures = {(r.resource, r.node): r for r in state.resources if r.fail_count}
    resources: list[ResourceStatus] = []
    for rid, where in plan.placement.items():
        for host in where:
            role = plan.roles.get(rid, "Started")
            old = keep_failures.pop((rid, host), None)
            resources.append(ResourceStatus(
                resource=rid, node=host, role=role if role != "Stopped" else "Started",
                fail_count=old.fail_count if old else 0,
                last_failure=old.last_failure if old else None))
    for old in keep_failures.values():
        resources.append(ResourceStatus(resource=old.resource, node=old.node, role="Stopped",
                                        fail_count=old.fail_count, last_failure=old.last_failure))
    state.resources = resources
    return state


def presumed_tickets(events: Mapping[str, str]) -> dict[str, TicketState]:
    """For a spec without a state: the tickets as the events presuppose them before they happen.

    Revoking a ticket or putting it in standby presupposes it was granted (so the initial placement
    ran what depends on it); activating presupposes it granted and in standby. A ticket the events
    do not name has no state: not granted.
    """
    before = {"revoke": TicketState(granted=True), "standby": TicketState(granted=True),
              "activate": TicketState(granted=True, standby=True)}
    return {name: before[event].model_copy() for name, event in events.items() if event in before}


def initial_state(spec: ClusterSpec, tickets: Mapping[str, TicketState] | None = None) -> ClusterState:
    """The spec's state, or the initial placement (with `tickets`, for a spec without a state)."""
    if spec.state is not None:
        return spec.state.model_copy(deep=True)
    base = ClusterState(tickets=dict(tickets or {}))
    return state_from_plan(spec, schedule(spec, base), base)


def inject(spec: ClusterSpec, state: ClusterState, fail: list[str], standby: list[str],
           op_fail: list[tuple[str, str]], tickets: Mapping[str, str] | None = None) -> ClusterState:
    """The state with the events applied; `tickets` maps a ticket to one of TICKET_EVENTS."""
    state = state.model_copy(deep=True)
    for name, event in (tickets or {}).items():
        ticket = state.tickets.setdefault(name, TicketState())
        if event == "grant":
            ticket.granted = True
        elif event == "revoke":
            ticket.granted = False
        elif event == "standby":
            ticket.standby = True
        elif event == "activate":
            ticket.standby = False
    for name in fail:
        ns = state.nodes.setdefault(name, NodeState())
        ns.online = False
        ns.unclean = True
    for name in standby:
        state.nodes.setdefault(name, NodeState()).standby = True
    for rsc, node in op_fail:
        for status in state.resources:
            if status.resource == rsc and status.node == node:
                status.failed = True
                status.fail_count += 1
                status.failed_op = "monitor"
                status.last_failure = state.now
                break
        else:
            state.resources.append(ResourceStatus(resource=rsc, node=node, failed=True,
                                                  fail_count=1, failed_op="monitor",
                                                  last_failure=state.now))
    return state


def render_status(spec: ClusterSpec, state: ClusterState, placement: dict[str, list[str]],
                  roles: Mapping[str, str] | None = None) -> list[str]:
    """A cluster status listing in the style of crm_simulate."""
    online, offline, standby, unclean = [], [], [], []
    for node in spec.nodes:
        ns = state.nodes.get(node.name) or NodeState()
        if ns.unclean and not ns.online:
            unclean.append(node.name)
        elif not ns.online:
            offline.append(node.name)
        elif ns.standby:
            standby.append(node.name)
        else:
            online.append(node.name)
    lines = ["  * Node List:"]
    for name in unclean:
        lines.append(f"    * Node {name}: UNCLEAN (offline)")
    for name in standby:
        lines.append(f"    * Node {name}: standby")
    if online:
        lines.append(f"    * Online: [ {' '.join(online)} ]")
    if offline:
        lines.append(f"    * OFFLINE: [ {' '.join(offline)} ]")
    lines += ["", "  * Full List of Resources:"]
    agents = {p.id: str(p.agent) for p in spec.resources.primitives}
    failed = {(s.resource, s.node) for s in state.resources if s.failed}
    ids = _resource_ids(spec, placement)
    for rid in ids:
        base = rid.split(":")[0]
        nodes = placement.get(rid, [])
        role = (roles or {}).get(rid, "Started")
        if not nodes:
            where = "Stopped"
        else:
            flag = "FAILED " if any((rid, n) in failed or (base, n) in failed for n in nodes) \
                else ""
            where = f"{flag}{role} {' '.join(nodes)}" if not flag else f"FAILED {' '.join(nodes)}"
        lines.append(f"    * {rid}\t({agents.get(base, '?')}):\t {where}")
    return lines


def _resource_ids(spec: ClusterSpec, placement: dict[str, list[str]]) -> list[str]:
    ids: list[str] = []
    clones = {c.child: c for c in spec.resources.clones}
    groups = {g.id: g for g in spec.resources.groups}
    in_clone_group = {m for c in spec.resources.clones if c.child in groups
                      for m in groups[c.child].members}
    for prim in spec.resources.primitives:
        if prim.id in clones or prim.id in in_clone_group:
            instances = sorted((k for k in placement if k.split(":")[0] == prim.id),
                               key=lambda k: int(k.split(":")[1]) if ":" in k else 0)
            ids += instances or [prim.id]
        else:
            ids.append(prim.id)
    return ids
