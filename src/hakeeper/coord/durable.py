"""The embedded store kept on disk: a MemoryStore whose every change is in SQLite before it is seen.

`hakeeper store serve --data DIR` runs it. The whole state stays in memory (reads and watches
are the MemoryStore's), and each transaction is committed to DIR/store.db (WAL journal,
synchronous=FULL: the write-ahead log is fsynced before the commit returns) before its revision
becomes visible; so a write a client saw acknowledged survives SIGKILL of the server and a
power loss. On start the file is read back: keys, the global revision, the change history
(watches resume from any revision not compacted) and the leases.

Leases keep their remaining time across a restart. Each lease row holds its deadline on the
server's monotonic clock, and the server records on the same clock, every second, that it is
alive; a restarted server gives each lease what it had left at that last sign of life, so the
downtime is not held against anyone (the same forgiveness as a stalled store, see
MemoryStore._forgive_stall). Otherwise a store restart would look like every node dying.

The file is refused, and nothing in it changed, when it is not a hakeeper store (corrupt, or
another program's SQLite file) or when it was created for another cluster name.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import sqlite3
import time
import uuid
from pathlib import Path

from hakeeper.coord.memory import HISTORY_LIMIT, MemoryStore
from hakeeper.coord.store import Event, KeyValue, StoreUnavailable
from hakeeper.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "/var/lib/hakeeper/store"
DATA_FILE = "store.db"
LOCK_FILE = "store.lock"
APPLICATION_ID = 0x484B5354  # "HKST": marks the SQLite file as a hakeeper store
SCHEMA_VERSION = 1
ALIVE_PERIOD = 1.0
# Physically forget compacted history in batches: a history a little longer than needed is
# harmless (every event in it is real), one DELETE per write is not.
TRIM_BATCH = 1000

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
                 mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL);
CREATE TABLE events (revision INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
                     key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (revision, seq));
CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, deadline REAL NOT NULL);
"""


def _refuse(path: Path, why: str) -> InputError:
    return InputError.at(f"{why}; nothing was changed", file=str(path))


