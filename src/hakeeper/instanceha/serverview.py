"""What the engine knows of Nova's servers between rounds, pure: a full listing, kept current by
listings of only what changed since (Nova's `changes-since`).

A full listing of every server is the engine's costliest call: seconds for a hundred servers on a
loaded controller, served by the API threads that also take the evacuations. Only the instances
Nova is working on change while a recovery runs, so a round asks Nova for the servers updated
since its last listing (less a margin for the clocks of Nova's services and this node, and for
the listing's own time) and merges them into what it knew. A row Nova did not return has not
been updated since, so it still says what it said: the merged view is as current as the
newest listing. A full listing comes back every FULL_EVERY seconds, and whenever the engine
needs instances the last full listing was not asked for (a new recovery).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hakeeper.instanceha.recovery import NovaInstance

FULL_EVERY = 30.0  # s between full listings while changes-since listings serve the rounds
# Nova stamps `updated_at` with the clock of the service that saved the instance (the target
# compute, the conductor); the engine asks with its own. The margin covers their difference and
# the time a listing takes; rows returned twice cost nothing.
MARGIN = 10.0  # s
GONE = frozenset({"DELETED"})  # a changes-since listing also returns deleted servers


@dataclass(frozen=True)
class ServerView:
    rows: Mapping[str, NovaInstance]  # the instances covered, as the newest listing left them
    covers: frozenset[str]  # the instances the last full listing was asked for
    asked: float  # wall time the newest listing (full or not) was asked
    full_asked: float  # wall time the last full listing was asked


def since(
    view: ServerView | None, ids: frozenset[str], now: float, margin: float = MARGIN, full_every: float = FULL_EVERY
) -> float | None:
    """The `changes-since` time for this round's listing, or None for a full listing."""
    if view is None or not ids <= view.covers or now - view.full_asked >= full_every:
        return None
    return view.asked - margin


def merged(
    view: ServerView | None, ids: frozenset[str], rows: Mapping[str, NovaInstance], asked: float, since: float | None
) -> ServerView:
    """The view after a listing asked at `asked`: a full one (since None) replaces the rows, a
    changes-since one updates them. The rows kept are those of the instances the last full
    listing was asked for; `of` picks a round's."""
    if since is None or view is None:
        kept = {iid: row for iid, row in rows.items() if iid in ids and row.status not in GONE}
        return ServerView(kept, ids, asked, asked)
    # Rows of covered instances this round did not ask for stay: a later round may ask again.
    updated = dict(view.rows)
    for iid, row in rows.items():
        if iid not in view.covers:
            continue
        if row.status in GONE:
            updated.pop(iid, None)
        else:
            updated[iid] = row
    return ServerView(updated, view.covers, asked, view.full_asked)


def of(view: ServerView, ids: frozenset[str]) -> dict[str, NovaInstance]:
    """The rows of these instances (those Nova still has)."""
    return {iid: row for iid, row in view.rows.items() if iid in ids}
