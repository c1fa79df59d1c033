"""The engine's server view kept current by changes-since listings: merged with what it knew, it
says what a full listing asked at the same moment would say."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as hs

from hakeeper.instanceha import serverview as sv
from hakeeper.instanceha.recovery import NovaInstance

IDS = [f"vm{i}" for i in range(6)]
STATES = [("c1", "ACTIVE", None), ("c1", "REBUILD", "rebuilding"), ("c1", "ACTIVE", None), ("c2", "ACTIVE", None)]


def row(iid: str, state: int) -> NovaInstance:
    if state < 0:
        return NovaInstance(iid, iid, "c2", "DELETED", None)
    host, status, task = STATES[state]
    return NovaInstance(iid, iid, host, status, task)


class Timeline:
    """Nova as changes-since sees it: each server's rows with the time each was saved."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[float, NovaInstance]] = {iid: (0.0, row(iid, 0)) for iid in IDS}

    def save(self, at: float, iid: str, state: int) -> None:
        self.saved[iid] = (at, row(iid, state))

    def listing(self, since: float | None) -> dict[str, NovaInstance]:
        # A full listing leaves deleted servers out; changes-since returns them as DELETED.
        return {
            iid: r
            for iid, (at, r) in self.saved.items()
            if (since is None and r.status != "DELETED") or (since is not None and at >= since)
        }

    def truth(self, ids: frozenset[str]) -> dict[str, NovaInstance]:
        return {iid: r for iid, (_, r) in self.saved.items() if iid in ids and r.status != "DELETED"}


steps = hs.lists(
    hs.one_of(
        hs.tuples(hs.just("save"), hs.sampled_from(IDS), hs.integers(-1, len(STATES) - 1)),
        hs.tuples(hs.just("list"), hs.integers(2, len(IDS)), hs.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps, hs.floats(0.0, 3.0), hs.floats(1.0, 20.0))
def test_the_merged_view_equals_a_full_listing_asked_at_the_same_moment(
    program: list[tuple[str, object, int]], margin: float, full_every: float
) -> None:
    nova = Timeline()
    view: sv.ServerView | None = None
    now = 100.0
    for kind, arg, state in program:
        now += 0.7
        if kind == "save":
            nova.save(now, str(arg), state)
            continue
        ids = frozenset(IDS[: int(str(arg))])
        since = sv.since(view, ids, now, margin, full_every)
        view = sv.merged(view, ids, nova.listing(since), now, since)
        assert sv.of(view, ids) == nova.truth(ids)
        assert view.asked == now


def test_a_new_instance_or_an_old_full_listing_asks_for_everything() -> None:
    ids = frozenset({"vm0"})
    view = sv.merged(None, ids, {"vm0": row("vm0", 0)}, 100.0, None)
    assert sv.since(view, ids, 101.0) == 100.0 - sv.MARGIN
    assert sv.since(view, ids | {"vm1"}, 101.0) is None  # vm1 was never listed in full
    assert sv.since(view, ids, 100.0 + sv.FULL_EVERY) is None
    later = sv.merged(view, ids, {"vm0": row("vm0", 3)}, 105.0, 95.0)
    assert later.rows["vm0"].host == "c2" and later.full_asked == 100.0 and later.asked == 105.0
