"""The simulated clock and its event queue: a heap of timed callbacks, ties broken by insertion order.

Nothing here reads the wall clock; time moves only when the next event is taken off the heap, so a
run is a pure function of its seed and configuration.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        # (time, insertion number, callback, label): plain tuples compare fastest.
        self._heap: list[tuple[float, int, Callable[[], None], str]] = []
        self._seq = 0
        self.steps = 0

    def at(self, when: float, fn: Callable[[], None], label: str = "") -> None:
        """Run `fn` at simulated time `when` (never in the past)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self.now), self._seq, fn, label))

    def after(self, delay: float, fn: Callable[[], None], label: str = "") -> None:
        self.at(self.now + delay, fn, label)

    def step(self) -> bool:
        """Take the next event off the heap, move the clock to it and run it."""
        if not self._heap:
            return False
        self.now, _, fn, _ = heapq.heappop(self._heap)
        self.steps += 1
        fn()
        return True

    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None
