"""The etcd backend, on aetcd (asyncio gRPC).

aetcd talks to one endpoint per client. What it does not do, and this module adds: move to the
next endpoint when a member stops answering, and notice a watch whose member died or lost
quorum. A killed member usually resets the stream (aetcd then raises), but a member cut off by
a dead link or a partition keeps the stream open and silent; so every watch runs a probe, a
linearizable read through the same connection, and fails the watch when the probe does not come
back in time. The resilient watch (`hakeeper.coord.watch`) then resumes on another endpoint from
the last revision it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

# The agent forks resource agents all the time. gRPC's fork handlers pause and resume its threads
# around every fork(), which with the asyncio engine stalls the event loop and starves watch
# streams; the agent never uses gRPC in a child, so it needs no fork support.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
# gRPC's core logs a refused TLS handshake as lines of "Corruption detected" on stderr; the
# store's own error says what happened (GRPC_VERBOSITY=debug brings the details back).
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import aetcd
import aetcd.exceptions as aexc
from aetcd import rpc, transactions

from hakeeper.coord.stall import CAP_FACTOR, patient
from hakeeper.coord.store import (
    Compacted,
    Compare,
    Event,
    KeyValue,
    LeaseExpired,
    Op,
    Put,
    StaleWatch,
    Store,
    StoreError,
    StoreUnavailable,
    TxnResult,
    bounded,
)
from hakeeper.coord.tls import EtcdSecurity, SecureClient, TlsMaterial, explain, load_material
from hakeeper.errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")
STALE_PROBES = 4

_TARGETS = {
    "value": transactions.Value,
    "version": transactions.Version,
    "create": transactions.Create,
    "mod": transactions.Mod,
}
_OPS = {"==": rpc.Compare.EQUAL, "!=": rpc.Compare.NOT_EQUAL, "<": rpc.Compare.LESS, ">": rpc.Compare.GREATER}


def parse_endpoints(text: str, source: str = "--etcd") -> list[str]:
    """`HOST:PORT[,HOST:PORT...]` (IPv6 as `[ADDR]:PORT`, an `http://` prefix allowed) → the
    endpoints as "host:port", or an InputError naming `source` (the flag or variable it came from).

    Checked here because gRPC would take a missing port for its default and a port above 65535
    modulo 65536: the agent would then talk to a store nobody meant."""
    endpoints = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        endpoint = item.removeprefix("http://")
        if any(c.isspace() or not c.isprintable() for c in endpoint):
            raise _endpoint_error(source, item, "spaces or control characters in an endpoint")
        if "://" in endpoint:
            raise _endpoint_error(source, item, "only plain http:// endpoints are supported")
        if endpoint.startswith("["):
            host, bracket, rest = endpoint.partition("]")
            host += bracket
            if not bracket or len(host) < 3:
                raise _endpoint_error(source, item, "an IPv6 address is written [ADDRESS]:PORT")
            if not rest.startswith(":"):
                raise _endpoint_error(source, item, "no port: write [ADDRESS]:PORT, such as [::1]:2379")
            port = rest[1:]
        else:
            host, colon, port = endpoint.rpartition(":")
            if not colon:
                raise _endpoint_error(source, item, "no port: write HOST:PORT, such as 127.0.0.1:2379")
            if ":" in host:
                raise _endpoint_error(source, item, "an IPv6 address goes in brackets: [ADDRESS]:PORT")
            if not host:
                raise _endpoint_error(source, item, "no host: write HOST:PORT, such as 127.0.0.1:2379")
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise _endpoint_error(source, item, f"port {port!r} is not a number from 1 to 65535")
        if f"{host}:{int(port)}" not in endpoints:  # a repeat changes nothing: "mine first, then all"
            endpoints.append(f"{host}:{int(port)}")
    if not endpoints:
        raise InputError.at("no etcd endpoint given: write HOST:PORT[,HOST:PORT...]", file=source)
    return endpoints


def _endpoint_error(source: str, item: str, message: str) -> InputError:
    shown = item if len(item) <= 80 else item[:77] + "..."
    return InputError.at(f"etcd endpoint {shown!r}: {message}", file=source)


def _range_end(prefix: bytes) -> bytes:
    s = bytearray(prefix)
    for i in reversed(range(len(s))):
        if s[i] < 0xFF:
            s[i] += 1
            return bytes(s[: i + 1])
    return b"\0"


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), bytes(kv.value), kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, aexc.ConnectionFailedError | aexc.ConnectionTimeoutError | asyncio.TimeoutError):
        return True
    text = str(exc)
    if "invalid auth token" in text:  # a token the member forgot: a new connection authenticates again
        return True
    if isinstance(exc, rpc.AioRpcError):
        return exc.code() in (rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED)
    return "no leader" in text or "leader changed" in text or "timed out" in text


def _election(exc: BaseException) -> bool:
    """The member answered that the raft leader changed while the request was pending: a new
    leader was elected (a member cut off in a minority cannot see one), after the request left."""
    return "leader changed" in str(exc)


# gRPC reconnects to an address that did not answer after a backoff that grows to 120 s, and
# shares that connection (with its backoff) between every channel to the address, so a new
# client does not start afresh. A node cut off for 30 s then got its first answer 23 s after
# the network came back (measured), and a soak run's agent, booted while its node was cut off,
# found no member for 2.5 minutes. An agent must see its store again within a second: retry
# every second at most, on connections of its own.
CHANNEL_OPTIONS: dict[str, int] = {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
    "grpc.use_local_subchannel_pool": 1,
}


def _lease_gone(exc: BaseException) -> bool:
    return "lease not found" in str(exc)


class EtcdStore(Store):
    """etcd through aetcd, over a list of endpoints ("host:port"), failing over between them."""

    def __init__(
        self,
        endpoints: Sequence[str],
        timeout: float = 2.0,
        probe_interval: float = 0.5,
        security: EtcdSecurity | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoints")
        self.endpoints = list(endpoints)
        self.security = security
        # Certificates are read and checked now: a wrong file is the operator's input error.
        self._material: TlsMaterial | None = load_material(security) if security and security.tls else None
        self.timeout = timeout
        # A request waits `timeout` seconds of the time this process ran, at most `cap` seconds of
        # wall time (coord/stall.py: a starved machine is not a dead store); gRPC's own deadline,
        # which counts wall time, is the cap.
        self.cap = timeout * CAP_FACTOR
        self.probe_interval = probe_interval
        self._index = 0
        self._client: aetcd.Client | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._watch_index = 0
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._index]

    @property
    def watch_endpoint(self) -> str:
        return self.endpoints[self._watch_index % len(self.endpoints)]

    async def _connected(self) -> aetcd.Client:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("store closed")
            if self._client is None:
                client = self._new_client(self.endpoint)
                await client.connect()
                self._client = client
            return self._client

    def _new_client(self, endpoint: str) -> aetcd.Client:
        host, _, port = endpoint.rpartition(":")
        if self.security is None:
            return aetcd.Client(host=host, port=int(port), timeout=self.cap, options=CHANNEL_OPTIONS)
        return SecureClient(host, int(port), self.cap, self._material, self.security, CHANNEL_OPTIONS)

    def _failure(self, exc: BaseException | None, endpoint: str) -> str | None:
        return None if exc is None else explain(exc, endpoint, self.security)

    async def _drop(self, client: Any) -> None:
        """Forget a client that failed and move to the next endpoint (once per failure)."""
        async with self._lock:
            if self._client is not client:
                return
            self._client = None
            self._index = (self._index + 1) % len(self.endpoints)
            log.warning("etcd: moving to endpoint %s", self.endpoint)
        self._retire(client)

    def _retire(self, client: Any) -> None:
        """Close a client later, not now: calls of other tasks may still be on its channel, and
        closing a gRPC channel under them can wedge the loop. Their own deadlines end them first."""

        async def close() -> None:
            await asyncio.sleep(self.cap + self.timeout)
            with contextlib.suppress(Exception):
                await bounded(client.close(), self.timeout)

        try:
            task = asyncio.get_running_loop().create_task(close())
        except RuntimeError:  # no loop any more (interpreter shutdown): nothing left to protect
            return
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _call(self, fn: Callable[[aetcd.Client], Awaitable[T]], timeout: float | None = None) -> T:
        """Run `fn` on the current endpoint's client, moving on to the next endpoint when one does
        not answer within `timeout` (default: the store's own) of this process's running time."""
        wait = self.timeout if timeout is None else min(timeout, self.timeout)
        last: BaseException | None = None
        why: str | None = None  # a TLS or authentication failure, said plainly
        loop = asyncio.get_running_loop()
        attempts, attempt, renewed = len(self.endpoints), 0, False
        while attempt < attempts:
            attempt += 1
            client = await self._connected()
            sent = loop.time()
            try:
                return await patient(fn(client), wait, wait * CAP_FACTOR)
            except (TimeoutError, aexc.ClientError, rpc.AioRpcError) as exc:
                self._note_election(exc, sent)
                if _lease_gone(exc):
                    raise LeaseExpired(str(exc)) from exc
                if not _unavailable(exc):
                    raise StoreError(self._failure(exc, self.endpoint) or f"etcd {self.endpoint}: {exc}") from exc
                last = exc
                why = self._failure(exc, self.endpoint)
                if "invalid auth token" in str(exc) and not renewed:
                    # The member forgot this client's token (idle past --auth-token-ttl, or it
                    # restarted): a new connection authenticates again; that is one more try.
                    renewed, attempts = True, attempts + 1
                await self._drop(client)
        raise StoreUnavailable(why or f"no etcd endpoint answered ({self.endpoints}): {last}")

    def _note_election(self, exc: BaseException, sent: float) -> None:
        if _election(exc) and sent > self.election_seen_at:
            self.election_seen_at = sent

    async def get(self, key: str) -> KeyValue | None:
        async def op(c: aetcd.Client) -> KeyValue | None:
            got = await c.get(key.encode())
            return None if got is None else _kv(got)

        return await self._call(op)

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        async def op(c: aetcd.Client) -> tuple[list[KeyValue], int]:
            res = await c.get_prefix(prefix.encode(), sort_order="ascend")
            return [_kv(kv) for kv in res], res.header.revision

        return await self._call(op)

    @staticmethod
    def _request(op: Op) -> Any:
        if isinstance(op, Put):
            return rpc.RequestOp(request_put=rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease))
        key = op.key.encode()
        end = _range_end(key) if op.prefix else b""
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key, range_end=end))

    @staticmethod
    def _compare(c: Compare) -> Any:
        cmp = _TARGETS[c.target](c.key)
        cmp.value = c.operand
        cmp.op = _OPS[c.op]
        return cmp.build_message()

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        return await self._txn(compares, success, failure)

    async def put_within(self, key: str, value: bytes, lease: int, within: float) -> int:
        # A member that died (its machine powered off: packets vanish) holds a request for the
        # whole timeout before the client moves on; a heartbeat held that long is taken for a
        # dead node by the leader, which fences it although only its etcd member died.
        return (await self._txn([], [Put(key, value, lease)], (), timeout=within)).revision

    async def _txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op], timeout: float | None = None
    ) -> TxnResult:
        request = rpc.TxnRequest(
            compare=[self._compare(c) for c in compares],
            success=[self._request(o) for o in success],
            failure=[self._request(o) for o in failure],
        )

        async def op(c: aetcd.Client) -> TxnResult:
            resp = await c.kvstub.Txn(request, timeout=self.cap, metadata=c.metadata)
            return TxnResult(bool(resp.succeeded), resp.header.revision)

        return await self._call(op, timeout)

    async def grant(self, ttl: int) -> int:
        async def op(c: aetcd.Client) -> int:
            return int((await c.lease(ttl)).id)

        return await self._call(op)

    async def keepalive(self, lease: int) -> int:
        async def op(c: aetcd.Client) -> int:
            reply = await c.refresh_lease(lease)
            return 0 if reply is None else int(reply.TTL)

        ttl = await self._call(op)
        if ttl <= 0:
            raise LeaseExpired(f"lease {lease:x} not found")
        return ttl

    async def revoke(self, lease: int) -> None:
        async def op(c: aetcd.Client) -> None:
            await c.revoke_lease(lease)

        with contextlib.suppress(LeaseExpired):
            await self._call(op)

    async def compact(self, revision: int) -> None:
        async def op(c: aetcd.Client) -> None:
            await c.compact(revision, physical=True)

        await self._call(op)

    def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        # Each watch has its own channel (and its own endpoint rotation), so a watch given up
        # never disturbs the requests of other tasks.
        if self._closed:
            raise StoreUnavailable("store closed")
        endpoint = self.endpoints[self._watch_index % len(self.endpoints)]
        client = self._new_client(endpoint)

        def rotate(why: object) -> StoreUnavailable:
            self._watch_index += 1
            log.warning("etcd watch: %s; moving to %s", why, self.endpoints[self._watch_index % len(self.endpoints)])
            self._retire(client)
            plain = self._failure(why, endpoint) if isinstance(why, BaseException) else None
            return StoreUnavailable(f"watch on {endpoint}: {plain or why}")

        try:
            await client.connect()
            watch = await patient(
                client.watch_prefix(prefix.encode(), start_revision=start_revision), self.timeout + 0.5, self.cap + 0.5
            )
        except aexc.RevisionCompactedError as exc:
            self._retire(client)
            raise Compacted(exc.compacted_revision) from exc
        except (TimeoutError, aexc.ClientError) as exc:
            raise rotate(exc) from exc
        queue: asyncio.Queue[list[Event] | BaseException] = asyncio.Queue()
        seen = [start_revision - 1]  # the last revision delivered, shared with the probe
        tasks = [
            asyncio.create_task(self._pump(watch, queue)),
            asyncio.create_task(self._probe(client, queue, prefix.encode(), seen)),
        ]
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    if isinstance(item, aexc.RevisionCompactedError):
                        self._retire(client)
                        raise Compacted(item.compacted_revision)
                    lost = rotate(item)
                    if isinstance(item, StaleWatch):
                        raise item
                    raise lost
                seen[0] = max(seen[0], item[-1].revision)
                yield item
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(BaseException):
                await bounded(watch.cancel(), 0.5)
            self._retire(client)

    @staticmethod
    async def _pump(watch: Any, queue: asyncio.Queue[list[Event] | BaseException]) -> None:
        try:
            async for ev in watch:
                kind: Literal["put", "delete"] = "put" if ev.kind == "PUT" else "delete"
                queue.put_nowait([Event(kind, ev.kv.key.decode(), bytes(ev.kv.value), ev.kv.mod_revision)])
            # aetcd ends the iterator quietly when its channel is closed: that is a lost watch too.
            queue.put_nowait(StoreUnavailable("watch stream ended"))
        except Exception as exc:
            queue.put_nowait(exc)

    async def _probe(
        self, client: aetcd.Client, queue: asyncio.Queue[list[Event] | BaseException], prefix: bytes, seen: list[int]
    ) -> None:
        """Fail the watch when its member is gone or the stream went quiet while changes happened.

        The read is linearizable, so it needs the member to reach the raft leader: a member that is
        dead, unreachable or in a minority fails it, which its silent stream would not show. It
        lists (keys only; not count_only, whose count etcd takes before the revision filter) the
        keys under the prefix modified after the last revision the watch delivered: if such
        changes stay undelivered for STALE_PROBES probes, the stream is stale and the consumer
        reads everything again.
        """
        behind, stuck_at = 0, seen[0]
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            while True:
                await asyncio.sleep(self.probe_interval)
                sent = loop.time()
                request = rpc.RangeRequest(
                    key=prefix, range_end=_range_end(prefix), keys_only=True, min_mod_revision=seen[0] + 1
                )
                resp = await patient(
                    client.kvstub.Range(request, timeout=self.cap, metadata=client.metadata), self.timeout, self.cap
                )
                # Stale only if undelivered changes persist and nothing was delivered meanwhile
                # for STALE_PROBES probes: a busy member may lag a little behind its reads.
                if len(resp.kvs) > 0 and seen[0] == stuck_at:
                    behind += 1
                else:
                    behind, stuck_at = 0, seen[0]
                if behind >= STALE_PROBES:
                    queue.put_nowait(StaleWatch(f"watch stream stale: changes after revision {seen[0]}"))
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._note_election(exc, sent)
            queue.put_nowait(StoreUnavailable(f"probe failed: {exc!r}"))

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            client, self._client = self._client, None
        for task in list(self._retiring):
            task.cancel()
        if client is not None:
            with contextlib.suppress(Exception):
                await bounded(client.close(), self.timeout)
