"""vrrp_sync_group: a fault on one member's link moves every member's VIP together."""

from __future__ import annotations

from pathlib import Path

import pytest
from vrrp_lab import Node, wait_for

from conftest import needs_root
from hakeeper.netlab import Lab

pytestmark = pytest.mark.slow
CONF = """vrrp_sync_group G {{
    group {{
        outside
        inside
    }}
}}
vrrp_instance outside {{
    interface eth0
    virtual_router_id 1
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        10.91.2.100/24 label eth0:out
    }}
}}
vrrp_instance inside {{
    interface eth1
    virtual_router_id 2
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        10.91.4.100/24 brd 10.91.4.255 scope link
    }}
}}
"""


def test_sync_group_moves_together(tmp_path: Path) -> None:
    needs_root()
    with Lab("hkv") as lab:
        nodes = {}
        for i, (name, prio) in enumerate([("a", 200), ("b", 100)], 1):
            host = lab.host(name, {"eth0": [f"10.91.2.{i}/24"], "eth1": [f"10.91.3.{i}/24"]},
                            segments={"eth1": "br1"})
            nodes[name] = Node(name, host, tmp_path)
            nodes[name].write_conf(CONF.format(prio=prio))
            nodes[name].start_hakeeper()
        a, b = nodes["a"], nodes["b"]

        def holds(n: Node) -> tuple[bool, bool]:
            return n.host.has_address("eth0", "10.91.2.100"), n.host.has_address("eth1", "10.91.4.100")

        wait_for(lambda: holds(a) == (True, True) and holds(b) == (False, False), 15, "a to hold both")
        assert "eth0:out" in a.host.ip("addr", "show", "dev", "eth0").stdout
        inside = a.host.ip("addr", "show", "dev", "eth1").stdout
        assert "inet 10.91.4.100/24 brd 10.91.4.255 scope link" in inside, inside
        a.host.cut("eth1")  # only the inside link fails...
        # ...and the outside VIP follows it, so traffic never enters one node and leaves another.
        wait_for(lambda: holds(b) == (True, True), 8, "b to hold both")
        assert holds(a) == (False, False)
        a.host.restore("eth1")
        wait_for(lambda: holds(a) == (True, True) and holds(b) == (False, False), 15, "a to take both back")
