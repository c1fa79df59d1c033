"""The embedded backend: the whole store in one asyncio process, with etcd's semantics.

It serves tests and the single-host demo. `hakeeper.coord.localserver` exposes one MemoryStore
to several agent processes on the same host. Lease expiry runs on the event loop's clock; the
history of changes is kept (bounded) so watches can start at an older revision like etcd's.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Sequence

from hakeeper.coord.store import (
    Compacted,
    Compare,
    Delete,
    Event,
    KeyValue,
    LeaseExpired,
    Op,
    Put,
    Store,
    StoreUnavailable,
    TxnResult,
)

HISTORY_LIMIT = 50_000
REAP_PERIOD = 0.05
# A reaper tick this much later than planned means the store itself was not running.
STALL = 0.5

log = logging.getLogger(__name__)


class MemoryStore(Store):
    def __init__(self, history_limit: int = HISTORY_LIMIT) -> None:
        self._data: dict[str, KeyValue] = {}
        self._revision = 1  # etcd starts at revision 1 with an empty store
        self._history: list[Event] = []
        self._compacted = 0  # events at or below this revision are gone
        self._history_limit = history_limit
        self._leases: dict[int, tuple[int, float]] = {}  # id -> (ttl, deadline)
        self._lease_ids = itertools.count(0x1000)
        self._watchers: set[_Watcher] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def revision(self) -> int:
        return self._revision

    def start(self) -> None:
        """Start the lease reaper now rather than at the first request (a server does: leases
        loaded from disk must run out even if no client ever comes back)."""
        self._check()

    def _check(self) -> None:
        if self._closed:
            raise StoreUnavailable("store closed")
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_leases())

    async def get(self, key: str) -> KeyValue | None:
        self._check()
        return self._data.get(key)

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        self._check()
        kvs = sorted((kv for k, kv in self._data.items() if k.startswith(prefix)), key=lambda kv: kv.key)
        return kvs, self._revision

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        self._check()
        ok = all(c.holds(self._data.get(c.key)) for c in compares)
        ops = success if ok else failure
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseExpired(f"lease {op.lease:x} not found")
        self._apply(ops)
        return TxnResult(ok, self._revision)

    def _apply(self, ops: Sequence[Op]) -> list[Event]:
        # One transaction is one revision, as in etcd, however many keys it touches.
        if not any(isinstance(op, Put) or self._matching(op) for op in ops):
            return []
        rev = self._revision + 1
        events: list[Event] = []
        for op in ops:
            if isinstance(op, Put):
                old = self._data.get(op.key)
                self._data[op.key] = KeyValue(
                    op.key,
                    op.value,
                    old.create_revision if old else rev,
                    rev,
                    (old.version if old else 0) + 1,
                    op.lease,
                )
                events.append(Event("put", op.key, op.value, rev))
            else:
                for key in self._matching(op):
                    del self._data[key]
                    events.append(Event("delete", key, b"", rev))
        self._commit(rev, events)
        self._revision = rev
        self._record(events)
        return events

    def _commit(self, revision: int, events: list[Event]) -> None:
        """Called with a transaction's changes applied to _data, before anyone sees them: the
        durable store writes them to disk here, so no watcher or client learns of a change that
        a crash could still lose."""

    def _tick(self, now: float) -> None:
        """Called on every reaper pass (the durable store records that it was alive)."""

    def _matching(self, op: Delete) -> list[str]:
        if op.prefix:
            return [k for k in self._data if k.startswith(op.key)]
        return [op.key] if op.key in self._data else []

    def _record(self, events: list[Event]) -> None:
        self._history.extend(events)
        if len(self._history) > self._history_limit:
            drop = len(self._history) - self._history_limit
            self._compacted = self._history[drop - 1].revision
            del self._history[:drop]
        for w in list(self._watchers):
            batch = [e for e in events if e.key.startswith(w.prefix)]
            if batch:
                w.queue.put_nowait(batch)

    async def compact(self, revision: int) -> None:
        """Forget history up to and including `revision` (etcd's compaction)."""
        self._compacted = max(self._compacted, revision)
        self._history = [e for e in self._history if e.revision > revision]

    async def grant(self, ttl: int) -> int:
        self._check()
        lease = next(self._lease_ids)
        self._leases[lease] = (ttl, asyncio.get_running_loop().time() + ttl)
        return lease

    async def keepalive(self, lease: int) -> int:
        self._check()
        if lease not in self._leases:
            raise LeaseExpired(f"lease {lease:x} not found")
        ttl, _ = self._leases[lease]
        self._leases[lease] = (ttl, asyncio.get_running_loop().time() + ttl)
        return ttl

    async def revoke(self, lease: int) -> None:
        self._check()
        self._expire(lease)

    def _expire(self, lease: int) -> None:
        if self._leases.pop(lease, None) is None:
            return
        keys = [k for k, kv in self._data.items() if kv.lease == lease]
        self._apply([Delete(k) for k in keys])

    async def _reap_leases(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            now = loop.time()
            if now - last > REAP_PERIOD + STALL:
                self._forgive_stall(now - last)
            self._tick(now)
            for lease, (_, deadline) in list(self._leases.items()):
                if deadline <= now:
                    self._expire(lease)
            last = now
            await asyncio.sleep(REAP_PERIOD)

    def _forgive_stall(self, gap: float) -> None:
        """The store did not run for `gap` seconds (a paused VM, a swapped-out or stopped process,
        a blocked event loop). No client could refresh its lease meanwhile, so that time is not
        held against them: every live lease is extended by the gap. etcd does the same for the
        same reason when a new raft leader takes over its leases. Otherwise one pause of the store
        would expire every lease at once, and with fencing, every node would be fenced."""
        log.warning("store was stalled for %.1fs: extending %d leases by as much", gap, len(self._leases))
        self._leases = {lease: (ttl, deadline + gap) for lease, (ttl, deadline) in self._leases.items()}

    def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        self._check()
        if start_revision <= self._compacted:
            raise Compacted(self._compacted)
        watcher = _Watcher(prefix)
        # Register before replaying so nothing falls between history and live events.
        self._watchers.add(watcher)
        try:
            # No await between registering and reading history: the queue holds exactly what follows.
            past = [e for e in self._history if e.revision >= start_revision and e.key.startswith(prefix)]
            for _, group in itertools.groupby(past, key=lambda e: e.revision):
                yield list(group)
            while True:
                batch = await watcher.queue.get()
                if batch is None:
                    raise StoreUnavailable("store closed")
                batch = [e for e in batch if e.revision >= start_revision]
                if batch:
                    yield batch
        finally:
            self._watchers.discard(watcher)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
        for w in self._watchers:
            w.queue.put_nowait(None)


class _Watcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
