"""Found by the soak: an etcd lease refresh abandoned by an outer bound (the lease keeper's) ran
on and died later as "Task exception was never retrieved". `bounded` now abandons its call when
its caller is cancelled, as when its own bound runs out."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from hakeeper.coord.store import bounded


def test_an_outer_bound_abandons_the_inner_call_and_nothing_is_left_unretrieved() -> None:
    problems: list[str] = []
    finished: list[str] = []

    async def slow_call() -> int:
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise
        finished.append("ran on")
        raise ConnectionError("deadline exceeded")  # what the abandoned gRPC call did

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: problems.append(ctx["message"]))
        with contextlib.suppress(TimeoutError):
            await bounded(bounded(slow_call(), 5.0), 0.05)  # the outer bound runs out first
        await asyncio.sleep(0.5)  # long enough for an abandoned call to have finished

    asyncio.run(main())
    gc.collect()  # a task whose exception nobody retrieved is reported when it is collected
    assert finished == ["cancelled"]
    assert problems == []


def test_a_call_within_its_bound_returns_its_result() -> None:
    async def quick() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert asyncio.run(bounded(quick(), 1.0)) == 7
