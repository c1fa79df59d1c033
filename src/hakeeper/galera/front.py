"""The MySQL VIP's haproxy in front of a Galera cluster: one writer at a time.

Galera certifies writes optimistically: two nodes writing the same rows at once abort each other
("Deadlock found when trying to get lock" at COMMIT), which OpenStack services do not retry
everywhere. So, as OpenStack deployments do, haproxy sends every client to ONE node and keeps the
others as `backup` servers (without `allbackups` only the first healthy backup is used).
`stick on dst` with a one-entry table keeps the writer where it moved: when the first node comes
back, clients stay on the node that took over instead of splitting between two writers.

The health check is hakeeper's clustercheck (galera/clustercheck.py, HTTP on port 9200 of each
node), not `option mysql-check`: see that module for why. `on-marked-down shutdown-sessions` cuts
the connections to a node the moment it is marked down, so clients reconnect to the new writer
instead of waiting for a dead socket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from hakeeper.errors import InputError


@dataclass(frozen=True)
class Front:
    vip: str
    nodes: Mapping[str, str]  # node name -> address, the first one the preferred writer
    port: int = 3306
    check_port: int = 9200
    # A node is dropped after `fall` failed checks, `check_interval_ms` apart, each allowed twice
    # the interval: ~3 s, within the ~5-6 s Galera itself stalls commits to evict a dead member,
    # and slow enough that a clustercheck starved of CPU for a second does not flap every node.
    check_interval_ms: int = 1000
    fall: int = 3
    rise: int = 2
    stats_socket: str | None = None

    def __post_init__(self) -> None:
        if not self.nodes:
            raise InputError.at("needs at least one Galera node", field="nodes")
        for name, address in [("vip", self.vip), *self.nodes.items()]:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise InputError.at(f"not an IPv4 address: {address!r}", field=name) from None


def haproxy_config(front: Front) -> str:
    """haproxy.cfg for the VIP (pure)."""
    lines = ["global", "    maxconn 256"]
    if front.stats_socket:
        lines.append(f"    stats socket {front.stats_socket} mode 600 level admin")
    lines += [
        "",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 1h",
        "    timeout server 1h",
        f"    timeout check {max(front.check_interval_ms * 2, 1000)}ms",
        "",
        "listen mysql-db",
        f"    bind {front.vip}:{front.port}",
        "    option httpchk GET /",
        "    http-check expect status 200",
        "    # one writer: the first healthy server, the others backups; it stays where it moved",
        "    stick-table type ip size 1",
        "    stick on dst",
        f"    default-server port {front.check_port} inter {front.check_interval_ms}ms "
        f"fall {front.fall} rise {front.rise} on-marked-down shutdown-sessions",
    ]
    for i, (name, address) in enumerate(front.nodes.items()):
        lines.append(f"    server {name} {address}:{front.port} check" + (" backup" if i else ""))
    return "\n".join(lines) + "\n"
