"""Clone notifications: the scheduler stage that tells a `notify=true` clone's instances what changes.

Pacemaker's contract with an agent whose clone has `notify=true`: before the clone's instances are
stopped (started, demoted, promoted), every instance active at that moment runs the agent's
`notify` action with `type=pre`; after them, every instance active then runs it with `type=post`.
Each notification describes the whole transition of the clone: which instances start, stop,
promote and demote, and which were active, inactive, promoted and unpromoted *before* it (the
same lists in every notification of the transition: an agent works out "active after the stops"
as active minus stop, as Pacemaker's documentation tells it to). Galera and rabbitmq-cluster
depend on it: galera's post-start notification is where a joining node learns the cluster it
joins, rabbitmq-cluster's post-stop notification is where the others forget a stopped node.

The transition goes by kinds of operation, each a phase: demote, stop, start, promote (the order
a transition carries them out in). For a phase with operations the stage adds a pre-notification
on every node with an instance active before the phase and a post-notification on every node with
one active after it, and the orderings pre -> every operation of the phase -> post; a later phase's
notifications and operations wait for every earlier phase's operations and post-notifications,
and what the plan orders after the clone's operations (a group started after the clone is
promoted) waits for their post-notifications too, as in Pacemaker (its "notified" step).

A node that cannot answer gets none: one being fenced in this plan, offline or unclean (its
instance still counts as active in the lists, and its stop as a stop, as in Pacemaker).

The stage works on the plan (`Plan`) and typed facts about each clone; `engine.schedule` calls it
last. What it leaves out of Pacemaker: clones of groups get no notifications; a notification
goes to an instance, and `clone-node-max` > 1 of an anonymous clone runs one agent per node in
hakeeper anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from hakeeper.placement.cluster import CloneE, Cluster, Rsc
from hakeeper.placement.plan import Action, Plan
from hakeeper.spec.model import ClusterSpec

NotifyType = Literal["pre", "post"]
NotifyOperation = Literal["demote", "stop", "start", "promote"]
# The phases of a transition, in the order it carries them out.
PHASES: tuple[NotifyOperation, ...] = get_args(NotifyOperation)
NOTIFY_TYPES: tuple[NotifyType, ...] = get_args(NotifyType)
ActiveRole = Literal["Started", "Unpromoted", "Promoted"]
# What a post-notification's key names: the pseudo-action it follows, in Pacemaker's words.
_DONE = {"demote": "demoted", "stop": "stopped", "start": "running", "promote": "promoted"}


# The facts' lists of [resource, node] pairs, by field name.
PAIR_LISTS = ("start", "stop", "promote", "demote", "active", "promoted", "unpromoted")


@dataclass(frozen=True, order=True)
class Entry:
    """One instance in a notification's list, and the node it is on."""

    resource: str
    node: str


@dataclass(frozen=True)
class NotifyFacts:
    """What one notification tells the agent. `type` and `operation` are this notification's;
    the lists are the clone's whole transition, the same in all its notifications: the
    operations (`start` ... `demote`), and the instances `active`, `promoted` and
    `unpromoted` before it, the instance ids `inactive` before it, every node of the cluster
    (`all_nodes`) and those where the clone may run (`available`). Lists are sorted."""

    type: NotifyType
    operation: NotifyOperation
    start: tuple[Entry, ...] = ()
    stop: tuple[Entry, ...] = ()
    promote: tuple[Entry, ...] = ()
    demote: tuple[Entry, ...] = ()
    active: tuple[Entry, ...] = ()
    promoted: tuple[Entry, ...] = ()
    unpromoted: tuple[Entry, ...] = ()
    inactive: tuple[str, ...] = ()
    all_nodes: tuple[str, ...] = ()
    available: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        """The facts as the plan document carries them: [resource, node] pairs, plain names."""
        data: dict[str, object] = {"type": self.type, "operation": self.operation}
        for name in PAIR_LISTS:
            data[name] = [[e.resource, e.node] for e in getattr(self, name)]
        data["inactive"] = list(self.inactive)
        data["all"] = list(self.all_nodes)
        data["available"] = list(self.available)
        return data

    def crm_meta(self) -> dict[str, str]:
        """The CRM_meta_notify_* names and values Pacemaker's executor gives the agent (without
        the `OCF_RESKEY_CRM_meta_` prefix): space-separated lists, resources and their nodes in
        the same order, and a single space for an empty list, as Pacemaker passes it."""
        out = {
            "notify_type": self.type,
            "notify_operation": self.operation,
            "notify_key_type": self.type,
            "notify_key_operation": _DONE[self.operation] if self.type == "post" else self.operation,
        }
        lists = {
            "start": self.start,
            "stop": self.stop,
            "promote": self.promote,
            "demote": self.demote,
            "active": self.active,
            # Agents read either name: the older master/slave or promoted/unpromoted.
            "master": self.promoted,
            "promoted": self.promoted,
            "slave": self.unpromoted,
            "unpromoted": self.unpromoted,
        }
        for name, entries in lists.items():
            out[f"notify_{name}_resource"] = _words(e.resource for e in entries)
            out[f"notify_{name}_uname"] = _words(e.node for e in entries)
        out["notify_inactive_resource"] = _words(self.inactive)
        out["notify_all_uname"] = _words(self.all_nodes)
        out["notify_available_uname"] = _words(self.available)
        return out


