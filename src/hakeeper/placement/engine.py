"""`schedule(spec, state) -> Plan`: the pure scheduler's entry point."""

from __future__ import annotations

import gc

from hakeeper.placement.actions import Act, ActionSet, Builder, add_orderings, next_role, propagate
from hakeeper.placement.allocate import allocate
from hakeeper.placement.build import ban_everywhere, build, fenceable
from hakeeper.placement.cluster import NEG, CloneE, Cluster, GroupE, Rsc, leaf_primitives
from hakeeper.placement.notify import add_notifications, notify_input
from hakeeper.placement.plan import Action, Contribution, Plan
from hakeeper.placement.scores import apply_fail_counts, apply_locations, apply_stickiness
from hakeeper.placement.summary import summarize
from hakeeper.placement.tickets import apply_tickets
from hakeeper.spec.model import ClusterSpec, ClusterState


def prepare(spec: ClusterSpec, state: ClusterState | None = None) -> Cluster:
    """Build the working model and apply every score source (before allocation)."""
    if state is None:
        state = spec.state
    cluster, fail = build(spec, state)
    promotion = apply_locations(spec, cluster, state.now if state is not None else None)
    for entity in set(cluster.top):
        if isinstance(entity, CloneE):
            leaves = leaf_primitives(entity)
            if leaves:
                entity.weights = list(leaves[0].weights)
            entity.promotion_locations = promotion.get(entity.id, [])
    # After the clones took their own scores: a ticket bans the instances, not the clone.
    apply_tickets(spec, cluster, state)
    apply_stickiness(cluster)
    for rsc in cluster.primitives:
        for node in rsc.hard_failures:
            targets = range(len(cluster.nodes)) if node < 0 else [node]
            for target in targets:
                rsc.weights[target] = NEG
            rsc.contributions.append((node, NEG, "a hard failure there (e.g. not installed)"
                                      if node >= 0 else "a fatal failure (misconfigured)"))
    apply_fail_counts(cluster, fail, state.now if state is not None else None)
    for rsc in cluster.primitives:
        if rsc.target_role == "Stopped":
            rsc.next_role = "Stopped"
            # Not a ban of every node: the scores stay as they are until the resource itself is
            # assigned (nowhere), so resources colocated with it still see its preferences, as
            # in Pacemaker.
            rsc.contributions.append((-1, NEG, "target-role is Stopped"))
            rsc.why = "target-role is Stopped"
        elif rsc.failed_stop and not cluster.stonith_enabled:
            rsc.managed = False  # a failed stop without fencing: blocked until cleaned up
        if len(rsc.running_on) > 1 and rsc.multiple_active == "stop_only":
            rsc.next_role = "Stopped"
            ban_everywhere(rsc, "active on several nodes and multiple-active is stop_only")
        elif len(rsc.running_on) > 1 and rsc.multiple_active == "block":
            rsc.managed = False
            if isinstance(rsc.parent, GroupE):
                # A group with multiple-active=block is blocked as a whole (members inherit it).
                for member in rsc.parent.members:
                    if member.multiple_active == "block":
                        member.managed = False
    _unavailable(cluster)
    for rsc in cluster.primitives:
        if len(rsc.running_on) > 1 and not rsc.needs_fencing:
            # Without a need for fencing, the resource is "where it is" on its first clean node.
            nodes = cluster.nodes
            rsc.running_on.sort(key=lambda n: not (nodes[n].online and not nodes[n].unclean))
    return cluster


def _unavailable(cluster: Cluster) -> None:
    """Offline, unclean, standby and maintenance nodes can run nothing: -INFINITY everywhere."""
    for node in cluster.nodes:
        if node.available:
            continue
        if node.shutdown:
            words = "the node is shutting down"
        elif node.unclean:
            words = "the node is lost (unclean)" + (", to be fenced" if cluster.stonith_enabled
                                                    else "")
        elif not node.online:
            words = "the node is offline"
        elif node.standby:
            words = "the node is in standby"
        else:
            words = "the node is in maintenance"
        i = node.index
        for rsc in cluster.primitives:
            rsc.weights[i] = NEG
            rsc.contributions.append((i, NEG, words))


def _clone_of(rsc: Rsc) -> CloneE | None:
    parent = rsc.parent
    while parent is not None and not isinstance(parent, CloneE):
        parent = parent.parent
    return parent


def _moves(rsc: Rsc) -> bool:
    return bool(rsc.running_on) and rsc.assigned is not None and rsc.assigned not in rsc.running_on


def _no_migration_after_moves(cluster: Cluster, acts: ActionSet) -> None:
    """A resource ordered after one that moves by stop and start cannot migrate live: it moves
    too, "due to unrunnable X stop" (its migration would need X stopped first)."""
    changed = True
    while changed:
        changed = False
        for rsc in cluster.primitives:
            if not rsc.migrating:
                continue
            start = acts.one(rsc, "start", rsc.assigned)
            for before in start.hard_after if start is not None else []:
                other = before.rsc
                if before.task == "start" and other is not None and other is not rsc \
                        and _moves(other) and not other.migrating:
                    rsc.migrating = False
                    stop = acts.one(rsc, "stop", rsc.running_on[0])
                    clone = _clone_of(other)
                    name = clone.id if clone is not None else other.id
                    if stop is not None and stop.reason is None:
                        stop.reason = f"unrunnable {name} stop"
                    changed = True
                    break


