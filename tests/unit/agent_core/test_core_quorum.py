"""The quorum rule after a stall of the agent's own process (core/quorum.py), driven by hand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as stt

from hakeeper.agent.core.quorum import STALL, QuorumWatch

TTL = 2.0
MARGIN = TTL * 0.25
TICK = 0.05


def healthy(now: float, refreshed: float, lease: int) -> bool:
    """As LeaseKeeper.healthy: a lease refreshed less than 75% of the TTL ago."""
    return lease != 0 and now - refreshed < TTL - MARGIN


def test_silence_without_a_stall_is_a_lost_store_at_once() -> None:
    watch = QuorumWatch(MARGIN)
    now, refreshed = 0.0, 0.0
    while healthy(now, refreshed, 1):
        assert watch.check(now, True, 1, refreshed) == "healthy"
        now += TICK
    assert watch.check(now, False, 1, refreshed) == "lost"


def test_after_a_stall_the_keeper_gets_the_margin_to_refresh() -> None:
    watch = QuorumWatch(MARGIN)
    assert watch.check(0.0, True, 1, 0.0) == "healthy"
    # The process did not run for 1.8 s: the lease looks silent, but it is our own silence.
    assert watch.check(1.8, healthy(1.8, 0.0, 1), 1, 0.0) == "wait"
    assert watch.check(1.8 + MARGIN / 2, False, 1, 0.0) == "wait"
    # The keeper's refresh came back (sent after the stall): healthy again, nothing stopped.
    assert watch.check(1.8 + MARGIN / 2 + TICK, True, 1, 1.81) == "healthy"


def test_after_a_stall_no_refresh_within_the_margin_is_a_lost_store() -> None:
    watch = QuorumWatch(MARGIN)
    watch.check(0.0, True, 1, 0.0)
    now = 1.8
    while now < 1.8 + MARGIN - TICK / 2:
        assert watch.check(now, False, 1, 0.0) == "wait"
        now += TICK
    assert watch.check(now + TICK, False, 1, 0.0) == "lost"


def test_a_lease_that_expired_during_the_stall_is_lost_at_once() -> None:
    """The keeper found its lease expired and was granted another: the old incarnation is gone
    (another node may start its resources), so the stop must not wait."""
    watch = QuorumWatch(MARGIN)
    watch.check(0.0, True, 1, 0.0)
    assert watch.check(2.5, False, 1, 0.0) == "wait"
    assert watch.check(2.5 + TICK, False, 0, 0.0) == "lost"  # expired: no lease
    watch = QuorumWatch(MARGIN)
    watch.check(0.0, True, 1, 0.0)
    assert watch.check(2.5, False, 2, 0.0) == "lost"  # already a new lease when it resumed: lost


@given(
    gaps=stt.lists(stt.floats(min_value=0.01, max_value=3.0), min_size=1, max_size=60),
    refresh_every=stt.floats(min_value=0.1, max_value=2.0),
)
def test_never_waits_longer_than_the_margin_after_the_last_stall(gaps: list[float], refresh_every: float) -> None:
    """Whatever the timing, a silent lease is declared lost no later than `margin` after the
    process last resumed; without any stall the verdict is exactly the old rule's."""
    watch = QuorumWatch(MARGIN)
    now, refreshed, resumed = 0.0, 0.0, float("-inf")
    watch.check(now, True, 1, refreshed)
    for gap in gaps:
        before, now = now, now + gap
        stalled = now - before > STALL  # as the watch measures it (floats: not always `gap`)
        if stalled:
            resumed = now
        ok = healthy(now, refreshed, 1)
        verdict = watch.check(now, ok, 1, refreshed)
        if ok:
            assert verdict == "healthy"
        elif now - resumed >= MARGIN:
            assert verdict == "lost"
        # The keeper refreshes on its own schedule, but only while the process runs.
        if not stalled and now - refreshed >= refresh_every:
            refreshed = now