def _words(items: Iterable[str]) -> str:
    return " ".join(items) or " "


@dataclass(frozen=True)
class NotifyClone:
    """A clone with notify=true, as the stage needs it: its instance ids, where each instance is
    active before the transition and in which role, and the nodes where the clone may run."""

    id: str
    instances: tuple[str, ...]
    active: Mapping[Entry, ActiveRole] = field(default_factory=dict)
    available: tuple[str, ...] = ()
    promotable: bool = False


@dataclass(frozen=True)
class NotifyInput:
    clones: tuple[NotifyClone, ...] = ()
    nodes: tuple[str, ...] = ()  # every node of the cluster
    reachable: frozenset[str] = frozenset()  # nodes that can run a notification now


def notify_input(spec: ClusterSpec, cluster: Cluster) -> NotifyInput:
    """The stage's input from the scheduler's working model: the notify=true clones of
    primitives, each instance where it is active now, and which nodes can be notified."""
    names = [n.name for n in cluster.nodes]
    clones: list[NotifyClone] = []
    for clone in spec.resources.clones:
        entity = cluster.entities.get(clone.id)
        if not clone.meta.notify or not isinstance(entity, CloneE):
            continue
        instances = [inst for inst in entity.instances if isinstance(inst, Rsc)]
        if len(instances) != len(entity.instances):
            continue  # a clone of a group: not notified (see the module's docstring)
        active: dict[Entry, ActiveRole] = {}
        for inst in instances:
            role: ActiveRole = "Promoted" if inst.role == "Promoted" else (
                "Unpromoted" if entity.promotable else "Started")
            for node in inst.running_on:
                active[Entry(inst.id, names[node])] = role
        # Pacemaker lists the clone's "allowed nodes", up or not, whatever their score: in a
        # symmetric cluster every node, in an opt-in one the nodes a location names for it.
        allowed = set().union(*(inst.allowed or set() for inst in instances))
        available = tuple(names) if cluster.symmetric else tuple(
            name for i, name in enumerate(names) if i in allowed)
        clones.append(NotifyClone(clone.id, tuple(i.id for i in instances), active, available,
                                  entity.promotable))
    fenced = set(cluster.fencing)
    reachable = frozenset(n.name for n in cluster.nodes
                          if n.online and not n.unclean and not n.pending and n.index not in fenced)
    return NotifyInput(tuple(clones), tuple(names), reachable)


def add_notifications(plan: Plan, given: NotifyInput) -> Plan:
    """`plan` with the notifications of every notify clone it changes (a new Plan; `plan` is
    not modified). A plan that changes no notify clone is returned as it is."""
    actions = list(plan.actions)
    edges = set(plan.edges)
    for clone in given.clones:
        _notify_clone(clone, given, plan.actions, actions, edges)
    if len(actions) == len(plan.actions):
        return plan
    return replace(plan, actions=actions, edges=sorted(edges))


def _ops_of(clone: NotifyClone, actions: Sequence[Action]) -> dict[NotifyOperation, list[Action]]:
    ours = set(clone.instances)
    ops: dict[NotifyOperation, list[Action]] = {phase: [] for phase in PHASES}
    for action in actions:
        if action.resource in ours:
            for phase in PHASES:
                if action.task == phase:
                    ops[phase].append(action)
    return ops


