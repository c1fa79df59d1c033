"""Store timeouts that do not count the time this process could not run.

On a starved machine (a load far above the number of cores) a process can wait a second and more
for a CPU. An answer that arrives in that second cannot be read, so a wall-clock deadline runs out
although the store answered: the client then takes a slow machine for a dead store member, drops a
healthy connection, fails over (a new TLS handshake, which costs the starved machine more CPU) and
the agent ends up declaring the store lost and stopping its resources (seen in the soak at load 60).

`StallClock` measures how late its event loop runs: a timer that asks to run every TICK seconds
notes how much later than asked it ran, and adds that to `stalled`. `patient()` then waits for
`timeout` seconds of time the loop was able to run (wall time minus the stalls it measured), never
more than `cap` seconds of wall time. A process that runs on time sees exactly the old timeout, so
a dead or cut-off store member is detected as fast as before; a starved one gets back the time it
could not use, up to the cap, which bounds detection on any machine.

The pure part (`Budget`) is the arithmetic: time in, the time left out.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from hakeeper.coord.store import abandon

T = TypeVar("T")

TICK = 0.05  # seconds between the clock's timer runs: the resolution of the stalls it sees
# The cap of a request's wait, as a multiple of its timeout, when the caller does not give one:
# time given back to a starved process never stretches a timeout more than this.
CAP_FACTOR = 4.0


@dataclass(frozen=True)
class Budget:
    """One wait: `timeout` seconds of running time from `start`, at most `cap` seconds of wall
    time; `stalled_at_start` is the clock's stall count when it began."""

    start: float
    stalled_at_start: float
    timeout: float
    cap: float

    def left(self, now: float, stalled: float) -> float:
        """Seconds still to wait at wall time `now`, with the clock's stall count `stalled`
        (<= 0: the wait is over)."""
        ran = (now - self.start) - (stalled - self.stalled_at_start)
        return min(self.timeout - ran, self.start + self.cap - now)


class StallClock:
    """How long the event loop was kept from running (seconds, since the clock started)."""

    _clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StallClock] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float = TICK) -> None:
        self.loop = loop
        self.tick = tick
        self.stalled = 0.0
        self.longest = 0.0  # the longest single stall seen (for logs and tests)
        self._due = loop.time() + tick
        # A plain timer, not a task: nothing to cancel when the loop closes.
        loop.call_at(self._due, self._run)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop | None = None) -> StallClock:
        """The clock of `loop` (the running loop by default), started on first use."""
        loop = loop or asyncio.get_running_loop()
        clock = cls._clocks.get(loop)
        if clock is None:
            clock = cls._clocks[loop] = cls(loop)
        return clock

    def _run(self) -> None:
        now = self.loop.time()
        late = now - self._due
        if late > 0:
            self.stalled += late
            self.longest = max(self.longest, late)
        self._due = now + self.tick
        if not self.loop.is_closed():
            self.loop.call_at(self._due, self._run)

    def now(self) -> float:
        """The stall count up to this moment, the current stall included: the timer may not have
        run yet after a stall (a due timer of a waiter can run before it in the same round)."""
        return self.stalled + max(0.0, self.loop.time() - self._due)

    def budget(self, timeout: float, cap: float | None = None) -> Budget:
        return Budget(self.loop.time(), self.now(), timeout, cap if cap is not None else timeout * CAP_FACTOR)


async def patient(aw: Awaitable[T], timeout: float, cap: float | None = None) -> T:
    """Like `hakeeper.coord.store.bounded`, but the timeout counts only the time this process ran
    (see the module's text); `cap` (default CAP_FACTOR times the timeout) bounds the wall time.
    Raises TimeoutError when the budget runs out; the call is then abandoned (cancelled)."""
    clock = StallClock.of()
    budget = clock.budget(timeout, cap)
    task = asyncio.ensure_future(aw)
    try:
        while (left := budget.left(clock.loop.time(), clock.now())) > 0:
            done, _ = await asyncio.wait({task}, timeout=left)
            if done:
                return task.result()
    except BaseException:
        abandon(task)  # the caller was cancelled: the call goes too (see store.bounded)
        raise
    if task.done():  # it finished as the budget ran out: an answer is an answer
        return task.result()
    abandon(task)
    raise TimeoutError(f"no answer within {timeout:g}s")
