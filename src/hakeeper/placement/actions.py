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

from hakeeper.placement.cluster import CloneE, Cluster, Entity, GroupE, Rsc, first_member, leaf_primitives
from hakeeper.spec.model import ClusterSpec, Order

STARTED_ROLES = ("Started", "Unpromoted", "Promoted")


@dataclass(eq=False)
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
    gates: list[Act] = field(default_factory=list)
    after: list[Act] = field(default_factory=list)  # actions that must complete before this
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

    def add(self, rsc: Rsc, act: Act) -> Act:
        rsc.acts.setdefault(act.task, []).append(act)
        self.acts.every.append(act)
        return act

    def build(self) -> ActionSet:
        c = self.c
        for node in c.fencing:
            info = c.nodes[node]
            reason = "peer is no longer part of the cluster" if not info.online else "node is unclean"
            act = Act("fence", node, None, optional=False, reason=reason)
            self.acts.fences.append(act)
            self.fence_of[node] = act
        for rsc in c.primitives:
            self._resource(rsc)
        return self.acts

    def _resource(self, rsc: Rsc) -> None:
        if not rsc.managed:
            return
        c = self.c
        nxt = rsc.assigned
        role, new_role = role_of(rsc), next_role(rsc)
        current = rsc.current
        clean_active = [n for n in rsc.running_on if n not in self.fence_of]
        multiply = len(rsc.running_on) > 1
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
            stops.append(stop)
        start: Act | None = None
        if nxt is not None:
            start = self.add(rsc, Act("start", nxt, rsc,
                                      optional=not (current is None or need_stop
                                                    or nxt not in rsc.running_on)))
            self._runnable(rsc, start, role, new_role)
            for stop in stops:
                start.after.append(stop)
                # A required stop (same node) means a restart: the start is required too.
                stop.implies.append((start, None))
                if stop.node == nxt:
                    start.implies.append((stop, None))
                    start.blocks.append(stop)  # placeholder, handled in _unrunnable
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
        del clean_active, c

    def _runnable(self, rsc: Rsc, start: Act, role: str, new_role: str) -> None:
        c = self.c
        if c.have_quorum or not rsc.requires_quorum:
            return
        policy = c.no_quorum_policy
        if policy == "stop" or (policy == "demote" and role not in ("Promoted", "Unpromoted")):
            start.runnable = False
            start.reason = "no quorum"
        elif policy == "freeze" and (not rsc.running_on or start.node not in rsc.running_on):
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


def _missing_start(entity: Entity, acts: ActionSet) -> bool:
    """Whether `entity` cannot be started/running at all (so dependents must not start)."""
    if isinstance(entity, CloneE):
        return all(_missing_start(inst, acts) for inst in entity.instances) if entity.instances \
            else True
    leaves = leaf_primitives(entity)
    if not leaves:
        return True
    for leaf in leaves:
        if not leaf.managed:
            if not leaf.running_on:
                return True
            continue
        start = acts.one(leaf, "start")
        if start is None or not start.runnable:
            return True
    return False


def add_orderings(spec: ClusterSpec, cluster: Cluster, acts: ActionSet) -> list[tuple[Act, Act]]:
    """Wire order constraints and implicit orders; returns blocking pairs to resolve later."""
    pending: list[tuple[Entity, str, Entity, str]] = []
    # Groups: each member after the one before it (and stopped in the reverse order).
    for entity in list(cluster.entities.values()):
        if isinstance(entity, GroupE):
            for before, after in zip(entity.members, entity.members[1:], strict=False):
                _order(before, "start", after, "start", "Mandatory", True, acts, pending)
                _order(before, "promote", after, "promote", "Mandatory", True, acts, pending)
    for order in spec.constraints.order:
        for first_id, first_action, then_id, then_action in _expand(order):
            first = cluster.entities.get(first_id)
            then = cluster.entities.get(then_id)
            if first is None or then is None or first is then:
                continue
            _order(first, first_action, then, then_action, order.kind, order.is_symmetrical,
                   acts, pending, interleave=_interleave(first, then))
    # Blocking: a `then` start cannot run when its `first` cannot start.
    blocked: list[tuple[Act, Act]] = []
    for first, _fa, then, ta in pending:
        if _missing_start(first, acts):
            for act in _side(then, ta, acts, first=False):
                head = first_member(first)
                blocked.append((act, Act("start", -1, head if isinstance(head, Rsc) else None)))
                act.reason = act.reason or f"unrunnable {first.id} start"
    return blocked


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
    return out


def _order(first: Entity, fa: str, then: Entity, ta: str, kind: str, symmetrical: bool,
           acts: ActionSet, pending: list[tuple[Entity, str, Entity, str]],
           interleave: bool = False) -> None:
    if kind == "Serialize":
        return
    mandatory = kind == "Mandatory"
    _link(first, fa, then, ta, mandatory, acts, interleave, implies_then=True)
    if mandatory and fa == "start":
        pending.append((first, fa, then, ta))
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
            if implies_then:
                # A required `first` makes the `then` action required (a restart if in place).
                if f.rsc is not None:
                    f.implies.append((t, f"required {f.rsc.id} {f.task}"))
            else:
                # Reversed half: `then` (e.g. first's stop) required → `first` (dependent's stop).
                t.implies.append((f, None))


def propagate(acts: ActionSet, blocked: list[tuple[Act, Act]]) -> None:
    every: list[Act] = acts.fences + acts.every
    # Unrunnable first: a blocked start blocks what depends on it and forces the stop in place.
    todo = [a for a in every if not a.runnable]
    for act, _src in blocked:
        if act.runnable:
            act.runnable = False
            todo.append(act)
    while todo:
        act = todo.pop()
        if act.task == "start" and act.rsc is not None:
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
    work = [a for a in every if not a.optional and a.runnable]
    while work:
        act = work.pop()
        for other, reason in act.implies:
            if other.optional:
                other.optional = False
                if other.reason is None and reason is not None:
                    other.reason = reason
                if other.runnable:
                    work.append(other)
