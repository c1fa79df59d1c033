"""Share one embedded MemoryStore between processes on one host, over a Unix socket.

The single-host demo runs several agents as separate processes without etcd. The protocol is
JSON lines: a request {"op": ..., args} gets one reply {"ok": result} or {"error": kind,
"message": text}; a "watch" request turns its connection into a stream of {"events": [...]}
lines. Values travel base64-encoded. RemoteStore is the client side and fulfils the Store
contract; when the server goes away its calls raise StoreUnavailable and its watches end with it.

The socket path is claimed safely (`claim_socket_path`): nothing at the path is ever deleted
unless it is provably a dead socket this server created. The socket is created with mode 0600.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import Any

from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.stall import patient
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
from hakeeper.errors import InputError

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


MARKER_SUFFIX = ".hakeeper"


def _refuse(path: str, why: str) -> InputError:
    return InputError.at(f"{path}: {why}; nothing was changed", field="--socket")


class SocketClaim:
    """The right to serve on a socket path, proved by a marker file beside it (PATH.hakeeper).

    The rule for what already sits at PATH: nothing is ever deleted unless it is a socket, the
    marker records that very socket (its device and inode: hakeeper created it), no hakeeper
    server holds the marker's lock (the one that created it is gone), and connecting to it is
    refused (no other program listens on it either). A regular file, a directory, a symlink, a
    socket someone else made or one that anybody still serves is refused with an InputError.
    Binding never replaces anything by itself (bind fails on an existing path), so the check and
    the bind cannot race into deleting a file that appeared in between. The lock is held while
    serving; it also keeps two servers from claiming one path at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.marker = path + MARKER_SUFFIX
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def acquire(self) -> None:
        try:
            info = os.lstat(self.marker)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise _refuse(self.path, f"cannot inspect {self.marker}: {exc.strerror}") from None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise _refuse(self.path, f"{self.marker} exists and is not hakeeper's marker file")
        try:
            fd = os.open(self.marker, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _refuse(self.path, f"cannot create {self.marker}: {exc.strerror}") from None
        created = info is None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _refuse(self.path, "another hakeeper store is serving on it") from None
            recorded = self._read_marker(fd)
            if recorded is None and not created and os.fstat(fd).st_size:
                raise _refuse(self.path, f"{self.marker} exists and is not hakeeper's marker file")
            self._replace_stale_socket(recorded)
        except BaseException:
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    os.unlink(self.marker)
            raise
        self._fd = fd

    @staticmethod
    def _read_marker(fd: int) -> tuple[int, int] | None:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            doc = json.loads(os.read(fd, 4096) or b"null")
            return (int(doc["dev"]), int(doc["ino"]))
        except (ValueError, TypeError, KeyError):
            return None

    def _replace_stale_socket(self, recorded: tuple[int, int] | None) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _refuse(self.path, f"cannot inspect it: {exc.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise _refuse(self.path, "it is a symbolic link")
        if stat.S_ISDIR(info.st_mode):
            raise _refuse(self.path, "it is a directory")
        if not stat.S_ISSOCK(info.st_mode):
            raise _refuse(self.path, "it exists and is not a socket")
        if _listening(self.path):
            raise _refuse(self.path, "another program is listening on this socket")
        if recorded != (info.st_dev, info.st_ino):
            raise _refuse(self.path, "a socket hakeeper did not create is there (remove it yourself if it is stale)")
        os.unlink(self.path)  # ours, dead: the server that made it is gone

    def bind(self) -> socket.socket:
        """A listening-ready Unix socket at the path, mode 0600, recorded in the marker."""
        assert self._fd is not None, "acquire first"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # no moment where others may connect
        try:
            sock.bind(self.path)
        except OSError as exc:
            sock.close()
            raise _refuse(self.path, f"cannot bind: {exc.strerror}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        info = os.lstat(self.path)
        self._identity = (info.st_dev, info.st_ino)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps({"dev": info.st_dev, "ino": info.st_ino, "pid": os.getpid()}).encode(), 0)
        return sock

    def release(self) -> None:
        """Remove the socket (if it is still the one bound here) and the marker; unlock."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity:
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.unlink(self.marker)
        os.close(self._fd)
        self._fd = None


def _listening(path: str) -> bool:
    """Whether a program accepts connections on the socket at `path` (refused: nobody)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError as exc:
        # A full backlog (EAGAIN) or a timeout still means somebody listens.
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        probe.close()
    return True


class LocalServer:
    """Serves one MemoryStore on a Unix socket path (claimed safely, see SocketClaim)."""

    def __init__(self, path: str, store: MemoryStore | None = None) -> None:
        self.path = path
        self.store = store or MemoryStore()
        self._server: asyncio.AbstractServer | None = None
        self._claim = SocketClaim(path)

    async def start(self) -> None:
        """Raises InputError (nothing deleted, nothing left behind) when the path is taken."""
        self._claim.acquire()
        try:
            sock = self._claim.bind()
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=_LIMIT)
            self.store.start()
        except BaseException:
            self._claim.release()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
        self._claim.release()
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
                # In the time this process ran (coord/stall.py): a starved host is not a dead server.
                line = await patient(reader.readline(), self.timeout)
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
