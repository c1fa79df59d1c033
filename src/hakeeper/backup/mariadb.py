"""The database's edge: mariabackup (copy, prepare, copy back), the server's Galera status, and
what a target datadir holds. Everything here runs processes or reads files; decisions are in
plan.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hakeeper.backup.archive import atomic_write
from hakeeper.backup.manifest import DatabasePart, GaleraPosition, grastate_text, parse_galera_info
from hakeeper.backup.plan import Datadir
from hakeeper.errors import InputError
from hakeeper.galera.bootstrap import parse_grastate

# mariabackup names its Galera file xtrabackup_galera_info (10.6) or mariadb_backup_galera_info (10.8+).
GALERA_INFO = ("mariadb_backup_galera_info", "xtrabackup_galera_info")


@dataclass(frozen=True)
class Connection:
    """How to reach the server to copy: its my.cnf (datadir), its socket, a user (root through the
    socket by default, as the server's host administrator)."""

    config: str
    socket: str | None = None
    user: str = "root"

    def client_args(self) -> list[str]:
        return [*([f"--socket={self.socket}"] if self.socket else []), f"--user={self.user}"]


def _run(argv: list[str], what: str, timeout: float = 3600) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise InputError.at(f"`{argv[0]}` is not installed (Debian package mariadb-backup)", field=what) from None
    if out.returncode != 0:
        tail = " | ".join(out.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{what} failed (exit {out.returncode}): {tail[-600:]}")
    return out.stdout + out.stderr


def server_status(conn: Connection) -> dict[str, str]:
    """wsrep_last_committed, the cluster state UUID and the GTID position, as the server reports."""
    query = ("SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN "
             "('WSREP_LAST_COMMITTED','WSREP_LOCAL_STATE_UUID','WSREP_CLUSTER_STATUS') "
             "UNION SELECT 'GTID_BINLOG_POS', @@GLOBAL.gtid_binlog_pos")
    text = _run(["mariadb", f"--defaults-file={conn.config}", *conn.client_args(), "-N", "-B", "-e", query],
                "querying the server")
    return {k.lower(): v for k, _, v in (line.partition("\t") for line in text.splitlines()) if v}


def copy_database(conn: Connection, target: str, host: str) -> DatabasePart:
    """A consistent copy (mariabackup's backup locks: a Galera node stays in the cluster, commits
    wait only while the last non-InnoDB files and the position are taken), prepared at once so a
    restore only copies it back."""
    before = server_status(conn)
    _run(["mariabackup", f"--defaults-file={conn.config}", "--backup", "--galera-info",
          f"--target-dir={target}", *conn.client_args()], "mariabackup --backup")
    _run(["mariabackup", "--prepare", f"--target-dir={target}"], "mariabackup --prepare")
    position = None
    for name in GALERA_INFO:
        path = Path(target, name)
        if path.exists():
            position = parse_galera_info(path.read_text(), str(path))
            break
    last = before.get("wsrep_last_committed")
    return DatabasePart(
        method="mariabackup", position=position, source=host,
        wsrep_last_committed=int(last) if last and last.lstrip("-").isdigit() else None,
        gtid_binlog_pos=before.get("gtid_binlog_pos") or (position.gtid if position else None),
    )


def read_datadir(path: str) -> Datadir:
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise InputError.at("not a directory", file=path, field="--datadir")
        return Datadir(path, exists=False)
    names = os.listdir(path)
    schemas = frozenset(n for n in names if os.path.isdir(os.path.join(path, n)))
    grastate = os.path.join(path, "grastate.dat")
    position = parse_grastate(Path(grastate).read_text(), grastate) if os.path.isfile(grastate) else None
    return Datadir(path, exists=True, nonempty=bool(names), schemas=schemas, position=position)


def set_aside(path: str, to: str) -> None:
    os.rename(path, to)


def copy_back(backup_db: str, datadir: str, position: GaleraPosition | None, owner: str = "mysql") -> None:
    """The prepared copy into an absent datadir, owned by the server's user; then the Galera state
    it bootstraps from."""
    _run(["mariabackup", "--no-defaults", "--copy-back", f"--target-dir={backup_db}", f"--datadir={datadir}"],
         "mariabackup --copy-back")
    for name in (*GALERA_INFO, "mariadb_backup_info", "xtrabackup_info"):
        # Its own bookkeeping, which copy-back may bring along: not part of a server's datadir.
        Path(datadir, name).unlink(missing_ok=True)
    if position is not None:
        atomic_write(os.path.join(datadir, "grastate.dat"), grastate_text(position).encode(), 0o660)
    for dirpath, dirnames, filenames in os.walk(datadir):
        for name in [*dirnames, *filenames]:
            shutil.chown(os.path.join(dirpath, name), owner, owner)
    shutil.chown(datadir, owner, owner)


def table_rows(defaults_file: str, table: str, host: str | None = None) -> list[tuple[str, str, bool]]:
    """(id, status, deleted) of every row of a glance-like or cinder-like table, through PyMySQL
    with the [client] section of `defaults_file` (host, user, password or socket)."""
    import pymysql  # type: ignore[import-untyped]

    if not re.fullmatch(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+", table):
        raise InputError.at("expected SCHEMA.TABLE", field=table)
    try:
        conn = pymysql.connect(read_default_file=defaults_file, connect_timeout=10,
                               **({"host": host} if host else {}))
    except pymysql.MySQLError as exc:
        raise InputError.at(f"cannot connect: {exc.args[-1]}", file=defaults_file) from None
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, status, deleted FROM {table}")
            return [(str(i), str(s), bool(d)) for i, s, d in cur.fetchall()]
    except pymysql.MySQLError as exc:
        raise InputError.at(f"cannot read: {exc.args[-1]}", field=table) from None
    finally:
        conn.close()
