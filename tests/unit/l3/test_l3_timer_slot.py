"""The speaker's timer slots: routers due within one slot share one wakeup of the loop, no timer
fires before its deadline, none later than one slot after it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.l3.speaker import TIMER_SLOT, timer_slot

# Loop times: seconds since boot, up to a few years.
times = st.floats(0, 1e8, allow_nan=False, allow_infinity=False)


@given(times)
def test_a_slot_is_never_before_its_deadline_nor_more_than_a_slot_after(deadline: float) -> None:
    slot = timer_slot(deadline)
    assert deadline <= slot <= deadline + TIMER_SLOT * (1 + 1e-6)
    assert timer_slot(slot) == slot  # a slot is its own slot: a timer armed on it stays there


@given(times, times)
def test_slots_keep_the_order_of_deadlines(d1: float, d2: float) -> None:
    lo, hi = sorted((d1, d2))
    assert timer_slot(lo) <= timer_slot(hi)


@given(times, st.floats(0, 1))
def test_deadlines_within_one_slot_share_it(deadline: float, fraction: float) -> None:
    slot = timer_slot(deadline)
    later = deadline + (slot - deadline) * fraction  # between the deadline and its slot
    assert timer_slot(later) == slot


def test_a_master_on_the_grid_stays_on_it() -> None:
    # The speaker hands the machine the slot's time: the next advert (2 s later) is a slot too.
    at = timer_slot(1234.5678)
    for _ in range(1000):
        nxt = timer_slot(at + 2.0)
        assert abs(nxt - (at + 2.0)) < 1e-6
        at = nxt
