"""The plan as it crosses the store: typed data, parsed back from the JSON the leader publishes.

The leader turns the scheduler's `hakeeper.placement.Plan` into a `PlanDoc` (adding the epoch,
its name and the time) and writes `PlanDoc.to_json()` to the `plan` key; every agent parses that
document back with `parse`, so tasks and roles are checked once, here, and are Literals from
then on. The JSON shape is the one the plan always had (`hakeeper status`, `hakeeper events` and
older agents read it):

  {"epoch": 7, "leader": "n1", "created": 1700000000.0,
   "actions": [{"id": 0, "task": "fence", "node": "n3", "reason": "..."},
               {"id": 1, "task": "stop", "node": "n3", "resource": "web", "pseudo": true},
               {"id": 2, "task": "start", "node": "n1", "resource": "web"}],
   "orderings": [[0, 1], [1, 2]],
   "placement": {"web": ["n1"]}, "current": {"web": ["n3"]}, "roles": {"web": "Started"},
   "summary": ["Move web (n3 -> n1)"]}

A notify action (a clone with notify=true, placement/notify.py) names the instance it notifies and
carries the notification's facts: lists of [resource, node] pairs, and plain names:

  {"id": 3, "task": "notify", "node": "n2", "resource": "rmq:1", "reason": "post-stop notification",
   "notify": {"type": "post", "operation": "stop", "stop": [["rmq:0", "n1"]], "start": [],
              "promote": [], "demote": [], "active": [["rmq:0", "n1"], ["rmq:1", "n2"]],
              "promoted": [], "unpromoted": [], "inactive": ["rmq:2"], "all": ["n1", "n2", "n3"],
              "available": ["n1", "n2"]}}

A document that does not have this shape (a hand edit, a bug, a half-written value) is rejected
with a `PlanError` that names the field: the leader logs it and publishes a new plan over it,
and no node acts on it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from hakeeper.placement import Plan
from hakeeper.placement.notify import NOTIFY_TYPES, PAIR_LISTS, PHASES, Entry, NotifyFacts
from hakeeper.spec.model import Role

Operation = Literal["fence", "stop", "start", "promote", "demote"]
# A notify action tells a notify=true clone's instances of the operations (placement/notify.py).
Task = Literal[Operation, "notify"]
TASKS: tuple[Operation, ...] = get_args(Operation)  # the operations
ALL_TASKS: tuple[Task, ...] = (*TASKS, "notify")
ROLES: tuple[Role, ...] = get_args(Role)
# What a node's agent runs; fencing is the leader's.
NODE_TASKS: tuple[Task, ...] = ("stop", "demote", "start", "promote", "notify")
# (task, resource or "", node): one real step, as `hakeeper status` lists what is outstanding.
Work = tuple[str, str, str]


class PlanError(ValueError):
    """The plan document is not a plan: the message names the field."""


@dataclass(frozen=True)
class PlanAction:
    """One step: fence a node, or stop/start/promote/demote a resource on one, or notify a clone's
    instance of them. `resource` is a primitive id or a clone instance `child:N` (None for a
    fence); `pseudo` marks a stop that fencing implies (nothing runs it: the node is gone);
    `notify` is a notification's facts (a notify action has them, no other action does)."""

    id: int
    task: Task
    node: str
    resource: str | None = None
    reason: str | None = None
    pseudo: bool = False
    notify: NotifyFacts | None = None

    def __post_init__(self) -> None:
        # An empty reason is no reason: the JSON leaves both out.
        if self.reason == "":
            object.__setattr__(self, "reason", None)

    @property
    def work(self) -> Work:
        return (self.task, self.resource or "", self.node)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "task": self.task, "node": self.node}
        if self.resource is not None:
            data["resource"] = self.resource
        if self.reason:
            data["reason"] = self.reason
        if self.pseudo:
            data["pseudo"] = True
        if self.notify is not None:
            data["notify"] = self.notify.as_json()
        return data


