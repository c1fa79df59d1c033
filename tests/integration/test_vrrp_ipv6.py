"""VRRPv3 over IPv6 (ff02::12, link-local sources) with hakeeper and keepalived mixed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from vrrp_lab import Node, wait_for

from conftest import needs_binary, needs_root
from hakeeper.netlab import Lab

pytestmark = pytest.mark.slow
VIP6 = "fd00:91::100"
CONF = """global_defs {{
    vrrp_version 3
}}
vrrp_instance v6 {{
    state BACKUP
    interface eth0
    virtual_router_id 60
    priority {prio}
    advert_int 0.5
    virtual_ipaddress {{
        {vip}/64
    }}
}}
"""


def test_ipv6_mixed_cluster_fails_over(tmp_path: Path) -> None:
    needs_root()
    needs_binary("keepalived")
    with Lab("hkv") as lab:
        nodes = {}
        for i, (name, prio) in enumerate([("a", 200), ("b", 100), ("c", 50)], 1):
            n = Node(name, lab.host(name, {"eth0": [f"fd00:91::{i}/64"]}), tmp_path)
            n.write_conf(CONF.format(prio=prio, vip=VIP6))
            nodes[name] = n
        holders = lambda: [k for k, n in nodes.items() if n.host.has_address("eth0", VIP6)]  # noqa: E731
        nodes["a"].start_hakeeper("--restart-delay", "3")
        nodes["b"].start_keepalived()
        nodes["c"].start_hakeeper()
        wait_for(lambda: holders() == ["a"], 15, "a to hold the IPv6 VIP")
        wait_for(lambda: "Entering BACKUP STATE" in nodes["b"].log.read_text(), 5, "keepalived BACKUP")
        state = nodes["a"].state_path.read_text()
        assert '"drops": {}' in state, state
        nodes["a"].kill_speaker(signal.SIGKILL)
        wait_for(lambda: "a" not in holders(), 1.0, "a to lose the VIP")
        wait_for(lambda: holders() == ["b"], 5, "keepalived to take over")
        # a's speaker is restarted by its supervisor and preempts keepalived (priority 200 > 100).
        wait_for(lambda: holders() == ["a"], 15, "a to preempt")
        client = lab.host("client", {"eth0": ["fd00:91::50/64"]})
        assert client.run(["ping", "-6", "-c", "1", "-W", "2", VIP6]).returncode == 0
