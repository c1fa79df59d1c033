"""Mixed clusters of hakeeper and Debian's keepalived on the seed-003 configuration: VRRPv2 with
auth_type PASS as written, and VRRPv3. Each elects the right master and fails over both ways."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from vrrp_lab import KEEPALIVED, Cluster, variant, wait_for

from conftest import needs_binary, needs_root

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    needs_root()
    needs_binary("keepalived")
    with Cluster(tmp_path) as c:
        yield c


def configure(c: Cluster, version: int) -> None:
    for n in c.nodes.values():
        n.write_conf(variant(n.conf.read_text(), version=version))


@pytest.mark.parametrize("version", [2, 3])
def test_keepalived_master_fails_over_to_hakeeper(cluster: Cluster, version: int) -> None:
    configure(cluster, version)
    ka = cluster.nodes["9lpo192"]
    ka.start_keepalived()
    cluster.nodes["9lpo134"].start_hakeeper()
    cluster.nodes["9lpo135"].start_keepalived()
    cluster.wait_holder("9lpo192", timeout=15)
    hk = cluster.nodes["9lpo134"]
    wait_for(lambda: (hk.state()["state"] == "BACKUP" and hk.state()["received"] != 0) or
             hk.state()["state"] == "BACKUP", 5, "hakeeper in BACKUP")
    assert hk.state()["drops"] == {}, hk.state()
    # SIGKILL keepalived entirely: it leaves its VIP behind (the known keepalived weakness), but
    # hakeeper takes over and the client follows its gratuitous ARP.
    ka.kill_all()
    wait_for(lambda: "9lpo134" in cluster.holders(), 8, "hakeeper to take the VIP")
    assert "9lpo135" not in cluster.holders()
    wait_for(lambda: cluster.answered_by() == "9lpo134", 5, "hakeeper node to answer")
    # keepalived comes back with priority 200 and preempts hakeeper.
    ka.start_keepalived()
    cluster.wait_holder("9lpo192", timeout=15)
    wait_for(lambda: hk.state()["state"] == "BACKUP", 5, "hakeeper back to BACKUP")


@pytest.mark.parametrize("version", [2, 3])
def test_hakeeper_master_fails_over_to_keepalived(cluster: Cluster, version: int) -> None:
    configure(cluster, version)
    hk = cluster.nodes["9lpo192"]
    hk.start_hakeeper("--restart-delay", "4")
    cluster.nodes["9lpo134"].start_keepalived()
    cluster.nodes["9lpo135"].start_hakeeper()
    cluster.wait_holder("9lpo192", timeout=15)
    # keepalived's BACKUP hears our adverts: it never takes the VIP while we are master.
    ka_log = cluster.nodes["9lpo134"].log
    wait_for(lambda: "Entering BACKUP STATE" in ka_log.read_text(), 5, "keepalived BACKUP")
    assert hk.state()["drops"] == {}, hk.state()
    hk.kill_speaker(signal.SIGKILL)
    wait_for(lambda: not hk.has_vip(), 1.0, "the killed speaker's VIP to be withdrawn")
    cluster.wait_holder("9lpo134", timeout=5)
    wait_for(lambda: cluster.answered_by() == "9lpo134", 5, "keepalived node to answer")
    # The supervisor restarts the speaker; priority 200 preempts keepalived again.
    cluster.wait_holder("9lpo192", timeout=15)
    assert KEEPALIVED