@dataclass(frozen=True)
class PlanDoc:
    epoch: int
    leader: str
    created: float
    actions: tuple[PlanAction, ...] = ()
    edges: tuple[tuple[int, int], ...] = ()  # (before, after) action ids
    placement: dict[str, list[str]] = field(default_factory=dict)
    current: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    summary: tuple[str, ...] = ()

    @classmethod
    def of(cls, plan: Plan, epoch: int, leader: str, now: float) -> PlanDoc:
        """The document the leader publishes for the scheduler's `plan`."""
        return from_json(
            {**plan.as_json(), "epoch": epoch, "leader": leader, "created": now}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": [a.to_json() for a in self.actions],
            "orderings": [list(e) for e in self.edges],
            "placement": {k: list(v) for k, v in self.placement.items()},
            "current": {k: list(v) for k, v in self.current.items()},
            "roles": dict(self.roles),
            "summary": list(self.summary),
            "epoch": self.epoch,
            "leader": self.leader,
            "created": self.created,
        }

    # ----- progress, given the done markers {action id: ok} of this epoch -----

    def work(self) -> set[Work]:
        """The real steps (pseudo steps happen by themselves). Notifications are not work of their
        own but consequences of it: a new plan with the same operations is the same work, so the
        leader lets the current plan run on, its post-notifications included, instead of
        publishing the same operations again with notifications that repeat what was said."""
        return {a.work for a in self.actions if not a.pseudo and a.task != "notify"}

    def remaining(self, done: Mapping[int, bool]) -> set[Work]:
        return {a.work for a in self.actions if not a.pseudo and a.task != "notify" and a.id not in done}

    def _preds(self) -> dict[int, list[int]]:
        preds: dict[int, list[int]] = {}
        for a, b in self.edges:
            preds.setdefault(b, []).append(a)
        return preds

    def completed(self, done: Mapping[int, bool]) -> set[int]:
        """Actions that count as finished: done markers with ok, plus pseudo actions whose
        predecessors are all finished (computed to a fixed point, in plan order)."""
        preds = self._preds()
        finished = {i for i, ok in done.items() if ok}
        changed = True
        while changed:
            changed = False
            for a in self.actions:
                if a.pseudo and a.id not in finished and all(p in finished for p in preds.get(a.id, [])):
                    finished.add(a.id)
                    changed = True
        return finished

    def ready(self, done: Mapping[int, bool], node: str, tasks: Collection[str] = NODE_TASKS) -> list[PlanAction]:
        """`node`'s actions of the given tasks whose predecessors have all finished, in plan order.
        A failed predecessor blocks: the leader replans."""
        finished = self.completed(done)
        preds = self._preds()
        return [
            a
            for a in self.actions
            if a.node == node
            and a.task in tasks
            and not a.pseudo
            and a.id not in done
            and all(p in finished for p in preds.get(a.id, []))
        ]

    def fences(self, done: Mapping[int, bool]) -> list[PlanAction]:
        """The fence actions not done yet."""
        return [a for a in self.actions if a.task == "fence" and a.id not in done]


# ----- parsing -----


