"""Which network nodes are lost, and who re-places their routers: pure, time passed in.

Every l3-agent rewrites its report in the store at least every half advert interval (see
hosting.py). A node whose report has not changed for `lost_after` seconds, as seen by the one
looking, is lost; the routers that had a replica there get one on another node (the scheduler's
rule), so redundancy comes back by itself. A lost node whose report moves again is back, and may
take replicas again.

Liveness is judged from the store's revisions of each report and the observer's own monotonic
clock, not from the wall-clock time inside the reports: agents on different hosts may disagree
about the time, never about whether a key changed.

Only one agent decides: the alive node with the lowest name (the controller). Its decision is a
compare-and-set of the routers document, so two agents that both believe they are the controller
for a moment cannot write conflicting schedules; and the decision is deterministic from the
`down` set, so equal views give equal schedules.

A node that has never reported is not declared lost (it may simply not have started yet; its
routers are still placed on it), and an observer that has just started declares nothing lost
until it has watched for `lost_after` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass
class Liveness:
    """What one observer has seen of each node's report: its store revision and, by the
    observer's monotonic clock, when that revision last changed."""

    lost_after: float
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # node -> (revision, changed at)
    moved: set[str] = field(default_factory=set)  # nodes whose report changed while watched

    def observe(self, revisions: Mapping[str, int], now: float) -> None:
        """The reports' revisions as read now (a node without a report is absent)."""
        for node, rev in revisions.items():
            before = self.seen.get(node)
            if before is None or before[0] != rev:
                self.seen[node] = (rev, now)
                if before is not None:
                    self.moved.add(node)

    def down(self, members: Iterable[str], previous_down: Iterable[str], now: float) -> tuple[str, ...]:
        """The members lost now. A node already down stays down until this observer has seen its
        report move (an observer that has just started must not bring a dead node back because
        it has not watched it for long); any other node is down once its report has not moved
        for `lost_after` (a node that has never reported is not lost: it may not have started)."""
        was = set(previous_down)
        out = []
        for node in members:
            seen = self.seen.get(node)
            if node in was:
                if seen is None or node not in self.moved or now - seen[1] > self.lost_after:
                    out.append(node)
            elif seen is not None and now - seen[1] > self.lost_after:
                out.append(node)
        return tuple(sorted(out))


def controller(members: Iterable[str], down: Iterable[str], reporting: Iterable[str]) -> str | None:
    """The node that writes re-placements: the lowest-named member that reports and is not down."""
    gone = set(down)
    candidates = sorted(set(members) & set(reporting) - gone)
    return candidates[0] if candidates else None
