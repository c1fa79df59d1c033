"""The embedded store after a stall of its own process: the time it did not run is not held
against the leases (nobody could refresh them), but leases nobody refreshes still expire."""

from __future__ import annotations

import asyncio
import time

from hakeeper.coord.memory import MemoryStore


async def _stalled_store_with_lease(ttl: int, stall: float) -> tuple[MemoryStore, int]:
    store = MemoryStore()
    lease = await store.grant(ttl)
    await store.put("k", b"v", lease)
    await asyncio.sleep(0.2)  # the reaper is running
    time.sleep(stall)  # the whole process stops: neither the store nor any client runs
    await asyncio.sleep(0.2)  # the reaper's first tick after the stall
    return store, lease


def test_a_stall_of_the_store_expires_no_lease() -> None:
    async def main() -> None:
        store, lease = await _stalled_store_with_lease(ttl=1, stall=1.5)
        try:
            assert await store.get("k") is not None
            assert await store.keepalive(lease) == 1
        finally:
            await store.close()

    asyncio.run(main())


def test_a_lease_nobody_refreshes_after_the_stall_still_expires() -> None:
    async def main() -> None:
        store, _ = await _stalled_store_with_lease(ttl=1, stall=1.5)
        try:
            await asyncio.sleep(1.2)
            assert await store.get("k") is None
        finally:
            await store.close()

    asyncio.run(main())
