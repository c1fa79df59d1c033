"""Share one embedded MemoryStore between processes on one host, over a Unix socket.

The single-host demo runs several agents as separate processes without etcd. The protocol is
JSON lines: a request {"op": ..., args} gets one reply {"ok": result} or {"error": kind,
"message": text}; a "watch" request turns its connection into a stream of {"events": [...]}
lines. Values travel base64-encoded. RemoteStore is the client side and fulfils the Store
contract; when the server goes away its calls raise StoreUnavailable and its watches end with it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import Any

from hakeeper.coord.memory import MemoryStore
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
    StoreError,
    StoreUnavailable,
    TxnResult,
)

_LIMIT = 64 * 1024 * 1024


def _b(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _unb(text: str) -> bytes:
    return base64.b64decode(text)


def _kv_json(kv: KeyValue) -> dict[str, Any]:
    d = asdict(kv)
    d["value"] = _b(kv.value)
    return d


def _kv_from(d: dict[str, Any]) -> KeyValue:
    return KeyValue(**{**d, "value": _unb(d["value"])})


def _op_json(op: Op) -> dict[str, Any]:
    if isinstance(op, Put):
        return {"put": op.key, "value": _b(op.value), "lease": op.lease}
    return {"delete": op.key, "prefix": op.prefix}


def _op_from(d: dict[str, Any]) -> Op:
    if "put" in d:
        return Put(d["put"], _unb(d["value"]), int(d["lease"]))
    return Delete(d["delete"], bool(d["prefix"]))


def _cmp_json(c: Compare) -> dict[str, Any]:
    operand: Any = _b(c.operand) if isinstance(c.operand, bytes) else c.operand
    return {"key": c.key, "target": c.target, "op": c.op, "operand": operand}


def _cmp_from(d: dict[str, Any]) -> Compare:
    operand = _unb(d["operand"]) if d["target"] == "value" else int(d["operand"])
    return Compare(d["key"], d["target"], d["op"], operand)


class LocalServer:
    """Serves one MemoryStore on a Unix socket path."""

    def __init__(self, path: str, store: MemoryStore | None = None) -> None:
        self.path = path
        self.store = store or MemoryStore()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=_LIMIT)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
        await self.store.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                request = json.loads(line)
                if request["op"] == "watch":
                    await self._stream(request, writer)
                    return
                try:
                    reply = {"ok": await self._unary(request)}
                except StoreError as exc:
                    reply = {
                        "error": type(exc).__name__,
                        "message": str(exc),
                        "compact": getattr(exc, "compact_revision", 0),
                    }
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, json.JSONDecodeError, KeyError):
            pass
        finally:
            writer.close()

    async def _unary(self, r: dict[str, Any]) -> Any:
        s = self.store
        op = r["op"]
        if op == "get":
            kv = await s.get(r["key"])
            return None if kv is None else _kv_json(kv)
        if op == "get_prefix":
            kvs, rev = await s.get_prefix(r["prefix"])
            return {"kvs": [_kv_json(kv) for kv in kvs], "revision": rev}
        if op == "txn":
            res = await s.txn(
                [_cmp_from(c) for c in r["compares"]],
                [_op_from(o) for o in r["success"]],
                [_op_from(o) for o in r["failure"]],
            )
            return {"succeeded": res.succeeded, "revision": res.revision}
        if op == "grant":
            return await s.grant(int(r["ttl"]))
        if op == "keepalive":
            return await s.keepalive(int(r["lease"]))
        if op == "revoke":
            await s.revoke(int(r["lease"]))
            return None
        if op == "compact":
            await s.compact(int(r["revision"]))
            return None
        raise StoreError(f"unknown op {op!r}")

    async def _stream(self, r: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        try:
            async for batch in self.store.watch_prefix(r["prefix"], int(r["start"])):
                writer.write(
                    json.dumps({"events": [[e.kind, e.key, _b(e.value), e.revision] for e in batch]}).encode() + b"\n"
                )
                await writer.drain()
        except Compacted as exc:
            writer.write(json.dumps({"error": "Compacted", "compact": exc.compact_revision}).encode() + b"\n")
        except StoreUnavailable:
            pass


_ERRORS: dict[str, type[StoreError]] = {"LeaseExpired": LeaseExpired, "StoreUnavailable": StoreUnavailable}


class RemoteStore(Store):
    """The client of a LocalServer."""

    def __init__(self, path: str, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def _request(self, request: dict[str, Any]) -> Any:
        async with self._lock:
            try:
                if self._conn is None:
                    self._conn = await asyncio.open_unix_connection(self.path, limit=_LIMIT)
                reader, writer = self._conn
                writer.write(json.dumps(request).encode() + b"\n")
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), self.timeout)
                if not line:
                    raise ConnectionError("server closed the connection")
            except (TimeoutError, OSError) as exc:
                if self._conn is not None:
                    self._conn[1].close()
                self._conn = None
                raise StoreUnavailable(f"local store {self.path}: {exc!r}") from exc
        reply = json.loads(line)
        if "error" in reply:
            if reply["error"] == "Compacted":
                raise Compacted(reply["compact"])
            raise _ERRORS.get(reply["error"], StoreError)(reply["message"])
        return reply["ok"]

    async def get(self, key: str) -> KeyValue | None:
        d = await self._request({"op": "get", "key": key})
        return None if d is None else _kv_from(d)

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        d = await self._request({"op": "get_prefix", "prefix": prefix})
        return [_kv_from(kv) for kv in d["kvs"]], int(d["revision"])

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        d = await self._request(
            {
                "op": "txn",
                "compares": [_cmp_json(c) for c in compares],
                "success": [_op_json(o) for o in success],
                "failure": [_op_json(o) for o in failure],
            }
        )
        return TxnResult(bool(d["succeeded"]), int(d["revision"]))

    async def grant(self, ttl: int) -> int:
        return int(await self._request({"op": "grant", "ttl": ttl}))

    async def keepalive(self, lease: int) -> int:
        return int(await self._request({"op": "keepalive", "lease": lease}))

    async def revoke(self, lease: int) -> None:
        await self._request({"op": "revoke", "lease": lease})

    async def compact(self, revision: int) -> None:
        await self._request({"op": "compact", "revision": revision})

    def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=_LIMIT)
        except OSError as exc:
            raise StoreUnavailable(f"local store {self.path}: {exc!r}") from exc
        try:
            writer.write(json.dumps({"op": "watch", "prefix": prefix, "start": start_revision}).encode() + b"\n")
            await writer.drain()
            while line := await reader.readline():
                d = json.loads(line)
                if "error" in d:
                    raise Compacted(d["compact"])
                yield [Event(k, key, _unb(v), rev) for k, key, v, rev in d["events"]]
            raise StoreUnavailable("local store closed the watch")
        except ConnectionError as exc:
            raise StoreUnavailable(f"local store {self.path}: {exc!r}") from exc
        finally:
            writer.close()

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                self._conn[1].close()
                self._conn = None
