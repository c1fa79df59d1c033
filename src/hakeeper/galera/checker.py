"""An independent checker of Galera data: a writer inserts numbered rows with autocommit and
records every row whose COMMIT was acknowledged; `verify` then reads every node and reports any
acknowledged row missing anywhere, and whether the nodes agree (same rows, same checksum).

It knows nothing of hakeeper: it talks SQL (PyMySQL) to the nodes' addresses and nothing else, so
it can judge what hakeeper did.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pymysql  # type: ignore[import-untyped]

TABLE = "hkcheck.rows"


@dataclass
class Verdict:
    acknowledged: int
    present: dict[str, int]  # node -> rows it holds
    missing: dict[str, list[int]]  # node -> acknowledged rows it lacks
    checksums: dict[str, str]
    unreachable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.unreachable
            and not any(self.missing.values())
            and len(set(self.checksums.values())) == 1
        )

    def describe(self) -> str:
        lost = {n: m[:10] for n, m in self.missing.items() if m}
        return (
            f"{self.acknowledged} rows acknowledged; present per node {self.present}; "
            f"missing {lost or 'none'}; nodes agree: {len(set(self.checksums.values())) == 1}"
            + (f"; unreachable {self.unreachable}" if self.unreachable else "")
        )


def connect(host: str, user: str, password: str, timeout: float = 2.0) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=host,
        user=user,
        password=password,
        connect_timeout=timeout,
        read_timeout=timeout * 3,
        write_timeout=timeout * 3,
        autocommit=True,
    )


def prepare(host: str, user: str, password: str) -> None:
    conn = connect(host, user, password, timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS hkcheck")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id BIGINT PRIMARY KEY, at DOUBLE NOT NULL) ENGINE=InnoDB")
    finally:
        conn.close()


class Writer:
    """Inserts rows 1, 2, 3, ... through the first host that answers, moving to the next on any
    error (a client behind a VIP does the same, the VIP moving for it). A row is acknowledged only
    when its INSERT returned; a row whose INSERT failed is retried under a new number, and may or
    may not exist (Galera can commit and lose the answer): never counted as lost."""

    def __init__(
        self, hosts: Sequence[str], user: str, password: str, interval: float = 0.01, first_id: int | None = None
    ) -> None:
        self.hosts = list(hosts)
        self.user, self.password = user, password
        self.interval = interval
        self.acked: list[tuple[int, float, str]] = []  # (row, when acknowledged (monotonic), through which host)
        self.errors: list[tuple[float, str]] = []
        # Rows numbered from the start time in microseconds: writers of one table, started
        # seconds apart, never reuse each other's numbers (a duplicate key is not a fault).
        self.next_id = first_id if first_id is not None else int(time.time() * 1e6)
        self._current = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="galera-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def acknowledged(self) -> set[int]:
        with self._lock:
            return {row for row, _, _ in self.acked}

    def first_ack_after(self, t: float, hosts: Sequence[str] | None = None) -> float | None:
        """When the first row after `t` was acknowledged (through one of `hosts`, if given)."""
        with self._lock:
            return next((at for _, at, via in self.acked if at > t and (hosts is None or via in hosts)), None)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without an acknowledgement between `start` and `end` (monotonic):
        how long writes stalled around a fault."""
        with self._lock:
            times = [start, *(at for _, at, _ in self.acked if start < at < end), end]
        return max(b - a for a, b in itertools.pairwise(times))

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.hosts[self._current], self.user, self.password, timeout=1.0)
                row = self.next_id
                self.next_id += 1
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {TABLE} (id, at) VALUES (%s, %s)", (row, time.time()))
                with self._lock:
                    self.acked.append((row, time.monotonic(), self.hosts[self._current]))
            except pymysql.MySQLError as exc:
                self.errors.append((time.monotonic(), f"{self.hosts[self._current]}: {exc}"))
                if conn is not None:
                    with contextlib.suppress(pymysql.MySQLError):
                        conn.close()
                conn = None
                self._current = (self._current + 1) % len(self.hosts)
                self._stop.wait(0.05)
                continue
            self._stop.wait(self.interval)
        if conn is not None:
            with contextlib.suppress(pymysql.MySQLError):
                conn.close()


def node_rows(host: str, user: str, password: str) -> set[int]:
    conn = connect(host, user, password, timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")  # read after everything the cluster committed
            cur.execute(f"SELECT id FROM {TABLE}")
            return {int(r[0]) for r in cur.fetchall()}
    finally:
        conn.close()


def verify(nodes: dict[str, str], acked: set[int], user: str, password: str) -> Verdict:
    """Every acknowledged row on every node (name -> address), and the nodes agreeing."""
    present: dict[str, int] = {}
    missing: dict[str, list[int]] = {}
    checksums: dict[str, str] = {}
    unreachable: list[str] = []
    for name, host in nodes.items():
        try:
            rows = node_rows(host, user, password)
        except pymysql.MySQLError:
            unreachable.append(name)
            continue
        present[name] = len(rows)
        missing[name] = sorted(acked - rows)
        checksums[name] = hashlib.sha256(",".join(map(str, sorted(rows))).encode()).hexdigest()[:16]
    return Verdict(len(acked), present, missing, checksums, unreachable)
