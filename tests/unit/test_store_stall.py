"""Store timeouts that count only the time the process ran (hakeeper.coord.stall).

The loop is starved for real here: a callback blocks it with time.sleep, as a machine whose load
is far above its cores keeps a process off the CPU. An answer that comes soon after such a stall
is taken (a wall-clock bound gives up on it), a store that never answers is still given up on in
its timeout when nothing stalls, and never later than the cap however long the stalls are."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.coord.stall import Budget, StallClock, patient
from hakeeper.coord.store import bounded


async def answer_at(loop: asyncio.AbstractEventLoop, at: float) -> str:
    """An answer that arrives at loop time `at` and, as a gRPC reply, takes a few loop rounds."""
    await asyncio.sleep(max(0.0, at - loop.time()))
    for _ in range(3):
        await asyncio.sleep(0)
    return "answer"


def stall(loop: asyncio.AbstractEventLoop, after: float, seconds: float) -> None:
    loop.call_later(after, time.sleep, seconds)


async def warmed() -> asyncio.AbstractEventLoop:
    loop = asyncio.get_running_loop()
    StallClock.of(loop)
    await asyncio.sleep(0.06)  # the clock's timer is running
    return loop


def test_an_answer_after_a_stall_is_taken_where_a_wall_clock_bound_gives_up() -> None:
    async def main() -> tuple[str, str]:
        loop = await warmed()
        stall(loop, 0.05, 0.8)  # starved from 0.05 s to 0.85 s; the answer comes at 1.0 s
        t0 = loop.time()
        got = await patient(answer_at(loop, t0 + 1.0), timeout=0.5, cap=2.0)
        t1 = loop.time()
        stall(loop, 0.05, 0.8)
        try:
            await bounded(answer_at(loop, t1 + 1.0), 0.5)
            plain = "answer"
        except TimeoutError:
            plain = "timed out"
        return got, plain

    assert asyncio.run(main()) == ("answer", "timed out")


def test_a_silent_store_is_given_up_on_in_its_timeout_when_nothing_stalls() -> None:
    async def main() -> float:
        loop = await warmed()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await patient(asyncio.Event().wait(), timeout=0.5, cap=2.0)
        return loop.time() - t0

    took = asyncio.run(main())
    assert 0.5 <= took < 0.7, took


def test_stalls_never_stretch_a_wait_past_its_cap() -> None:
    async def main() -> float:
        loop = await warmed()
        for i in range(40):  # starved 0.1 s of every 0.12 s, for 4.8 s
            stall(loop, 0.01 + i * 0.12, 0.1)
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await patient(asyncio.Event().wait(), timeout=0.5, cap=1.5)
        return loop.time() - t0

    took = asyncio.run(main())
    # Stalls are given back (a plain 0.5 s timeout would end at 0.5 s), though not all of each:
    # the clock sees a stall from its timer's due time on, so it may count up to a tick less
    # per stall (it errs towards the plain timeout); and never more than one stall past the cap.
    assert 0.8 <= took < 1.5 + 0.25, took


def test_a_cancelled_caller_abandons_the_call() -> None:
    async def main() -> bool:
        inner = asyncio.ensure_future(asyncio.Event().wait())
        outer = asyncio.ensure_future(patient(inner, timeout=5.0))
        await asyncio.sleep(0.05)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        await asyncio.sleep(0)
        return inner.cancelled()

    assert asyncio.run(main())


@given(
    timeout=st.floats(0.1, 5.0),
    cap_factor=st.floats(1.0, 6.0),
    elapsed=st.floats(0.0, 40.0),
    stalled_share=st.floats(0.0, 1.0),
)
def test_the_budget_counts_running_time_and_never_passes_the_cap(
    timeout: float, cap_factor: float, elapsed: float, stalled_share: float
) -> None:
    cap = timeout * cap_factor
    b = Budget(start=100.0, stalled_at_start=7.0, timeout=timeout, cap=cap)
    stalled = elapsed * stalled_share
    left = b.left(100.0 + elapsed, 7.0 + stalled)
    ran = elapsed - stalled
    assert left <= cap - elapsed + 1e-9  # never beyond the cap
    assert left <= timeout - ran + 1e-9  # never more than the running time left
    if stalled == 0.0:
        assert left == pytest.approx(min(timeout, cap) - elapsed)  # a process that runs: the plain timeout
    if ran < timeout and elapsed < cap:
        assert left > 0  # stalls are given back while the cap allows
