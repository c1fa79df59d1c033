"""What the scheduler decides: the placement, the actions, their ordering, and why.

A Plan is plain data (frozen dataclasses): easy to compare in tests, to print, and to serialise as
JSON for `hakeeper simulate --json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hakeeper.placement.notify import NotifyFacts


@dataclass(frozen=True)
class Action:
    """One step of the transition: fence a node, or stop/start/promote/demote a resource on one,
    or notify a clone's instance of them (placement/notify.py).

    `resource` is a primitive id or a clone instance `child:N`; None for a fence. `pseudo` marks a
    stop that fencing implies (nothing runs it: the node is gone). `notify` holds a
    notification's facts (for task notify only).
    """

    index: int
    task: str  # fence, stop, start, promote, demote, notify
    node: str
    resource: str | None = None
    reason: str | None = None
    pseudo: bool = False
    notify: NotifyFacts | None = None

    @property
    def key(self) -> str:
        if self.resource is None:
            return f"{self.task} {self.node}"
        return f"{self.task} {self.resource} on {self.node}"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.index, "task": self.task, "node": self.node}
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
class Contribution:
    """One thing that moved a resource's score on a node (for `hakeeper explain`)."""

    node: str
    score: int
    why: str


@dataclass
class Plan:
    # Where each resource runs after the transition (primitives by id, clone instances child:N).
    placement: dict[str, list[str]] = field(default_factory=dict)
    # Where each resource runs now, in the same naming.
    current: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # next role of each placed resource
    actions: list[Action] = field(default_factory=list)
    # (before, after): action index `before` must complete before action index `after` starts.
    edges: list[tuple[int, int]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # crm_simulate's Transition Summary lines
    scores: dict[str, dict[str, int]] = field(default_factory=dict)  # final allocation scores
    contributions: dict[str, list[Contribution]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # why each resource went where it did

    def actions_of(self, resource: str) -> list[Action]:
        return [a for a in self.actions if a.resource == resource]

    def find(self, task: str, resource: str | None, node: str | None = None) -> Action | None:
        for action in self.actions:
            if action.task == task and action.resource == resource and (
                    node is None or action.node == node):
                return action
        return None

    def before(self, first: Action, then: Action) -> bool:
        """Whether `first` is ordered (directly or transitively) before `then`."""
        succ: dict[int, list[int]] = {}
        for a, b in self.edges:
            succ.setdefault(a, []).append(b)
        seen, todo = set(), [first.index]
        while todo:
            cur = todo.pop()
            for nxt in succ.get(cur, ()):
                if nxt == then.index:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    def as_json(self) -> dict[str, Any]:
        return {
            "actions": [a.as_json() for a in self.actions],
            "orderings": [list(e) for e in self.edges],
            "placement": self.placement,
            "current": self.current,
            "roles": self.roles,
            "summary": self.summary,
        }
