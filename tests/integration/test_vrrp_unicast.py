"""Unicast VRRP (unicast_src_ip / unicast_peer) between hakeeper and keepalived, v2 and v3."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from vrrp_lab import Node, wait_for

from conftest import needs_binary, needs_root
from hakeeper.netlab import Lab

pytestmark = pytest.mark.slow
VIP = "10.91.1.100"
CONF = """global_defs {{
    vrrp_version {version}
}}
vrrp_instance uni {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int 1
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


@pytest.mark.parametrize("version", [2, 3])
def test_unicast_with_keepalived(tmp_path: Path, version: int) -> None:
    needs_root()
    needs_binary("keepalived")
    with Lab("hkv") as lab:
        a = Node("a", lab.host("a", {"eth0": ["10.91.1.1/24"]}), tmp_path)
        b = Node("b", lab.host("b", {"eth0": ["10.91.1.2/24"]}), tmp_path)
        a.write_conf(CONF.format(version=version, prio=200, me="10.91.1.1", peer="10.91.1.2", vip=VIP))
        b.write_conf(CONF.format(version=version, prio=100, me="10.91.1.2", peer="10.91.1.1", vip=VIP))
        a.start_hakeeper("--restart-delay", "3")
        b.start_keepalived()
        wait_for(lambda: a.host.has_address("eth0", VIP), 15, "hakeeper master")
        wait_for(lambda: "Entering BACKUP STATE" in b.log.read_text(), 5, "keepalived BACKUP")
        time.sleep(4)  # longer than Master_Down_Interval: keepalived hears us and stays BACKUP
        assert not b.host.has_address("eth0", VIP)
        assert '"drops": {}' in a.state_path.read_text(), a.state_path.read_text()
        a.kill_speaker(signal.SIGKILL)
        wait_for(lambda: b.host.has_address("eth0", VIP), 5, "keepalived to take over")
        assert not a.host.has_address("eth0", VIP)
        wait_for(lambda: a.host.has_address("eth0", VIP) and not b.host.has_address("eth0", VIP), 15,
                 "hakeeper to preempt after its restart")
        # While it waited as BACKUP, the restarted speaker heard keepalived's unicast adverts.
        def state() -> dict[str, object]:
            return json.loads(a.state_path.read_text())["instances"]["uni"]  # type: ignore[no-any-return]

        wait_for(lambda: state()["state"] == "MASTER", 5, "state file to show MASTER")
        st = state()
        assert isinstance(st["received"], int) and st["received"] > 0 and st["drops"] == {}, st
