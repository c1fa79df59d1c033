"""hakeeper's VRRP on three namespaces running the seed-003 keepalived.conf files unchanged."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vrrp_lab import VIP, Cluster, wait_for

from conftest import needs_root

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    needs_root()
    with Cluster(tmp_path) as c:
        yield c


def start_all(c: Cluster, *extra: str) -> None:
    for n in c.nodes.values():
        n.start_hakeeper(*extra)
    c.wait_holder("9lpo192", timeout=15)


def test_elects_priority_200_and_answers(cluster: Cluster) -> None:
    start_all(cluster)
    assert cluster.answered_by() == "9lpo192"
    wait_for(lambda: cluster.nodes["9lpo134"].state()["state"] == "BACKUP", 5, "134 backup")
    assert cluster.nodes["9lpo135"].state()["state"] == "BACKUP"
    assert cluster.nodes["9lpo192"].state()["drops"] == {}


@pytest.mark.parametrize("victim", ["speaker", "parent"])
def test_sigkill_leaves_no_vip_and_backup_takes_over(cluster: Cluster, victim: str) -> None:
    start_all(cluster, "--restart-delay", "60")
    master = cluster.nodes["9lpo192"]
    if victim == "speaker":
        master.kill_speaker(signal.SIGKILL)
    else:
        master.kill_parent(signal.SIGKILL)
    # Gone from the dead master well within one advert interval (1 s; generous bound for CI).
    wait_for(lambda: not master.has_vip(), 1.0, "the killed master to lose the VIP")
    cluster.wait_holder("9lpo134", timeout=5)
    wait_for(lambda: cluster.answered_by() == "9lpo134", 5, "134 to answer on the VIP")


def test_cut_link_moves_vip_and_restore_preempts(cluster: Cluster) -> None:
    start_all(cluster)
    master = cluster.nodes["9lpo192"]
    master.host.cut("eth0")
    wait_for(lambda: master.state()["state"] == "FAULT", 5, "192 in FAULT")
    assert not master.has_vip()
    cluster.wait_holder("9lpo134", timeout=6)
    wait_for(lambda: cluster.answered_by() == "9lpo134", 5, "134 to answer")
    master.host.restore("eth0")
    cluster.wait_holder("9lpo192", timeout=10)
    wait_for(lambda: cluster.answered_by() == "9lpo192", 5, "192 to answer again")


def test_graceful_stop_hands_over_after_skew_and_nopreempt(cluster: Cluster) -> None:
    for n in cluster.nodes.values():
        text = n.conf.read_text().replace("state MASTER", "state BACKUP")
        n.write_conf(text.replace("    advert_int 1", "    advert_int 1\n    nopreempt"))
    # With nopreempt whoever becomes master first keeps the VIP, so a slow start of 192 would
    # legitimately leave it to another node: start 192 alone, then the others once it holds.
    master = cluster.nodes["9lpo192"]
    master.start_hakeeper()
    cluster.wait_holder("9lpo192", timeout=15)
    for name, n in cluster.nodes.items():
        if name != "9lpo192":
            n.start_hakeeper()
            wait_for(lambda n=n: n.state_path.exists() and n.state()["state"] == "BACKUP", 10, f"{name} backup")
    t0 = time.monotonic()
    master.stop()
    cluster.wait_holder("9lpo134", timeout=5)
    # Priority 0 then Skew_Time (0.61 s): far below Master_Down_Interval (3.6 s). Generous bound.
    assert time.monotonic() - t0 < 3.0
    master.start_hakeeper()
    wait_for(lambda: master.state_path.exists() and master.state()["state"] == "BACKUP", 10, "192 back")
    time.sleep(5)  # more than Master_Down_Interval: with nopreempt 192 must not take over
    assert cluster.holders() == ["9lpo134"]


def test_restart_preempts(cluster: Cluster) -> None:
    start_all(cluster)
    master = cluster.nodes["9lpo192"]
    master.stop()
    cluster.wait_holder("9lpo134", timeout=5)
    master.start_hakeeper()
    cluster.wait_holder("9lpo192", timeout=10)


def test_failing_track_script_moves_vip(cluster: Cluster, tmp_path: Path) -> None:
    flag = tmp_path / "fail-9lpo192"
    for n in cluster.nodes.values():
        # Each node checks its own flag file; only 192's will exist.
        script = (f'vrrp_script chk {{\n    script "/bin/sh -c \'test ! -e {tmp_path}/fail-{n.name}\'"\n'
                  "    interval 0.2\n    weight -150\n}\n")
        text = n.conf.read_text().replace("vrrp_instance", script + "vrrp_instance", 1)
        log = tmp_path / f"{n.name}.notify"
        # notify_master runs as written; `notify` gets keepalived's arguments appended.
        track = (f"    advert_int 1\n    track_script {{\n        chk\n    }}\n"
                 f"    notify_master \"/bin/sh -c 'echo master >> {log}'\"\n"
                 f"    notify \"/bin/sh -c 'echo $* >> {log}' notify\"")
        n.write_conf(text.replace("    advert_int 1", track))
        n.start_hakeeper()
    cluster.wait_holder("9lpo192", timeout=15)
    flag.write_text("")
    cluster.wait_holder("9lpo134", timeout=8)
    assert cluster.nodes["9lpo192"].state()["priority"] == 50
    notes = tmp_path / "9lpo134.notify"
    wait_for(lambda: notes.exists() and "INSTANCE nooip MASTER 100" in notes.read_text(), 5, "notify")
    assert "master" in notes.read_text().split()
    flag.unlink()
    cluster.wait_holder("9lpo192", timeout=8)


FORGE = r"""
import socket, struct, sys
sys.path.insert(0, sys.argv[1])
import ipaddress
from hakeeper.vrrp.packet import Advert, encode, ipv4_header, pad_password
src, dst = ipaddress.IPv4Address("172.16.9.150"), ipaddress.IPv4Address("224.0.0.18")
pw, ttl = sys.argv[2].encode(), int(sys.argv[3])
adv = Advert(2, 200, 254, 100, (ipaddress.IPv4Address("172.16.9.200"),), 1, pad_password(pw))
payload = encode(adv)
head = bytearray(ipv4_header(src, dst, len(payload)))
head[8] = ttl
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
s.setsockopt(socket.SOL_SOCKET, 25, b"eth0")
for _ in range(int(sys.argv[4])):
    s.sendto(bytes(head) + payload, (str(dst), 0))
