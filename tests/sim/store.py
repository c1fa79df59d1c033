"""A model of the coordination store with etcd's guarantees, pure and synchronous.

It reuses hakeeper.coord.store's types (Compare, Put, Delete, KeyValue, Event, TxnResult) so the
agent's own transactions run against it unchanged. What it models:

- linearizable transactions: one global revision, bumped once per transaction that changes
  something, per-key create/mod revisions and versions (as etcd);
- leases with a TTL that expire on the simulated clock (`expire(now)` deletes their keys in one
  revision per lease), only while the store has a leader: with no quorum or during an election
  nothing expires, and a new leader grants every lease its full TTL again (etcd's lease
  promotion on leader change);
- watches from a revision: `events_since(prefix, revision)` replays history, or raises Compacted
  when that revision is gone (compaction, explicit or by the history limit);
- availability: store members that can be lost and restored (no quorum: StoreUnavailable) and an
  election stall until a given time, during which requests wait (the caller delays them).

Time is always passed in; nothing here schedules anything. The transaction code is written
again here rather than shared with hakeeper.coord.memory on purpose: test_store.py compares the
two on random operation sequences, which only means something if they are independent.
"""

from __future__ import annotations

from collections.abc import Sequence

from hakeeper.coord.store import (
    Compacted,
    Compare,
    Delete,
    Event,
    KeyValue,
    LeaseExpired,
    Op,
    Put,
    StoreUnavailable,
    TxnResult,
)


class ModelStore:
    def __init__(self, members: int = 3, history_limit: int = 10_000) -> None:
        self.data: dict[str, KeyValue] = {}
        self.revision = 1  # etcd starts at revision 1 with an empty store
        self.history: list[Event] = []
        self.compacted = 0  # events at or below this revision are gone
        self.history_limit = history_limit
        self.leases: dict[int, tuple[int, float]] = {}  # id -> (ttl, deadline)
        self._next_lease = 0x1000
        self.members = members
        self.up = members
        self.stalled_until = float("-inf")

    # ----- availability -----

    @property
    def quorum(self) -> bool:
        return self.up > self.members // 2

    def stalled(self, now: float) -> bool:
        return now < self.stalled_until

    def check(self) -> None:
        if not self.quorum:
            raise StoreUnavailable(f"{self.up} of {self.members} store members up: no quorum")

    def lose_member(self, now: float) -> None:
        had = self.quorum
        self.up = max(0, self.up - 1)
        if had and not self.quorum:
            self.stalled_until = float("-inf")

    def restore_member(self, now: float, election: float) -> None:
        had = self.quorum
        self.up = min(self.members, self.up + 1)
        if not had and self.quorum:
            self.elect(now, election)

    def elect(self, now: float, duration: float) -> None:
        """A raft election from `now` for `duration` seconds: requests wait, then the new leader
        renews every lease to its full TTL from the moment it takes over."""
        end = now + duration
        self.stalled_until = max(self.stalled_until, end)
        self.leases = {lease: (ttl, max(deadline, end + ttl)) for lease, (ttl, deadline) in self.leases.items()}

    # ----- reads and transactions -----

    def get(self, key: str) -> KeyValue | None:
        self.check()
        return self.data.get(key)

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.check()
        kvs = sorted((kv for k, kv in self.data.items() if k.startswith(prefix)), key=lambda kv: kv.key)
        return kvs, self.revision

    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        self.check()
        ok = all(c.holds(self.data.get(c.key)) for c in compares)
        ops = success if ok else failure
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self.leases:
                raise LeaseExpired(f"lease {op.lease:x} not found")
        self._apply(ops)
        return TxnResult(ok, self.revision)

    def _matching(self, op: Delete) -> list[str]:
        if op.prefix:
            return sorted(k for k in self.data if k.startswith(op.key))
        return [op.key] if op.key in self.data else []

    def _apply(self, ops: Sequence[Op]) -> list[Event]:
        # One transaction is one revision however many keys it touches; a transaction that changes
        # nothing (deletes of missing keys only) does not bump it, as in etcd.
        if not any(isinstance(op, Put) or self._matching(op) for op in ops):
            return []
        rev = self.revision + 1
        events: list[Event] = []
        for op in ops:
            if isinstance(op, Put):
                old = self.data.get(op.key)
                self.data[op.key] = KeyValue(
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
                    del self.data[key]
                    events.append(Event("delete", key, b"", rev))
        self.revision = rev
        self.history.extend(events)
        if len(self.history) > self.history_limit:
            drop = len(self.history) - self.history_limit
            self.compacted = max(self.compacted, self.history[drop - 1].revision)
            del self.history[:drop]
        return events

    def compact(self, revision: int) -> None:
        self.compacted = max(self.compacted, min(revision, self.revision))
        self.history = [e for e in self.history if e.revision > self.compacted]

    def history_since(self, revision: int) -> list[Event]:
        """The events of the revisions after `revision` (just committed: never compacted yet)."""
        out: list[Event] = []
        for e in reversed(self.history):
            if e.revision <= revision:
                break
            out.append(e)
        return out[::-1]

    def events_since(self, prefix: str, start_revision: int) -> list[Event]:
        """What a watch from `start_revision` replays first (then gets live); Compacted if gone."""
        self.check()
        if start_revision <= self.compacted:
            raise Compacted(self.compacted)
        return [e for e in self.history if e.revision >= start_revision and e.key.startswith(prefix)]

    # ----- leases -----

    def grant(self, ttl: int, now: float) -> int:
        self.check()
        self._next_lease += 1
        self.leases[self._next_lease] = (ttl, now + ttl)
        return self._next_lease

    def keepalive(self, lease: int, now: float) -> int:
        self.check()
        if lease not in self.leases:
            raise LeaseExpired(f"lease {lease:x} not found")
        ttl, _ = self.leases[lease]
        self.leases[lease] = (ttl, now + ttl)
        return ttl

    def revoke(self, lease: int) -> None:
        self.check()
        self._drop(lease)

    def _drop(self, lease: int) -> list[Event]:
        if self.leases.pop(lease, None) is None:
            return []
        return self._apply([Delete(k) for k, kv in sorted(self.data.items()) if kv.lease == lease])

    def expire(self, now: float) -> list[Event]:
        """Expire the leases whose deadline passed: only a store with a leader does."""
        if not self.quorum or self.stalled(now):
            return []
        events: list[Event] = []
        for lease, (_, deadline) in sorted(self.leases.items()):
            if deadline <= now:
                events += self._drop(lease)
        return events

    def next_expiry(self) -> float | None:
        return min((d for _, d in self.leases.values()), default=None)
