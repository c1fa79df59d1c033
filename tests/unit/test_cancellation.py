"""Stopping the agent's loops: a cancellation that arrives as the awaited event is set must not
be lost (CPython 3.11's asyncio.wait_for loses it), and the agent's teardown must end every task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hakeeper.agent.daemon import cancel_all
from hakeeper.coord.store import wait_event


async def _cancel_as_the_event_fires(wait: Callable[[asyncio.Event], Awaitable[object]]) -> asyncio.Task[None]:
    """A loop waiting on an event; the event is set and the loop cancelled in the same instant."""
    ev = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait(ev)
            ev.clear()

    task = asyncio.create_task(loop())
    for _ in range(3):
        await asyncio.sleep(0)
    ev.set()
    task.cancel()
    await asyncio.wait([task], timeout=0.2)
    return task


def test_wait_event_never_loses_a_cancellation() -> None:
    async def main() -> None:
        for _ in range(50):
            task = await _cancel_as_the_event_fires(lambda ev: wait_event(ev, 10))
            assert task.cancelled()

    asyncio.run(main())


def test_cancel_all_ends_a_loop_that_lost_its_cancellation() -> None:
    async def main() -> None:
        # On CPython before 3.12 this loop survives its first cancellation.
        task = await _cancel_as_the_event_fires(lambda ev: asyncio.wait_for(ev.wait(), 10))
        await asyncio.wait_for(cancel_all([task]), 5)
        assert task.done()

    asyncio.run(main())