def _after(phase: NotifyOperation, before: Mapping[Entry, ActiveRole], ops: Sequence[Action],
           promotable: bool) -> dict[Entry, ActiveRole]:
    """Who is active in which role once the phase's operations are done."""
    after = dict(before)
    for op in ops:
        entry = Entry(op.resource or "", op.node)
        if phase == "stop":
            after.pop(entry, None)
        elif phase == "start":
            after[entry] = "Unpromoted" if promotable else "Started"
        elif phase == "promote":
            after[entry] = "Promoted"
        elif entry in after:
            after[entry] = "Unpromoted"
    return after


def _facts(clone: NotifyClone, given: NotifyInput,
           ops: Mapping[NotifyOperation, Sequence[Action]]) -> NotifyFacts:
    def entries(actions: Iterable[Action]) -> tuple[Entry, ...]:
        return tuple(sorted({Entry(a.resource or "", a.node) for a in actions}))

    def in_role(*roles: ActiveRole) -> tuple[Entry, ...]:
        return tuple(sorted(e for e, role in clone.active.items() if role in roles))

    active_ids = {e.resource for e in clone.active}
    return NotifyFacts(
        type="pre",
        operation="stop",
        start=entries(ops["start"]),
        stop=entries(ops["stop"]),
        promote=entries(ops["promote"]),
        demote=entries(ops["demote"]),
        active=in_role("Started", "Unpromoted", "Promoted"),
        promoted=in_role("Promoted"),
        unpromoted=in_role("Unpromoted"),
        inactive=tuple(sorted(i for i in clone.instances if i not in active_ids)),
        all_nodes=tuple(sorted(given.nodes)),
        available=tuple(sorted(clone.available)),
    )


def _notify_clone(clone: NotifyClone, given: NotifyInput, planned: Sequence[Action],
                  actions: list[Action], edges: set[tuple[int, int]]) -> None:
    ops = _ops_of(clone, planned)
    if not any(ops.values()):
        return
    facts = _facts(clone, given, ops)
    added: list[tuple[int, int]] = []
    notified: list[tuple[int, int]] = []
    state: Mapping[Entry, ActiveRole] = clone.active
    earlier: list[int] = []  # operations and post-notifications of the phases done before
    start = len(actions)
    for phase in PHASES:
        if not ops[phase]:
            continue
        after = _after(phase, state, ops[phase], clone.promotable)
        pre = _send(actions, "pre", phase, state, facts, given.reachable)
        post = _send(actions, "post", phase, after, facts, given.reachable)
        op_ids = [op.index for op in ops[phase]]
        added += [(p, o) for p in pre for o in op_ids]
        added += [(o, p) for o in op_ids for p in post]
        added += [(e, t) for e in earlier for t in pre + op_ids]
        earlier += op_ids + post
        state = after
        # What the plan orders after these operations (outside the clone) waits for the
        # post-notifications too: Pacemaker orders it after the clone's "notified" step.
        mine = set(op_ids)
        ours = mine | {a.index for ops_ in ops.values() for a in ops_}
        notified += [(p, b) for a, b in edges if a in mine and b not in ours and b < start
                     for p in post]
    if _acyclic(len(actions), edges | set(added) | set(notified)):
        edges.update(added + notified)
        return
    if _acyclic(len(actions), edges | set(added)):
        edges.update(added)
        return
    # The plan already orders a later phase's operation before an earlier one's (through other
    # resources' constraints): keep each phase's own pre -> operations -> post and drop the
    # ordering between phases rather than deadlock the transition.
    edges.update((a, b) for a, b in added if _same_phase(actions, a, b))


def _same_phase(actions: Sequence[Action], a: int, b: int) -> bool:
    return _phase_of(actions[a]) == _phase_of(actions[b])


def _phase_of(action: Action) -> str:
    return action.notify.operation if action.notify is not None else action.task


def _send(actions: list[Action], kind: NotifyType, phase: NotifyOperation,
          active: Mapping[Entry, ActiveRole], facts: NotifyFacts, reachable: frozenset[str]) -> list[int]:
    """Add a notification for every active instance on a node that can run it; their indexes."""
    out: list[int] = []
    for entry in sorted(active):
        if entry.node not in reachable:
            continue
        index = len(actions)
        actions.append(Action(index, "notify", entry.node, entry.resource,
                              reason=f"{kind}-{phase} notification",
                              notify=replace(facts, type=kind, operation=phase)))
        out.append(index)
    return out


def _acyclic(count: int, edges: Iterable[tuple[int, int]]) -> bool:
    succ: dict[int, list[int]] = {}
    indegree = [0] * count
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        indegree[b] += 1
    ready = [i for i in range(count) if indegree[i] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for nxt in succ.get(node, ()):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return seen == count
