"""`hakeeper galera clustercheck`: the per-node health answer haproxy asks before it sends a
client to a Galera node (the idea of Percona's and Red Hat's `clustercheck` scripts).

Why not haproxy's own `option mysql-check`: it only completes MySQL's handshake. A node that has
fallen into a non-primary component (the minority of a partition), a joiner still receiving its
state transfer, or a donor frozen by an rsync SST all complete the handshake, and each then refuses
or blocks every statement ("WSREP has not yet prepared node for application use"). haproxy would
keep the VIP's writers on such a node. This service answers HTTP 200 only when the node can really
take writes, so haproxy's `option httpchk` moves the writer at once.

The decision (`judge`) is pure: wsrep status in, HTTP code and reason out. The shell asks the
local mariadbd over its unix socket (no password travels, none is stored) and serves:
  GET /        200 or 503 with a one-line reason (what haproxy checks)
  GET /status  the same decision with the wsrep fields, as JSON (what `hakeeper galera status` shows)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SYNCED, DONOR = 4, 2  # wsrep_local_state: 1 joining, 2 donor/desynced, 3 joined, 4 synced


@dataclass(frozen=True)
class WsrepView:
    """What one node says of itself (SHOW GLOBAL STATUS LIKE 'wsrep_%' and @@read_only)."""

    local_state: int
    state_comment: str
    cluster_status: str  # Primary / non-Primary / Disconnected
    ready: bool
    cluster_size: int
    cluster_uuid: str  # the state (history) UUID
    last_committed: int
    node_name: str
    read_only: bool

    @classmethod
    def from_status(cls, status: Mapping[str, str], read_only: bool) -> WsrepView:
        def number(key: str) -> int:
            raw = status.get(key, "").strip()
            return int(raw) if raw.lstrip("-").isdigit() else -1

        return cls(
            local_state=number("wsrep_local_state"),
            state_comment=status.get("wsrep_local_state_comment", ""),
            cluster_status=status.get("wsrep_cluster_status", ""),
            ready=status.get("wsrep_ready", "").upper() == "ON",
            cluster_size=number("wsrep_cluster_size"),
            cluster_uuid=status.get("wsrep_cluster_state_uuid", ""),
            last_committed=number("wsrep_last_committed"),
            node_name=status.get("wsrep_node_name", ""),
            read_only=read_only,
        )


@dataclass(frozen=True)
class Health:
    code: int  # 200 or 503
    reason: str


def judge(view: WsrepView | None, available_when_donor: bool = False) -> Health:
    """Whether haproxy may send clients to this node (pure).

    A donor is usually refused: an rsync SST freezes it for the whole transfer. It is accepted when
    it is the only node that can serve, i.e. the component holds just it and its joiner
    (cluster_size 2), because then refusing it leaves the VIP with no writer at all; or when the
    operator says the SST method keeps donors writable (`--available-when-donor`, mariabackup)."""
    if view is None:
        return Health(503, "database not reachable")
    if view.cluster_status != "Primary":
        return Health(503, f"not in the primary component ({view.cluster_status or 'unknown'})")
    if not view.ready:
        return Health(503, "wsrep not ready")
    if view.read_only:
        return Health(503, "read-only")
    if view.local_state == SYNCED:
        return Health(200, "synced")
    if view.local_state == DONOR:
        if available_when_donor:
            return Health(200, "donor, and donors are writable")
        if view.cluster_size <= 2:
            return Health(200, "donor, and the only node that can serve")
        return Health(503, "donor/desynced while another node can serve")
    return Health(503, f"not synced ({view.state_comment or view.local_state})")


# ----- the shell -----


class LocalNode:
    """The local mariadbd, asked over one kept connection (as root over its unix socket: socket
    authentication, no password). A new connection per check costs a handshake and an
    authentication each time; on a loaded machine that alone outlasted haproxy's check timeout and
    made every node flap. A failed query drops the connection and tries once more anew (a
    restarted mariadbd leaves the old one dead)."""

    def __init__(self, socket: str, timeout: float = 2.0) -> None:
        self.socket, self.timeout = socket, timeout
        self._conn: Any = None
        self._lock = threading.Lock()

    def view(self) -> WsrepView | None:
        import pymysql  # type: ignore[import-untyped]

        with self._lock:
            for _ in range(2):
                try:
                    if self._conn is None:
                        self._conn = pymysql.connect(unix_socket=self.socket, user="root", autocommit=True,
                                                     connect_timeout=self.timeout, read_timeout=self.timeout,
                                                     write_timeout=self.timeout)
                    return _query(self._conn)
                except pymysql.MySQLError:
                    self._drop()
            return None

    def _drop(self) -> None:
        import pymysql

        if self._conn is not None:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                self._conn.close()
        self._conn = None


def _query(conn: Any) -> WsrepView:
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_%'")
        status = {str(k): str(v) for k, v in cur.fetchall()}
        cur.execute("SELECT @@read_only, @@wsrep_node_name")
        read_only, name = cur.fetchone()
    status.setdefault("wsrep_node_name", str(name))
    return WsrepView.from_status(status, bool(int(read_only)))


def _handler(node: LocalNode, available_when_donor: bool) -> type[BaseHTTPRequestHandler]:
    class Check(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            view = node.view()
            health = judge(view, available_when_donor)
            if self.path.rstrip("/") == "/status":
                body = json.dumps({"code": health.code, "reason": health.reason,
                                   "wsrep": None if view is None else asdict(view)})
                kind = "application/json"
            else:
                body, kind = f"{health.reason}\n", "text/plain"
            data = body.encode()
            self.send_response(health.code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return  # haproxy asks every half second; the log would be nothing but that

    return Check


def serve(address: str, port: int, socket: str, available_when_donor: bool,
          ready: threading.Event | None = None) -> None:
    server = ThreadingHTTPServer((address, port), _handler(LocalNode(socket), available_when_donor))
    server.daemon_threads = True
    if ready is not None:
        ready.set()
    server.serve_forever()


def run(args: argparse.Namespace) -> int:
    serve(args.address, args.port, args.socket, args.available_when_donor)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("clustercheck",
                       help="HTTP health of the local Galera node for haproxy (200 only when it can take writes)")
    c.add_argument("--address", default="0.0.0.0", help="listen address (default: all)")
    c.add_argument("--port", type=int, default=9200, help="listen port (default: 9200, as clustercheck)")
    c.add_argument("--socket", default="/run/mysqld/mysqld.sock", help="the local mariadbd's unix socket")
    c.add_argument("--available-when-donor", action="store_true",
                   help="a donor stays writable (mariabackup SST); rsync freezes its donor, so not by default")
    c.set_defaults(handler=run)