def _want(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise PlanError(f"plan: {where}: {what}")


def _str(value: Any, where: str) -> str:
    _want(isinstance(value, str), where, f"expected a string, got {value!r:.60}")
    return str(value)


def _int(value: Any, where: str) -> int:
    _want(isinstance(value, int) and not isinstance(value, bool), where, f"expected an integer, got {value!r:.60}")
    return int(value)


def _nodes_map(value: Any, where: str) -> dict[str, list[str]]:
    _want(isinstance(value, dict), where, "expected an object")
    out: dict[str, list[str]] = {}
    for k, v in value.items():
        _want(isinstance(v, list), f"{where}.{k}", "expected a list of node names")
        out[k] = [_str(n, f"{where}.{k}[{i}]") for i, n in enumerate(v)]
    return out


def _names(value: Any, where: str) -> tuple[str, ...]:
    _want(isinstance(value, list), where, "expected a list of names")
    return tuple(_str(n, f"{where}[{i}]") for i, n in enumerate(value))


def _entries(value: Any, where: str) -> tuple[Entry, ...]:
    _want(isinstance(value, list), where, "expected a list of [resource, node] pairs")
    out = []
    for i, pair in enumerate(value):
        _want(isinstance(pair, list) and len(pair) == 2, f"{where}[{i}]", "expected [resource, node]")
        out.append(Entry(_str(pair[0], f"{where}[{i}][0]"), _str(pair[1], f"{where}[{i}][1]")))
    return tuple(out)


def notify_facts(doc: Any, where: str) -> NotifyFacts:
    """A notify action's facts (NotifyFacts.as_json's shape); PlanError names the field."""
    _want(isinstance(doc, dict), where, "expected an object")
    kind = doc.get("type")
    _want(kind in NOTIFY_TYPES, f"{where}.type", f"{kind!r:.40} is not one of {', '.join(NOTIFY_TYPES)}")
    operation = doc.get("operation")
    _want(operation in PHASES, f"{where}.operation", f"{operation!r:.40} is not one of {', '.join(PHASES)}")
    pairs = {name: _entries(doc.get(name, []), f"{where}.{name}") for name in PAIR_LISTS}
    return NotifyFacts(
        type=kind,
        operation=operation,
        start=pairs["start"],
        stop=pairs["stop"],
        promote=pairs["promote"],
        demote=pairs["demote"],
        active=pairs["active"],
        promoted=pairs["promoted"],
        unpromoted=pairs["unpromoted"],
        inactive=_names(doc.get("inactive", []), f"{where}.inactive"),
        all_nodes=_names(doc.get("all", []), f"{where}.all"),
        available=_names(doc.get("available", []), f"{where}.available"),
    )


def action_from_json(doc: Any, where: str = "action") -> PlanAction:
    """One action of a plan document; PlanError names the field that is wrong."""
    _want(isinstance(doc, dict), where, "expected an object")
    task = doc.get("task")
    _want(task in ALL_TASKS, f"{where}.task", f"{task!r:.40} is not one of {', '.join(ALL_TASKS)}")
    resource = doc.get("resource")
    reason = doc.get("reason")
    pseudo = doc.get("pseudo", False)
    _want(isinstance(pseudo, bool), f"{where}.pseudo", "expected true or false")
    raw_notify = doc.get("notify")
    if task == "notify":
        _want(raw_notify is not None, f"{where}.notify", "a notify action needs its facts")
        _want(resource is not None, f"{where}.resource", "a notify action names the instance it notifies")
    else:
        _want(raw_notify is None, f"{where}.notify", f"only a notify action has notify facts, not a {task}")
    return PlanAction(
        id=_int(doc.get("id"), f"{where}.id"),
        task=task,
        node=_str(doc.get("node"), f"{where}.node"),
        resource=None if resource is None else _str(resource, f"{where}.resource"),
        reason=None if reason is None else _str(reason, f"{where}.reason"),
        pseudo=pseudo,
        notify=None if raw_notify is None else notify_facts(raw_notify, f"{where}.notify"),
    )


def from_json(doc: Any) -> PlanDoc:
    """The plan a decoded document describes; PlanError names the first field that is wrong.
    `epoch`, `leader` and `created` may be missing (0, "", 0.0); the orderings are read under
    `orderings`, or `edges` as very old plans called them."""
    _want(isinstance(doc, dict), "document", "expected a JSON object")
    epoch = _int(doc.get("epoch", 0), "epoch")
    _want(epoch >= 0, "epoch", "must not be negative")
    created = doc.get("created", 0.0)
    _want(isinstance(created, (int, float)) and not isinstance(created, bool), "created", "expected a number")
    raw_actions = doc.get("actions", [])
    _want(isinstance(raw_actions, list), "actions", "expected a list")
    actions = tuple(action_from_json(a, f"actions[{i}]") for i, a in enumerate(raw_actions))
    ids = [a.id for a in actions]
    _want(len(set(ids)) == len(ids), "actions", "two actions have the same id")
    name = "orderings" if "orderings" in doc else "edges"
    raw_edges = doc.get(name, [])
    _want(isinstance(raw_edges, list), name, "expected a list of [before, after] pairs")
    edges = []
    for i, e in enumerate(raw_edges):
        _want(isinstance(e, (list, tuple)) and len(e) == 2, f"{name}[{i}]", "expected [before, after]")
        edges.append((_int(e[0], f"{name}[{i}][0]"), _int(e[1], f"{name}[{i}][1]")))
    roles = doc.get("roles", {})
    _want(isinstance(roles, dict), "roles", "expected an object")
    for k, v in roles.items():
        _want(v in ROLES, f"roles.{k}", f"{v!r:.40} is not one of {', '.join(ROLES)}")
    summary = doc.get("summary", [])
    _want(isinstance(summary, list), "summary", "expected a list")
    return PlanDoc(
        epoch=epoch,
        leader=_str(doc.get("leader", ""), "leader"),
        created=float(created),
        actions=actions,
        edges=tuple(edges),
        placement=_nodes_map(doc.get("placement", {}), "placement"),
        current=_nodes_map(doc.get("current", {}), "current"),
        roles=dict(roles),
        summary=tuple(_str(s, f"summary[{i}]") for i, s in enumerate(summary)),
    )


def parse(raw: bytes) -> PlanDoc:
    """The plan stored as `raw` (the `plan` key's value)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlanError(f"plan: not JSON ({exc})") from None
    return from_json(doc)


def encode(doc: PlanDoc) -> bytes:
    """The bytes to store (the same encoding as every other document under the prefix)."""
    return json.dumps(doc.to_json(), sort_keys=True, separators=(",", ":")).encode()
