"""The coordination store contract every backend fulfils (etcd via aetcd, embedded in-process/local).

The shape follows etcd's data model because etcd is the production backend: one global revision
that every write bumps, per-key create/mod revisions and versions, transactions of compares and
operations, leases that delete their keys on expiry, and watches that start at a revision. Keys
are str (UTF-8), values bytes. Backends raise StoreUnavailable when they cannot reach a quorum so
callers can tell "no answer" from "no key"; a watch raises Compacted when its start revision is
gone, and the resilient watch in `hakeeper.coord.watch` turns that into a full resynchronisation.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

T = TypeVar("T")


async def bounded(aw: Awaitable[T], timeout: float) -> T:
    """Like asyncio.wait_for, but never waits for a cancelled gRPC call to wind down: a call on a
    wedged channel may take its time to honour cancellation, and the caller must move on now."""
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        # The caller was cancelled (an outer bound ran out): the call is abandoned too, else it
        # would run on and die later as an exception "never retrieved" (seen in the soak).
        abandon(task)
        raise
    if not done:
        abandon(task)
        raise TimeoutError(f"no answer within {timeout:g}s")
    return task.result()


def abandon(task: asyncio.Future[T]) -> None:
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "never retrieved"


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` passes; True if it was set. Unlike
    asyncio.wait_for(event.wait(), timeout) on CPython before 3.12, a cancellation that arrives
    as the event is set is never lost (a loop built on wait_for could not be stopped)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)


class StoreError(Exception):
    """Base of coordination store errors."""


class StoreUnavailable(StoreError):
    """The backend could not be reached (no endpoint answered, or it has no quorum)."""


class StaleWatch(StoreUnavailable):
    """A watch stream stayed silent while changes under its prefix happened: read everything again."""


class Compacted(StoreError):
    """A watch asked for a revision older than the store still keeps."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revision compacted below {compact_revision}")
        self.compact_revision = compact_revision


class LeaseExpired(StoreError):
    """The lease no longer exists: its keys are gone, its holder must start over."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True)
class Event:
    kind: Literal["put", "delete"]
    key: str
    value: bytes
    revision: int  # the mod revision of the change


CompareTarget = Literal["value", "version", "create", "mod"]
CompareOp = Literal["==", "!=", "<", ">"]


@dataclass(frozen=True)
class Compare:
    """One transaction guard, as etcd's Compare: target of `key` `op` operand.

    A missing key has version 0 and create/mod revision 0 (etcd semantics), so
    `Compare(k, "create", "==", 0)` means "k does not exist" — the basis of compare-and-set. A value
    compare on a missing key always fails, as in etcd.
    """

    key: str
    target: CompareTarget
    op: CompareOp
    operand: bytes | int

    def holds(self, kv: KeyValue | None) -> bool:
        actual: bytes | int
        if self.target == "value":
            if kv is None:
                return False
            actual = kv.value
        elif self.target == "version":
            actual = kv.version if kv else 0
        elif self.target == "create":
            actual = kv.create_revision if kv else 0
        else:
            actual = kv.mod_revision if kv else 0
        operand = self.operand
        if isinstance(actual, bytes) != isinstance(operand, bytes):
            raise TypeError(f"compare {self.target} needs {'bytes' if isinstance(actual, bytes) else 'int'}")
        if self.op == "==":
            return actual == operand
        if self.op == "!=":
            return actual != operand
        if self.op == "<":
            return actual < operand  # type: ignore[operator]
        return actual > operand  # type: ignore[operator]


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False


Op = Put | Delete


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int


def absent(key: str) -> Compare:
    return Compare(key, "create", "==", 0)


def unchanged_since(key: str, mod_revision: int) -> Compare:
    return Compare(key, "mod", "==", mod_revision)


class Store(abc.ABC):
    """An async key-value store with revisions, transactions, leases and prefix watches."""

    # Event-loop time at which a request was sent that then failed because the store elected a
    # new leader meanwhile (etcd: "leader changed"). A new etcd leader grants every lease its full
    # TTL again (plus the election timeout) when it takes over, which it did after that moment:
    # so every lease, this client's too, was refreshed at least as late as then. The lease keeper
    # counts it as a refresh, so a raft election that stalls lease refreshes for a second is not
    # taken for a lost store (the node would stop everything it runs).
    election_seen_at: float = float("-inf")

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All keys under prefix (sorted by key) and the store revision they were read at."""

    @abc.abstractmethod
    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        """Apply `success` if every compare holds, else `failure`, atomically."""

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        return (await self.txn([], [Put(key, value, lease)])).revision

    async def put_within(self, key: str, value: bytes, lease: int, within: float) -> int:
        """A put worth something only if it lands soon (a heartbeat). A store reached through
        several endpoints gives each endpoint `within` seconds before it moves to the next, instead
        of its usual request timeout; a store with one way in simply puts."""
        del within
        return await self.put(key, value, lease)

    async def delete(self, key: str) -> int:
        return (await self.txn([], [Delete(key)])).revision

    async def delete_prefix(self, prefix: str) -> int:
        return (await self.txn([], [Delete(prefix, prefix=True)])).revision

    @abc.abstractmethod
    async def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; returns its id."""

    @abc.abstractmethod
    async def keepalive(self, lease: int) -> int:
        """Refresh a lease; returns the TTL granted again. Raises LeaseExpired if it is gone."""

    @abc.abstractmethod
    async def revoke(self, lease: int) -> None: ...

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget the history of changes up to `revision` (watches before it get Compacted)."""

    @abc.abstractmethod
    def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Batches of events under prefix from start_revision on, in revision order.

        Raises Compacted if start_revision is older than the history kept, StoreUnavailable when
        the connection is lost: a watch never ends silently.
        """

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
