"""Keeping a lease alive, and knowing when the store has stopped answering.

The keeper refreshes every ttl/5. `healthy(now)` says whether the last refresh is recent enough
that the lease surely still lives: the agent uses it as its quorum signal (a node cut off from the
store cannot refresh, so it stops its resources before its lease can expire elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hakeeper.coord.stall import patient
from hakeeper.coord.store import LeaseExpired, Store, StoreError

log = logging.getLogger(__name__)

# Why 5 s: while etcd elects a new raft leader nothing can be refreshed, and the agent cannot tell
# an election (every lease survives: the new leader renews them all) from being cut off in a
# minority (its lease runs out), so it must sit an election out before acting. With etcd at
# 50/500 ms an election stalls refreshes for 0.7-1.3 s, over 2 s on a loaded machine
# (bench/etcd_election_stall.py); at 5 s a node gives up after 3.75 s without a refresh, and the
# last refresh is at most 1 s old when the stall begins. Failover does not wait for the TTL:
# with fencing, heartbeats detect a lost node (agent/heartbeat.py).
DEFAULT_LEASE_TTL = 5


class LeaseKeeper:
    def __init__(self, store: Store, ttl: int, on_grant: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self.on_grant = on_grant
        self.lease = 0
        self.last_refresh = float("-inf")  # loop time of the last confirmed refresh or grant
        self.changed = asyncio.Event()
        self._last_warning = float("-inf")
        self._announced = True  # on_grant went through for the current lease (none yet: nothing to do)

    def healthy(self, now: float, margin: float = 0.0) -> bool:
        """The lease is known alive at `now`: refreshed less than ttl - margin seconds ago, by a
        keepalive of ours or by the store's election of a new leader (Store.election_seen_at)."""
        refreshed = self.last_refresh
        election = self.store.election_seen_at
        if refreshed < election < refreshed + self.ttl:  # the lease still lived when it was renewed
            refreshed = election
        return self.lease != 0 and now - refreshed < self.ttl - margin

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.lease == 0:
                    sent = loop.time()
                    self.lease = await patient(self.store.grant(self.ttl), max(1.0, float(self.ttl)))
                    self.last_refresh = sent
                    self._announced = False
                if not self._announced:
                    # Until on_grant has gone through (the agent registers its member key under
                    # the lease), it is tried again: a lease nobody registered under is a node
                    # the leader never sees, its worker held back for good.
                    if self.on_grant is not None:
                        await self.on_grant(self.lease)
                    self._announced = True
                    self.changed.set()
                else:
                    sent = loop.time()
                    # Bounded here too: a refresh that does not come back in time is a failed one
                    # (in the time this process ran, up to the TTL: coord/stall.py). A late answer
                    # costs nothing: the refresh counts from when it was sent.
                    await patient(self.store.keepalive(self.lease), max(0.5, self.ttl / 2), float(self.ttl))
                    # The lease was refreshed no earlier than when we sent the request.
                    self.last_refresh = sent
            except LeaseExpired:
                log.warning("lease %x expired, granting a new one", self.lease)
                self.lease = 0
                self.changed.set()
                continue
            except (StoreError, TimeoutError) as exc:
                now = loop.time()
                if now - self._last_warning > 5:  # an unreachable store: say so, not 10 times a second
                    log.warning("store unreachable (lease %x): %s", self.lease, exc)
                    self._last_warning = now
                await asyncio.sleep(0.1)
                continue
            # Often, so that the refresh before a stall is recent: the whole stall fits in the budget.
            await asyncio.sleep(max(0.1, self.ttl / 5))
