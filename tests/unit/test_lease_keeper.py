"""When the lease keeper considers its lease alive (the agent's quorum signal)."""

from __future__ import annotations

import asyncio

from hakeeper.coord.lease import LeaseKeeper
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import StoreError


def _keeper(last_refresh: float, election_seen_at: float) -> LeaseKeeper:
    store = MemoryStore()
    store.election_seen_at = election_seen_at
    keeper = LeaseKeeper(store, ttl=2)
    keeper.lease, keeper.last_refresh = 0x1000, last_refresh
    return keeper


def test_a_refresh_keeps_the_lease_alive_for_ttl_minus_margin() -> None:
    keeper = _keeper(last_refresh=10.0, election_seen_at=float("-inf"))
    assert keeper.healthy(11.4, margin=0.5) and not keeper.healthy(11.6, margin=0.5)


def test_an_election_seen_while_the_lease_lived_counts_as_a_refresh() -> None:
    # A new leader renews every lease when it takes over: a raft election that stalls our
    # keepalives is not a lost store.
    keeper = _keeper(last_refresh=10.0, election_seen_at=11.0)
    assert keeper.healthy(12.4, margin=0.5) and not keeper.healthy(12.6, margin=0.5)


def test_an_election_after_the_lease_may_have_expired_renews_nothing() -> None:
    keeper = _keeper(last_refresh=10.0, election_seen_at=12.5)
    assert not keeper.healthy(12.6, margin=0.5)
    assert not _keeper(last_refresh=10.0, election_seen_at=9.0).healthy(11.6, margin=0.5)


def test_on_grant_is_tried_again_until_it_goes_through() -> None:
    """The agent registers its member key in on_grant; a store error there must not leave a
    lease that nobody registered under (the node would never be a member, its worker held back)."""
    async def scenario() -> list[int]:
        store = MemoryStore()
        calls: list[int] = []

        async def on_grant(lease: int) -> None:
            calls.append(lease)
            if len(calls) < 3:
                raise StoreError("the store did not answer")
            await store.put("member", b"me", lease)

        keeper = LeaseKeeper(store, ttl=5, on_grant=on_grant)
        task = asyncio.create_task(keeper.run())
        try:
            for _ in range(100):
                if await store.get("member") is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
        kv = await store.get("member")
        assert kv is not None and kv.lease == keeper.lease
        return calls

    calls = asyncio.run(scenario())
    assert len(calls) == 3 and len(set(calls)) == 1  # the same lease, announced once it worked