def _fence_failed_stops(cluster: Cluster) -> dict[int, str]:
    reasons: dict[int, str] = {}
    if not cluster.stonith_enabled:
        return reasons
    for rsc in cluster.primitives:
        if rsc.failed_stop:
            for node in rsc.running_on:
                if node not in cluster.fencing and fenceable(cluster, node):
                    cluster.fencing.append(node)
                    cluster.nodes[node].unclean = True
                    reasons[node] = f"{rsc.id} failed there"
    cluster.fencing.sort()
    return reasons


def schedule(spec: ClusterSpec, state: ClusterState | None = None, explain: bool = False,
             fencing_device_required: bool = False) -> Plan:
    """Where every resource runs next and the actions that take it there.

    `state` defaults to the spec's own state section (None: nothing runs yet). With `explain`, the
    plan also carries every resource's final node scores and what contributed to them.
    `fencing_device_required` applies Pacemaker's rule for a CIB: with stonith-enabled but no
    fencing device configured, no resource is managed (hakeeper's native specs fence through
    hakeeper itself, so they need no device).
    """
    # The working model is a few objects per resource and action, all alive until the plan is
    # made; the cyclic garbage collector would only rescan them again and again (a third of the
    # time at 10,000 resources), so it pauses while scheduling.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _schedule(spec, state, explain, fencing_device_required)
    finally:
        if paused:
            gc.enable()


def schedule_cib(spec: ClusterSpec, state: ClusterState | None = None, explain: bool = False) -> Plan:
    """`schedule` for a spec read from a Pacemaker CIB: Pacemaker's own rules for what it manages.

    A CIB is a Pacemaker cluster's configuration, so it gets exactly what crm_simulate does with
    it: with stonith-enabled and no fencing device, nothing is managed. The conformance runner, the
    differential harness and the benchmark schedule their CIBs through this one function.
    """
    return schedule(spec, state, explain, fencing_device_required=True)


def _schedule(spec: ClusterSpec, state: ClusterState | None, explain: bool,
              fencing_device_required: bool) -> Plan:
    cluster = prepare(spec, state)
    if fencing_device_required and cluster.stonith_enabled and not any(
            p.agent.cls == "stonith" for p in spec.resources.primitives):
        for rsc in cluster.primitives:
            rsc.managed = False
            rsc.why = "stonith-enabled without a fencing device: Pacemaker manages nothing"
    fence_reasons = _fence_failed_stops(cluster)
    fenced = set(cluster.fencing)
    for rsc in cluster.primitives:
        if rsc.failed and rsc.running_on and all(
                n in fenced and not cluster.nodes[n].online for n in rsc.running_on):
            rsc.failed = False  # a lost node's failure ends with fencing: the resource just moves
    allocate(cluster)
    builder = Builder(cluster)
    acts = builder.build()
    for fence in acts.fences:
        if fence.node in fence_reasons:
            fence.reason = fence_reasons[fence.node]
    for rsc in cluster.primitives:
        rsc.migrating = (rsc.allow_migrate and not rsc.failed and rsc.managed
                         and len(rsc.running_on) == 1 and rsc.assigned is not None
                         and rsc.assigned != rsc.running_on[0]
                         and rsc.running_on[0] not in cluster.fencing
                         and cluster.nodes[rsc.running_on[0]].online)
    blocked = add_orderings(spec, cluster, acts)
    _no_migration_after_moves(cluster, acts)
    propagate(acts, blocked)
    return add_notifications(_plan(cluster, acts, explain), notify_input(spec, cluster))


def _plan(cluster: Cluster, acts: ActionSet, explain: bool) -> Plan:
    names = [n.name for n in cluster.nodes]
    plan = Plan()
    index: dict[int, int] = {}
    chosen: list[Act] = []

    def keep(act: Act) -> None:
        if act.optional or not act.runnable:
            return
        index[id(act)] = len(chosen)
        chosen.append(act)

    for fence in acts.fences:
        keep(fence)
    for rsc in cluster.primitives:
        for task in ("demote", "stop", "start", "promote"):
            for act in acts.get(rsc, task):
                keep(act)
    for i, act in enumerate(chosen):
        task = "fence" if act.task == "fence" else act.task
        plan.actions.append(Action(i, task, names[act.node], act.rsc.id if act.rsc else None,
                                   act.reason, act.pseudo))
    edges: set[tuple[int, int]] = set()
    for act in chosen:
        for before in act.after:
            j = index.get(id(before))
            if j is not None:
                edges.add((j, index[id(act)]))
    plan.edges = sorted(edges)
    for rsc in cluster.primitives:
        if rsc.running_on:
            plan.current[rsc.id] = [names[n] for n in rsc.running_on]
        # Where it runs afterwards: where it runs now unless a stop there is carried out, plus
        # where it is assigned when it is (or stays) started there.
        final: list[int] = []
        for node in rsc.running_on:
            stop = acts.one(rsc, "stop", node)
            if stop is None or stop.optional or not stop.runnable:
                final.append(node)
        if rsc.assigned is not None and rsc.assigned not in final:
            start = acts.one(rsc, "start", rsc.assigned)
            if start is not None and start.runnable and (
                    not start.optional or rsc.assigned in rsc.running_on):
                final.append(rsc.assigned)
        if final:
            plan.placement[rsc.id] = [names[n] for n in final]
            plan.roles[rsc.id] = next_role(rsc) if rsc.assigned in final else (
                rsc.role if rsc.role != "Stopped" else "Started")
        if explain:
            plan.scores[rsc.id] = {names[i]: w for i, w in enumerate(rsc.weights)}
            plan.contributions[rsc.id] = [
                Contribution("*" if n < 0 else names[n], s, w) for n, s, w in rsc.contributions]
            plan.reasons[rsc.id] = rsc.why
    plan.summary = summarize(cluster, acts)
    return plan
