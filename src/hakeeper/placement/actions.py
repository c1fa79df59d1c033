"""From placement to actions: stops, starts, promotes, demotes and fencing, with their ordering.

Every primitive gets a stop on each node it runs on and a start on the node it is assigned to;
each action is *optional* (nothing to do) until something requires it, and *runnable* until
something blocks it. Orderings carry Pacemaker's implications: a required `first` start makes the
`then` start required (so the dependent restarts), a required stop of `first` makes the `then`
resource stop first (the reversed, symmetrical half), and a `first` that cannot start blocks the
`then` start. These are propagated with a work list until nothing changes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hakeeper.placement.cluster import (
    CloneE,
    Cluster,
    Entity,
    GroupE,
    Rsc,
    first_member,
    leaf_primitives,
)
from hakeeper.spec.model import ClusterSpec, Order
from hakeeper.spec.values import INFINITY


@dataclass(eq=False, slots=True)
class Act:
    task: str
    node: int
    rsc: Rsc | None = None
    optional: bool = True
    runnable: bool = True
    pseudo: bool = False
    reason: str | None = None
    # "if I become required, these become required" (reason given to them)
    implies: list[tuple[Act, str | None]] = field(default_factory=list)
    # "if I become unrunnable, these become unrunnable"
    blocks: list[Act] = field(default_factory=list)
    # for a gate over clone instances: unrunnable only when every input is
    gate_inputs: list[Act] = field(default_factory=list)
    need: int = 1  # how many gate inputs must be runnable (clone-min)
    gates: list[Act] = field(default_factory=list)
    after: list[Act] = field(default_factory=list)  # actions that must complete before this
    hard_after: list[Act] = field(default_factory=list)  # ... through a mandatory ordering
    # ... through the resource's own stop-then-start (blocks silently, as Pacemaker does)
    quiet_after: list[Act] = field(default_factory=list)
    # "if I become unrunnable, these become unrunnable, for this reason"
    blocks_with: list[tuple[Act, str]] = field(default_factory=list)
    # What blocked this action and its name in Pacemaker's words; the reason is worded at the
    # end: "required X start" when X's start was required, "unrunnable X start" otherwise.
    blocker: tuple[Act, str] | None = None
    index: int = -1


@dataclass
class ActionSet:
    fences: list[Act] = field(default_factory=list)
    every: list[Act] = field(default_factory=list)

    def get(self, rsc: Rsc, task: str) -> list[Act]:
        return rsc.acts.get(task, [])

    def one(self, rsc: Rsc, task: str, node: int | None = None) -> Act | None:
        for act in self.get(rsc, task):
            if node is None or act.node == node:
                return act
        return None


def next_role(rsc: Rsc) -> str:
    if rsc.assigned is None:
        return "Stopped"
    if rsc.next_role and rsc.next_role != "Stopped":
        return rsc.next_role
    return "Started"


def role_of(rsc: Rsc) -> str:
    if not rsc.running_on:
        return "Stopped"
    return rsc.role if rsc.role != "Stopped" else "Started"


class Builder:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.acts = ActionSet()
        self.fence_of: dict[int, Act] = {}
        self.pending = any(n.pending for n in cluster.nodes)

    def add(self, rsc: Rsc, act: Act) -> Act:
        rsc.acts.setdefault(act.task, []).append(act)
        self.acts.every.append(act)
        return act

    def build(self) -> ActionSet:
        c = self.c
        # Pacemaker lists fencing in the reverse of the nodes' order.
        for node in reversed(c.fencing):
            info = c.nodes[node]
            reason = info.fence_reason or ("peer is no longer part of the cluster"
                                           if not info.online else "node is unclean")
            if reason == "node was never seen":
                reason = "node is unclean"  # Pacemaker's words for startup fencing
            act = Act("fence", node, None, optional=False, reason=reason)
            self.acts.fences.append(act)
            self.fence_of[node] = act
        for rsc in c.primitives:
            self._resource(rsc)
        return self.acts

    def _resource(self, rsc: Rsc) -> None:
        c = self.c
        if not rsc.managed:
            # Nothing will be done to it, but what is ordered around it must know that its
            # stop cannot happen.
            for node in rsc.running_on:
                self.add(rsc, Act("stop", node, rsc, optional=True, runnable=False))
            return
        nxt = rsc.assigned
        role, new_role = role_of(rsc), next_role(rsc)
        current = rsc.current
        # Active in several places: counting only clean nodes when the resource does not need
        # fencing (its copy on a lost node is not a concern), as Pacemaker.
        multiply = len(rsc.running_on if rsc.needs_fencing else [
            n for n in rsc.running_on
            if n not in self.fence_of and c.nodes[n].online and not c.nodes[n].unclean]) > 1
        moving = current is not None and nxt is not None and current != nxt
        need_stop = moving or multiply or (rsc.failed and not moving)
        stops: list[Act] = []
        for node in rsc.running_on:
            fenced = node in self.fence_of
            stop = self.add(rsc, Act("stop", node, rsc, optional=not (need_stop or nxt is None
                                                                      or fenced)))
            if fenced:
                stop.pseudo = True
                stop.optional = nxt == node  # (never: fenced nodes are unavailable)
                stop.after.append(self.fence_of[node])
            if nxt is None:
                stop.reason = "node availability"
            elif multiply and rsc.multiple_active == "stop_unexpected" and node != nxt:
                stop.reason = "being multiply active"
            if not fenced and (c.nodes[node].unclean or not c.nodes[node].online):
                stop.runnable = False  # the node is gone and cannot be fenced: blocked
            stops.append(stop)
        start: Act | None = None
        if nxt is not None:
            start = self.add(rsc, Act("start", nxt, rsc,
                                      optional=not (current is None or need_stop
                                                    or nxt not in rsc.running_on)))
            self._runnable(rsc, start, role, new_role)
            if self.pending and not start.optional:
                # A start waits for the resource to be probed everywhere; a pending node cannot
                # be probed yet, so the start is blocked (Pacemaker gives no reason).
                start.runnable = False
            for stop in stops:
                start.after.append(stop)
                start.quiet_after.append(stop)
                # A required stop on the same node means a restart: the start is required too
                # (a copy stopped elsewhere, or on a fenced node, does not restart this one).
                if stop.node == nxt or not stop.pseudo:
                    stop.implies.append((start, None))
                if stop.node == nxt:
                    start.implies.append((stop, None))
            for node in self.fence_of:
                if node in rsc.running_on:
                    start.after.append(self.fence_of[node])
        # Roles of promotable instances.
        if role == "Promoted" and (new_role != "Promoted" or need_stop or moving):
            for node in rsc.running_on:
                if node in self.fence_of:
                    continue
                demote = self.add(rsc, Act("demote", node, rsc, optional=False))
                for stop in stops:
                    if stop.node == node:
                        stop.after.append(demote)
        elif role == "Promoted" and start is not None:
            demote = self.add(rsc, Act("demote", current or 0, rsc, optional=True))
            for stop in stops:
                stop.after.append(demote)
                stop.implies.append((demote, None))
        if new_role == "Promoted" and start is not None:
            promote = self.add(rsc, Act("promote", start.node, rsc,
                                        optional=role == "Promoted" and not need_stop))
            promote.after.append(start)
            start.implies.append((promote, None))
            start.blocks.append(promote)
            demote_act = self.acts.one(rsc, "demote")
            if demote_act is not None:
                demote_act.implies.append((promote, None))

    def _runnable(self, rsc: Rsc, start: Act, role: str, new_role: str) -> None:
        c = self.c
        if c.have_quorum or not rsc.requires_quorum:
            return
        policy = c.no_quorum_policy
        if policy in ("stop", "suicide") or (
                policy == "demote" and role not in ("Promoted", "Unpromoted")):
            start.runnable = False
            start.reason = "no quorum"
        elif policy == "freeze" and not rsc.running_on:
            # Freeze: what runs may still move or recover; nothing new starts.
            start.runnable = False
            start.reason = "quorum freeze"


def _side(entity: Entity, task: str, acts: ActionSet, first: bool) -> list[Act]:
    out: list[Act] = []
    if isinstance(entity, GroupE):
        members = entity.members
        if first:
            pick = members[-1:] if task in ("start", "promote") else members[:1]
        else:
            pick = members[:1] if task in ("start", "promote") else members[-1:]
        for m in pick:
            out += acts.get(m, task)
        return out
    for leaf in leaf_primitives(entity):
        out += acts.get(leaf, task)
    return out


INVERSE = {"start": "stop", "stop": "start", "promote": "demote", "demote": "promote"}


_COLLECTIVE = {"start": "running", "stop": "stopped", "promote": "promoted",
               "demote": "demoted"}


def _action_name(entity: Entity, task: str) -> str:
    """How Pacemaker names an action in reasons: `rsc start`, or `group running` for a group
    or clone (its pseudo-action that completes when every member has started)."""
    if isinstance(entity, GroupE | CloneE):
        return f"{entity.id} {_COLLECTIVE.get(task, task)}"
    return f"{entity.id} {task}"


def _demotes_before_promotes(cluster: Cluster, acts: ActionSet) -> None:
    """In a promotable clone, every promote waits for every demote of the clone's instances, and
    for the fence of a node where an instance was promoted (Pacemaker orders the clone's
    `demoted` before its `promote`, and a lost node's demote is a pseudo-action after its fence).
    Without it, a promotion moving from one instance to another could run before the old one is
    demoted: promoted on two nodes (found by the cluster simulation)."""
    for entity in cluster.entities.values():
        if not isinstance(entity, CloneE) or not entity.promotable:
            continue
        leaves = [leaf for instance in entity.instances for leaf in leaf_primitives(instance)]
        demotes = [a for leaf in leaves for a in acts.get(leaf, "demote")]
        fences = [f for f in acts.fences
                  if any(leaf.role == "Promoted" and f.node in leaf.running_on for leaf in leaves)]
        for leaf in leaves:
            for promote in acts.get(leaf, "promote"):
                promote.after.extend(a for a in demotes + fences if a not in promote.after)


def add_orderings(spec: ClusterSpec, cluster: Cluster, acts: ActionSet) -> list[tuple[Act, Act]]:
    """Wire order constraints and implicit orders; returns blocking pairs to resolve later."""
    pending: list[tuple[Entity, str, Entity, str]] = []
    _demotes_before_promotes(cluster, acts)
    # Groups: each member after the one before it (and stopped in the reverse order).
    for entity in list(cluster.entities.values()):
        if isinstance(entity, GroupE):
            for before, after in zip(entity.members, entity.members[1:], strict=False):
                _order(before, "start", after, "start", "Mandatory", True, acts, pending)
                _order(before, "promote", after, "promote", "Mandatory", True, acts, pending)
        if isinstance(entity, CloneE) and entity.ordered:
            # An ordered clone (meta ordered=true) starts its instances one after another, in
            # instance order, and stops them in the reverse order, as Pacemaker does. The orders
            # are optional: they only sequence actions that are in the same transition anyway.
            for earlier, later in itertools.pairwise(entity.instances):
                _link(earlier, "start", later, "start", False, acts, False, True)
                _link(later, "stop", earlier, "stop", False, acts, False, False)
    # A set with require-all=false: what follows needs one of its members ("one or more").
    set_gates: dict[tuple[str, int, str], tuple[Entity, list[Entity]]] = {}
    for order in spec.constraints.order:
        for first_id, first_action, then_id, then_action in _expand(order):
            first_id, _sep, gate_name = first_id.partition("\x00")
            first = cluster.entities.get(first_id)
            then = cluster.entities.get(then_id)
            if first is None or then is None or first is then:
                continue
            if gate_name:
                _link(first, first_action, then, then_action, False, acts, False, True)
                set_gates.setdefault((gate_name, id(then), then_action), (then, []))[1].append(
                    first)
                continue
            some = _one_or_more(order, first)
            if some is not None:
                # "One or more": `then` needs some instances of `first` (clone-min or
                # require-all=false); it only orders, and blocks when too few can run.
                _link(first, first_action, then, then_action, False, acts, False, True)
                pending.append((first, f"{some[0]}:{some[1]}", then, then_action))
                continue
            _order(first, first_action, then, then_action, order.kind, order.is_symmetrical,
                   acts, pending, interleave=_interleave(first, then))
    # Blocking: a `then` action cannot run when its `first` cannot start (a clone's "running"
    # needs one instance, a group's every member), transitively: wired here, spread later.
    blocked: list[tuple[Act, Act]] = []
    for first, fa, then, ta in pending:
        asym = ta.startswith("asym:")
        ta = ta.removeprefix("asym:")
        need, _sep, name = fa.partition(":") if fa[:1].isdigit() else ("1", "", "")
        thens = [act for act in _side(then, ta, acts, first=False)
                 if not (asym and act.optional and act.rsc is not None
                         and act.rsc.running_on == [act.node])]
        if not thens:
            continue
        what = name or _action_name(first, "start")
        reason = f"unrunnable {what}"
        if _missing_start(first, acts, int(need)):
            for act in thens:
                act.runnable = False
                act.reason = act.reason or reason
                blocked.append((act, act))
            continue
        inputs = [a for leaf in leaf_primitives(first) for a in acts.get(leaf, "start")]
        if isinstance(first, CloneE) and isinstance(then, CloneE) and then.interleave \
                and not name:
            # Interleaved: each `then` instance needs the `first` instance on its own node.
            for t in thens:
                local = [a for a in inputs if a.node == t.node]
                for a in local:
                    if a.rsc is not None:
                        a.blocks_with.append((t, f"{a.rsc.id} start"))
                if not local and not any(leaf.assigned == t.node for leaf in leaf_primitives(first)):
                    # No instance of `first` will be on this node at all: Pacemaker keeps the
                    # `then` instance from becoming active here.
                    t.runnable = False
                    t.reason = t.reason or reason
                    blocked.append((t, t))
                    if t.rsc is not None and t.rsc.current is None:
                        t.rsc.assigned = None  # never placed there, as Pacemaker unassigns it
                elif not local:
                    gate = Act("running", -1, None, optional=False, pseudo=True,
                               need=int(need))
                    gate.gate_inputs = inputs
                    gate.blocks_with = [(t, what)]
                    for a in inputs:
                        a.gates.append(gate)
            continue
        if isinstance(first, CloneE):
            gate = Act("running", -1, None, optional=False, pseudo=True, need=int(need))
            gate.gate_inputs = inputs
            gate.blocks_with = [(t, what) for t in thens]
            for act in inputs:
                act.gates.append(gate)
        else:
            for act in inputs:
                act.blocks_with += [(t, what) for t in thens]
    for (gate_name, _key, ta), (then, firsts) in set_gates.items():
        thens = _side(then, ta, acts, first=False)
        what = f"one-or-more:{gate_name}"
        if all(_missing_start(f, acts) for f in firsts):
            for act in thens:
                act.runnable = False
                act.reason = act.reason or f"unrunnable {what}"
                blocked.append((act, act))
            continue
        gate = Act("running", -1, None, optional=False, pseudo=True, need=1)
        gate.gate_inputs = [a for f in firsts for leaf in leaf_primitives(f)
                            for a in acts.get(leaf, "start")]
        gate.blocks_with = [(t, what) for t in thens]
        for act in gate.gate_inputs:
            act.gates.append(gate)
    return blocked


def _one_or_more(order: Order, first: Entity) -> tuple[int, str] | None:
    if not isinstance(first, CloneE) or order.kind != "Mandatory":
        return None
    extra = first.clone_min
    if extra > 0 or not order.require_all:
        return max(1, extra), f"clone-one-or-more:{order.id}"
    return None


def _missing_start(entity: Entity, acts: ActionSet, need: int = 1) -> bool:
    """Whether `entity` cannot be started at all (unassigned or unmanaged), whatever else
    happens: a clone when fewer than `need` instances can, a group when any member cannot."""
    if isinstance(entity, CloneE):
        able = sum(1 for inst in entity.instances if not _missing_start(inst, acts))
        return able < need
    leaves = leaf_primitives(entity)
    if not leaves:
        return True
    # An unmanaged resource that runs healthy is as good as started; a failed or stopped one
    # will not be started by the cluster.
    return any((not leaf.managed and (leaf.failed or not leaf.running_on))
               or (leaf.managed and acts.one(leaf, "start") is None) for leaf in leaves)


def _interleave(first: Entity, then: Entity) -> bool:
    return isinstance(first, CloneE) and isinstance(then, CloneE) and then.interleave


def _expand(order: Order) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    then_action = order.effective_then_action
    if order.first and order.then:
        out.append((order.first, order.first_action, order.then, then_action))
    prev: list[tuple[str, str]] = []
    for rset in order.sets:
        action: str = rset.action or "start"
        members: list[tuple[str, str]] = [(r, action) for r in rset.resources]
        if rset.sequential:
            for (a, aa), (b, ba) in itertools.pairwise(members):
                out.append((a, aa, b, ba))
        for a, aa in prev:
            for b, ba in members:
                out.append((a, aa, b, ba))
        prev = members[-1:] if rset.sequential else members
        if not rset.require_all and not rset.sequential:
            # "One or more" of this set is enough for what follows: marked for a gate.
            prev = [(f"{r}\x00{rset.id or order.id}", a) for r, a in members]
    return out


def _order(first: Entity, fa: str, then: Entity, ta: str, kind: str, symmetrical: bool,
           acts: ActionSet, pending: list[tuple[Entity, str, Entity, str]],
           interleave: bool = False) -> None:
    if kind == "Serialize":
        return
    # An asymmetrical mandatory order only orders: Pacemaker gives it neither "first required
    # implies then required" nor "first unrunnable blocks then".
    mandatory = kind == "Mandatory" and symmetrical
    _link(first, fa, then, ta, mandatory, acts, interleave, implies_then=True)
    if kind == "Mandatory" and (fa in ("start", "promote") or not symmetrical):
        # An asymmetrical one still blocks `then`, unless it is already running in place.
        pending.append((first, fa, then, ta if symmetrical else "asym:" + ta))
    if symmetrical and fa in INVERSE and ta in INVERSE:
        _link(then, INVERSE[ta], first, INVERSE[fa], mandatory, acts, interleave,
              implies_then=False)


def _link(first: Entity, fa: str, then: Entity, ta: str, mandatory: bool, acts: ActionSet,
          interleave: bool, implies_then: bool) -> None:
    firsts = _side(first, fa, acts, first=True)
    thens = _side(then, ta, acts, first=False)
    for f in firsts:
        for t in thens:
            if interleave and f.node != t.node:
                continue
            t.after.append(f)
            if not mandatory:
                continue
            if implies_then or not isinstance(first, CloneE):
                # (a clone's "stopped" completes even when an instance's stop cannot run, so a
                # blocked instance stop does not hold up what is stopped after the clone)
                t.hard_after.append(f)
            if implies_then:
                # A required `first` makes the `then` action required (a restart if in place);
                # of a clone, only an instance restarting in place does (a new one does not).
                if isinstance(first, CloneE) and (f.rsc is None or f.node not in f.rsc.running_on):
                    continue
                # Interleaved clones pair instances node by node: the reason names the instance.
                name = f"{f.rsc.id} {f.task}" if interleave and f.rsc is not None \
                    else _action_name(first, fa)
                f.implies.append((t, f"required {name}"))
            else:
                # Reversed half: `then` (e.g. first's stop) required → `first` (dependent's stop);
                # of a clone, only an instance restarting in place does (one that goes does not).
                if isinstance(then, CloneE) and t.rsc is not None and t.rsc.assigned != t.node:
                    continue
                t.implies.append((f, None))


def propagate(acts: ActionSet, blocked: list[tuple[Act, Act]]) -> None:
    """Spread "unrunnable" and "required" along the orderings until nothing changes."""
    every: list[Act] = acts.fences + acts.every
    for act, _src in blocked:
        act.runnable = False
    done_blocked: set[int] = set()
    done_required: set[int] = set()
    hard = [a for a in every if a.hard_after or a.quiet_after]
    changed = True
    while changed:
        changed = False
        # A blocked start blocks what depends on it and forces the stop in place (Pacemaker's
        # restart ordering: a resource that should restart but cannot start is still stopped).
        todo = [a for a in every if not a.runnable and id(a) not in done_blocked]
        while todo:
            act = todo.pop()
            done_blocked.add(id(act))
            changed = True
            if act.task == "start" and act.rsc is not None:
                # What must run with it (mandatory colocation) cannot start there either.
                for coloc in act.rsc.with_this:
                    if coloc.score < INFINITY or coloc.id.startswith("group:"):
                        continue
                    dep = first_member(coloc.dependent)
                    if not isinstance(dep, Rsc):
                        continue
                    for other in acts.get(dep, "start"):
                        if other.node == act.node and other.runnable:
                            other.runnable = False
                            if other.reason is None and other.blocker is None:
                                other.reason = f"colocation with {coloc.primary.id}"
                            todo.append(other)
            if act.task == "start" and act.rsc is not None and act.rsc.managed:
                for stop in acts.get(act.rsc, "stop"):
                    if stop.optional:
                        stop.optional = False
                        if stop.reason is None and act.reason:
                            stop.reason = act.reason
                for promote in acts.get(act.rsc, "promote"):
                    if promote.runnable:
                        promote.runnable = False
                        todo.append(promote)
            for other in act.blocks:
                if other.task != "stop" and other.runnable:
                    other.runnable = False
                    todo.append(other)
            for other, what in act.blocks_with:
                if other.runnable:
                    other.runnable = False
                    if other.reason is None and other.blocker is None:
                        other.blocker = (act, what)
                    todo.append(other)
            for gate in act.gates:
                if gate.runnable and sum(i.runnable for i in gate.gate_inputs) < gate.need:
                    gate.runnable = False
                    todo.append(gate)
        work = [a for a in every if not a.optional and a.runnable and id(a) not in done_required]
        while work:
            act = work.pop()
            done_required.add(id(act))
            changed = True
            migrating = act.task in ("start", "stop") and act.rsc is not None \
                and act.rsc.migrating
            for other, reason in act.implies:
                if migrating and other.rsc is not act.rsc:
                    continue  # a live migration does not restart what is ordered after it
                if other.optional:
                    other.optional = False
                    if other.reason is None and other.blocker is None and reason is not None:
                        other.reason = reason
                    if other.runnable:
                        work.append(other)
        # A required action that cannot run blocks what a mandatory ordering puts after it.
        for act in hard:
            if not act.runnable:
                continue
            for before in act.hard_after:
                # (an unmanaged resource's stop never runs, required or not)
                if not before.runnable and (not before.optional or (
                        before.task == "stop" and before.rsc is not None
                        and not before.rsc.managed)):
                    act.runnable = False
                    if act.reason is None and act.blocker is None and before.rsc is not None:
                        act.reason = f"unrunnable {before.rsc.id} {before.task}"
                    changed = True
                    break
            else:
                for before in act.quiet_after:
                    if not before.optional and not before.runnable:
                        act.runnable = False
                        changed = True
                        break
    for act in every:
        if act.reason is None and act.blocker is not None:
            src, what = act.blocker
            inputs = src.gate_inputs or [src]
            # "required" when X was restarting (a required start of a running resource).
            required = any(not i.optional and i.rsc is not None and i.rsc.running_on
                           for i in inputs)
            act.reason = f"{'required' if required else 'unrunnable'} {what}"