"""


def test_wrong_password_or_ttl_is_ignored_and_counted(cluster: Cluster, tmp_path: Path) -> None:
    import sys

    from vrrp_lab import ROOT

    start_all(cluster)
    forge = tmp_path / "forge.py"
    forge.write_text(FORGE)
    src = str(ROOT / "src")
    c = cluster.client
    assert c.run([sys.executable, str(forge), src, "wrongpw!", "255", "5"]).returncode == 0
    assert c.run([sys.executable, str(forge), src, "Laevei0kifahkeejaiqu", "64", "5"]).returncode == 0
    master = cluster.nodes["9lpo192"]
    wait_for(lambda: master.state()["drops"] == {"auth": 5, "ttl": 5}, 5, "drops counted")
    assert cluster.holders() == ["9lpo192"]
    # The same packet with the right password and TTL 255 is obeyed: priority 254 takes over.
    assert c.run([sys.executable, str(forge), src, "Laevei0kifahkeejaiqu", "255", "1"]).returncode == 0
    wait_for(lambda: master.state()["state"] == "BACKUP", 5, "192 yields to a valid priority-254 advert")


def test_whole_group_killed_then_cleanup(cluster: Cluster) -> None:
    import os
    import sys

    from vrrp_lab import ROOT

    start_all(cluster, "--restart-delay", "60")
    master = cluster.nodes["9lpo192"]
    master.kill_all()
    # Both processes died at once, so nobody withdrew the VIP: the stale address keepalived leaves.
    assert master.has_vip()
    # What the systemd unit's ExecStopPost runs removes it (and sends priority 0).
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = master.host.run([sys.executable, "-m", "hakeeper", "vrrp", "--cleanup", "--keepalived-conf",
                           str(master.conf)], timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    assert not master.has_vip()
    cluster.wait_holder("9lpo134", timeout=8)
    wait_for(lambda: cluster.answered_by() == "9lpo134", 5, "134 to answer")
    assert VIP in master.conf.read_text()


def test_yaml_config_node_interoperates(cluster: Cluster, tmp_path: Path) -> None:
    """hakeeper's YAML form of the seed's 9lpo134 settings, in the same cluster."""
    y = tmp_path / "9lpo134.yaml"
    y.write_text("""instances:
  - name: nooip
    interface: eth0
    vrid: 200
    priority: 100
    advert_int: 1
    auth_pass: Laevei0kifahkeejaiqu
    vips: [172.16.9.200/24]
""")
    cluster.nodes["9lpo192"].start_hakeeper("--restart-delay", "60")
    cluster.nodes["9lpo134"].start_hakeeper(yaml=y)
    cluster.wait_holder("9lpo192", timeout=15)
    node = cluster.nodes["9lpo134"]
    wait_for(lambda: node.state()["state"] == "BACKUP", 5, "YAML node in BACKUP")
    cluster.nodes["9lpo192"].kill_speaker(signal.SIGKILL)
    cluster.wait_holder("9lpo134", timeout=5)
    assert node.state()["drops"] == {}
