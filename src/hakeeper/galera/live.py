"""The live half of `hakeeper galera status`: what each node's mariadbd says of itself (through
its clustercheck's `/status`, the same answer haproxy acts on) and which node a client of the
MySQL VIP lands on. The store's half (seqno, safe_to_bootstrap, role) is in commands.py.

`render_live` is pure; `probe` and `vip_writer` are the I/O at the edge. Addresses come from the
galera primitive's `cluster_host_map` (node:address;...), else from `wsrep_cluster_address` when
it lists one address per node in node order, as Pacemaker's galera documentation writes it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hakeeper.galera.clustercheck import WsrepView


@dataclass(frozen=True)
class Probe:
    node: str
    address: str | None
    code: int | None  # the clustercheck's answer: 200 takes writes, 503 does not; None: no answer
    reason: str
    wsrep: WsrepView | None


def node_addresses(params: Mapping[str, str], nodes: list[str]) -> dict[str, str]:
    """node -> address to probe, from the galera primitive's parameters (pure)."""
    host_map = params.get("cluster_host_map", "")
    found: dict[str, str] = {}
    for entry in host_map.replace(",", ";").split(";"):
        name, sep, address = entry.strip().partition(":")
        if sep and name in nodes and address:
            found[name] = address
    if found:
        return found
    listed = params.get("wsrep_cluster_address", "").removeprefix("gcomm://").split(",")
    hosts = [h.strip().split(":")[0] for h in listed if h.strip()]
    if len(hosts) == len(nodes):
        return dict(zip(nodes, hosts, strict=True))
    return {n: n for n in nodes if n in hosts}  # the node names themselves resolve


def render_live(probes: list[Probe], vip: str | None, writer: str | None, writer_error: str | None) -> str:
    """The live table (pure)."""
    lines = [f"  {'node':<12} {'wsrep state':<12} {'component':<11} {'size':>4} {'last committed':>14}  "
             f"{'cluster UUID':<36}  haproxy check"]
    for p in probes:
        w = p.wsrep
        state = w.state_comment if w else "-"
        component = w.cluster_status if w else "-"
        size = str(w.cluster_size) if w else "-"
        committed = str(w.last_committed) if w else "-"
        uuid = w.cluster_uuid if w else "-"
        check = "no answer" if p.code is None else f"{p.code} {p.reason}"
        if p.code is None and p.reason:
            check += f" ({p.reason})"
        mark = "  <- VIP writer" if writer is not None and p.node == writer else ""
        lines.append(f"  {p.node:<12} {state:<12} {component:<11} {size:>4} {committed:>14}  {uuid:<36}  {check}{mark}")
    uuids = {p.wsrep.cluster_uuid for p in probes if p.wsrep and p.wsrep.cluster_uuid}
    if len(uuids) > 1:
        lines.append(f"  WARNING: the nodes report {len(uuids)} different cluster histories: {sorted(uuids)}")
    if vip is not None:
        lines.append(f"  VIP {vip} writes to: {writer or f'nobody ({writer_error})'}")
    return "\n".join(lines)


# ----- I/O -----


def probe_one(node: str, address: str | None, port: int, timeout: float) -> Probe:
    if address is None:
        return Probe(node, None, None, "address unknown", None)
    url = f"http://{address}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503 carries the same document
        try:
            doc = json.loads(exc.read())
        except ValueError:
            return Probe(node, address, exc.code, "unreadable answer", None)
    except (OSError, ValueError) as exc:
        return Probe(node, address, None, str(getattr(exc, "reason", exc)), None)
    wsrep = doc.get("wsrep")
    return Probe(node, address, int(doc.get("code", 0)), str(doc.get("reason", "")),
                 None if wsrep is None else WsrepView(**wsrep))


def probe(addresses: Mapping[str, str], nodes: list[str], port: int, timeout: float = 1.0) -> list[Probe]:
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(lambda n: probe_one(n, addresses.get(n), port, timeout), nodes))


def vip_writer(vip: str, defaults_file: str, timeout: float = 2.0) -> tuple[str | None, str | None]:
    """Which node a new client of the VIP lands on (its wsrep_node_name), or why none."""
    import pymysql  # type: ignore[import-untyped]

    host, _, port = vip.partition(":")
    try:
        conn = pymysql.connect(host=host, port=int(port or 3306), read_default_file=defaults_file,
                               connect_timeout=timeout, read_timeout=timeout)
    except pymysql.MySQLError as exc:
        return None, f"cannot connect: {exc.args[-1] if exc.args else exc}"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@wsrep_node_name")
            return str(cur.fetchone()[0]), None
    except pymysql.MySQLError as exc:
        return None, f"query failed: {exc.args[-1] if exc.args else exc}"
    finally:
        conn.close()