class DurableStore(MemoryStore):
    """Open with DurableStore.open(data_dir, cluster); close() releases the file."""

    def __init__(self, db: sqlite3.Connection, lock_fd: int, path: Path, history_limit: int) -> None:
        super().__init__(history_limit)
        self._db = db
        self._lock_fd = lock_fd
        self.path = path
        self._alive_at = float("-inf")
        self._trimmed = 0
        self.cluster_id = ""

    @classmethod
    def open(cls, data_dir: str | Path, cluster: str, history_limit: int = HISTORY_LIMIT) -> DurableStore:
        """Open (or create) DIR/store.db for `cluster`. InputError when the directory cannot be
        used, another server holds it, or the file is corrupt, foreign or another cluster's."""
        directory = Path(data_dir)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _refuse(directory, f"cannot create the store directory: {exc.strerror}") from None
        path = directory / DATA_FILE
        lock_fd = _lock(directory / LOCK_FILE)
        try:
            db = _open_db(path, cluster)
            try:
                store = cls(db, lock_fd, path, history_limit)
                store._load(cluster)
            except BaseException:
                db.close()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        return store

    # ----- reading the file back -----

    def _load(self, cluster: str) -> None:
        db = self._db
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        if not meta:
            self.cluster_id = str(uuid.uuid4())
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("cluster", cluster),
                        ("cluster_id", self.cluster_id),
                        ("revision", 1),
                        ("compacted", 0),
                        ("next_lease", 0x1000),
                        ("alive_at", time.monotonic()),
                    ],
                )
            return
        self.cluster_id = str(meta["cluster_id"])
        self._revision = int(meta["revision"])
        self._compacted = self._trimmed = int(meta["compacted"])
        for key, value, create, mod, version, lease in db.execute("SELECT * FROM kv"):
            self._data[key] = KeyValue(key, bytes(value), create, mod, version, lease)
        rows = db.execute(
            "SELECT revision, kind, key, value FROM events WHERE revision > ? ORDER BY revision, seq",
            (self._compacted,),
        ).fetchall()
        self._history = [Event(kind, key, bytes(value), rev) for rev, kind, key, value in rows]
        if len(self._history) > self._history_limit:
            drop = len(self._history) - self._history_limit
            self._compacted = self._history[drop - 1].revision
            del self._history[:drop]
        # What each lease had left when the old server was last seen alive, from now on.
        alive_at, now = float(meta["alive_at"]), time.monotonic()
        for lease, ttl, deadline in db.execute("SELECT id, ttl, deadline FROM leases"):
            remaining = min(max(deadline - alive_at, 0.0), float(ttl))
            self._leases[lease] = (ttl, now + remaining)
        self._lease_ids = itertools.count(max([int(meta["next_lease"]), *(i + 1 for i in self._leases)]))
        self._persist_leases()
        log.info(
            "store %s: revision %d, %d keys, %d leases resumed, history from revision %d",
            self.path,
            self._revision,
            len(self._data),
            len(self._leases),
            self._compacted + 1,
        )

    # ----- writing -----

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """One SQLite transaction, fsynced. A failure to write leaves memory ahead of the disk: the
        store stops answering (crash-only), and a restart reads what was really committed."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    self._db.execute(sql, params)
        except sqlite3.Error as exc:
            log.error("store %s: cannot write (%s): stopping", self.path, exc)
            self._closed = True
            raise StoreUnavailable(f"embedded store cannot write {self.path}: {exc}") from exc

    def _commit(self, revision: int, events: list[Event]) -> None:
        statements: list[tuple[str, tuple[object, ...]]] = []
        for seq, e in enumerate(events):
            statements.append(("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (revision, seq, e.kind, e.key, e.value)))
            kv = self._data.get(e.key)
            if e.kind == "put" and kv is not None:
                statements.append(
                    (
                        "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?)",
                        (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease),
                    )
                )
            else:
                statements.append(("DELETE FROM kv WHERE key = ?", (e.key,)))
        statements.append(("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,)))
        if self._compacted - self._trimmed >= TRIM_BATCH:
            statements += self._trim_statements()
        self._write(statements)

    def _trim_statements(self) -> list[tuple[str, tuple[object, ...]]]:
        self._trimmed = self._compacted
        return [
            ("DELETE FROM events WHERE revision <= ?", (self._compacted,)),
            ("UPDATE meta SET value = ? WHERE name = 'compacted'", (self._compacted,)),
        ]

    async def compact(self, revision: int) -> None:
        self._check()
        await super().compact(revision)
        self._write(self._trim_statements())

    async def grant(self, ttl: int) -> int:
        lease = await super().grant(ttl)
        self._write([self._lease_row(lease), ("UPDATE meta SET value = ? WHERE name = 'next_lease'", (lease + 1,))])
        return lease

    async def keepalive(self, lease: int) -> int:
        ttl = await super().keepalive(lease)
        self._write([self._lease_row(lease)])
        return ttl

    def _lease_row(self, lease: int) -> tuple[str, tuple[object, ...]]:
        ttl, deadline = self._leases[lease]
        return "INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (lease, ttl, deadline)

    def _expire(self, lease: int) -> None:
        known = lease in self._leases
        super()._expire(lease)  # its keys' deletion is committed first; a crash in between
        if known:  # leaves a lease row that expires again at once on restart: harmless
            self._write([("DELETE FROM leases WHERE id = ?", (lease,))])

    def _forgive_stall(self, gap: float) -> None:
        super()._forgive_stall(gap)
        self._persist_leases()

    def _persist_leases(self) -> None:
        self._write(
            [("DELETE FROM leases", ())]
            + [self._lease_row(lease) for lease in self._leases]
            + [("UPDATE meta SET value = ? WHERE name = 'alive_at'", (time.monotonic(),))]
        )

    def _tick(self, now: float) -> None:
        if now - self._alive_at >= ALIVE_PERIOD:
            self._alive_at = now
            self._write([("UPDATE meta SET value = ? WHERE name = 'alive_at'", (time.monotonic(),))])

    async def close(self) -> None:
        if self._lock_fd < 0:
            return
        await super().close()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        os.close(self._lock_fd)
        self._lock_fd = -1


def _lock(path: Path) -> int:
    """Hold DIR/store.lock: two servers on one data directory would each keep their own copy."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _refuse(path, f"cannot open the store's lock file: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _refuse(path.parent, "another hakeeper store is serving this data directory") from None
    return fd


def _open_db(path: Path, cluster: str) -> sqlite3.Connection:
    """Connect to the store's file, checking before the first write that it is ours."""
    new = not path.exists() or path.stat().st_size == 0
    if new:
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise _refuse(path, f"cannot create the store file: {exc.strerror}") from None
    elif path.is_symlink() or not path.is_file():
        raise _refuse(path, "it is not a regular file")
    else:
        # Checked read-only: a refused file keeps every byte (a read-write connection would
        # fold a crashed server's write-ahead log into it on closing).
        ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            _check_ours(ro, path, cluster)
        finally:
            ro.close()
    # isolation_level=None: transactions are the explicit `with db:` blocks only.
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if new:
            with db:
                db.execute("BEGIN")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    os.chmod(path, 0o600)
    return db


def _check_ours(db: sqlite3.Connection, path: Path, cluster: str) -> None:
    try:
        app = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if app != APPLICATION_ID:
            raise _refuse(path, "this file is not a hakeeper store (another program's SQLite database)")
        if version != SCHEMA_VERSION:
            raise _refuse(path, f"store format {version} is not the {SCHEMA_VERSION} this hakeeper reads")
        problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise _refuse(path, f"the store file is corrupt ({problems[0]})")
        row = db.execute("SELECT value FROM meta WHERE name = 'cluster'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _refuse(path, f"the store file is corrupt or not a hakeeper store ({exc})") from None
    if row is not None and row[0] != cluster:
        raise _refuse(
            path,
            f"this store belongs to cluster {row[0]!r}, not {cluster!r} "
            "(give --cluster the name it was created with, or another --data directory)",
        )


def open_embedded(data_dir: str | None, cluster: str) -> MemoryStore:
    """The store `hakeeper store serve` runs: on disk in `data_dir`, or in memory (`--memory`: None)."""
    if data_dir is None:
        log.warning("--memory: the store lives in memory and a restart loses it")
        return MemoryStore()
    return DurableStore.open(data_dir, cluster)
