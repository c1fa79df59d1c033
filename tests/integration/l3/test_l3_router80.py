"""Seed 004's router80 on two network nodes in namespaces, one hakeeper l3-agent per node.

ext-net80 10.0.80.0/24 (the external client is the upstream gateway 10.0.80.1, the router has
10.0.80.101 and the floating IP 10.0.80.110), vxlan-subnet80 192.168.80.0/24 (gateway 192.168.80.1,
the instance 192.168.80.10 with the floating IP, and 192.168.80.20 without); plain bridges stand
in for VXLAN and the HA network. Settings: seed 004's neutron.conf and l3_agent.ini (PASS
'openstack', advert_int 2), with the gateway check Neutron recommends turned on
(`ha_vrrp_health_check_interval`, 1 s here; the seed leaves it at Neutron's default, off).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from l3procs import (
    ADVERT,
    BOUND,
    R80,
    AgentNodes,
    env,
    router80_hosts,
    router80_yaml,
    seed_settings,
    store_server,
    tcp,
    torn_down,
    write_spec,
)

from conftest import needs_binary, needs_root
from hakeeper.l3 import gwcheck, netns
from hakeeper.l3.dataplane import bridge_name
from hakeeper.netlab import Host, Lab

RID = R80
NODES = ("network7", "network8")
PHYSICAL = {"ha": "ha0", "ext-net80": "ex0", "vxlan-subnet80": "in0"}


@dataclass
class Cluster(AgentNodes):
    client: Host
    instance: Host
    spec: Path
    store: Path

    def hosting(self) -> dict[str, tuple[str, str]]:
        """`hakeeper router list-hosting router80 --json`: host -> (alive, ha_state)."""
        out = subprocess.run([sys.executable, "-m", "hakeeper", "router", "list-hosting", "router80", "--json",
                              "--store", str(self.store)], capture_output=True, text=True, timeout=120,
                             env=env(), check=False)
        if out.returncode != 0:
            return {}
        return {r["host"]: (r["alive"], r["ha_state"]) for r in json.loads(out.stdout)}

    def start(self, node: str) -> None:
        self.start_agent(node, PHYSICAL, "--nodes", ",".join(NODES), "--spec", str(self.spec),
                         "--store", str(self.store))

    def ha_state(self, node: str) -> str | None:
        return self.states(node).get(RID)

    def active(self) -> list[str]:
        return [n for n in NODES if self.ha_state(n) == "active"]

    def addresses(self, node: str) -> str:
        return netns.run(["ip", "-n", self.router_ns(node, RID), "-o", "addr"], check=False).stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    needs_root()
    needs_binary("nft", "nftables")
    needs_binary("socat")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3")
    _, spec_file = write_spec(workdir, router80_yaml(), seed_settings(workdir, ha_vrrp_health_check_interval=1))
    store = workdir / "store.sock"
    server = store_server(store)
    with Lab("hkl3") as lab:
        c: Cluster | None = None
        with torn_down(lambda: c, server):
            hosts, client, instance = router80_hosts(lab, NODES, {"ha0": "brha", "ex0": "brex", "in0": "brin"},
                                                     ("192.168.80.10/24", "192.168.80.20/24"))
            c = Cluster(lab, hosts, workdir, client, instance, spec_file, store)
            # The client tells each caller its address (SNAT); the instance answers through DNAT.
            client.spawn(["socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR"])
            c.start(NODES[0])
            c.wait_for(lambda: c.ha_state(NODES[0]) == "standby", 120, "first agent up")
            time.sleep(1.5)  # network7 first: it becomes master, network8 then stays backup (nopreempt)
            c.start(NODES[1])
            c.wait_for(lambda: len(c.active()) == 1 and c.ha_state(NODES[1]) == "standby", 120, "one active")
            yield c


def test_one_active_with_addresses_only_there(cluster: Cluster) -> None:
    active, = cluster.active()
    standby = next(n for n in NODES if n != active)
    a, s = cluster.addresses(active), cluster.addresses(standby)
    for addr in ("169.254.0.1/24", "10.0.80.101/24", "10.0.80.110/32", "192.168.80.1/24"):
        assert addr in a and addr not in s
    # Each replica has its own ha- address from l3_ha_net_cidr, as in the seed.
    assert "169.254.192.1/18" in cluster.addresses(NODES[0]) and "169.254.192.2/18" in cluster.addresses(NODES[1])
    route = netns.run(["ip", "-n", cluster.router_ns(active, RID), "route", "show", "default"]).stdout
    assert "via 10.0.80.1" in route
    # On each node the router's ha- bridge port talks only to the uplink (isolated): adverts are
    # for the other nodes, never for the other routers of this node's HA network.
    for n in NODES:
        ports = netns.run(["ip", "-n", cluster.hosts[n].ns, "-d", "-o", "link", "show", "master",
                           bridge_name("ha")]).stdout.splitlines()
        isolated = {line.split(":")[1].strip().split("@")[0]: " isolated on " in line for line in ports}
        assert isolated.pop("ha0") is False and list(isolated.values()) == [True], ports


def test_list_hosting(cluster: Cluster) -> None:
    active, = cluster.active()
    standby = next(n for n in NODES if n != active)
    assert cluster.hosting() == {active: (":-)", "active"), standby: (":-)", "standby")}
    out = subprocess.run([sys.executable, "-m", "hakeeper", "router", "list-hosting", "router80",
                          "--store", str(cluster.store)], capture_output=True, text=True, timeout=120,
                         env=env(), check=True).stdout
    assert f"| {RID} | {active} | True           | :-)   | active   |" in out


def test_snat_and_floating_ip(cluster: Cluster) -> None:
    # SNAT: the instance without a floating IP leaves as the router's gateway address ...
    assert tcp(cluster.instance, "10.0.80.1", 7000, bind="192.168.80.20") == "10.0.80.101"
    # ... the one with a floating IP as its floating IP.
    assert tcp(cluster.instance, "10.0.80.1", 7000, bind="192.168.80.10") == "10.0.80.110"
    # DNAT: the external client reaches the instance through the floating IP.
    assert tcp(cluster.client, "10.0.80.110", 7001) == "instance"


def test_failover_and_return_without_second_active(cluster: Cluster) -> None:
    old, = cluster.active()
    new = next(n for n in NODES if n != old)
    # The node dies: its agent SIGKILLed, its links cut.
    killed_at = time.monotonic()
    cluster.agents[old].send_signal(signal.SIGKILL)
    for ifname in ("ha0", "ex0", "in0"):
        cluster.hosts[old].cut(ifname)
    cluster.agents[old].wait(timeout=5)
    # Traffic through the floating IP comes back through the other node within the VRRP bound.
    while tcp(cluster.client, "10.0.80.110", 7001, timeout=0.5) != "instance":
        assert time.monotonic() - killed_at < BOUND + 1.5, "no traffic through the standby"
    outage = time.monotonic() - killed_at
    print(f"takeover: traffic back {outage:.2f} s after the kill (bound {BOUND:.3f} s)")
    assert outage <= BOUND + 1.0, f"took {outage:.2f} s, bound {BOUND:.3f} s"
    cluster.wait_for(lambda: cluster.ha_state(new) == "active", 1.0, "the new master's state reported")
    # list-hosting tells the truth within one advert interval: the new master active, the dead
    # node not alive and not active.
    back = killed_at + outage
    while True:
        asked = time.monotonic()  # the answer reflects the store at about this moment
        if cluster.hosting() == {new: (":-)", "active"), old: ("xxx", "unknown")}:
            break
        assert asked - back < ADVERT + 1, "list-hosting still wrong"
    print(f"list-hosting right for a call made {max(0.0, asked - back):.2f} s after traffic was back")
    assert asked - back <= ADVERT
    assert tcp(cluster.instance, "10.0.80.1", 7000, bind="192.168.80.20") == "10.0.80.101"
    # The node comes back: its agent starts as a backup and, nopreempt, stays one.
    cluster.start(old)
    cluster.wait_for(lambda: cluster.ha_state(old) == "standby", 120, "returning agent up")
    for ifname in ("ha0", "ex0", "in0"):
        cluster.hosts[old].restore(ifname)
    end = time.monotonic() + 3 * ADVERT + 2
    while time.monotonic() < end:
        assert cluster.active() == [new]
        time.sleep(0.2)
    assert "10.0.80.101" not in cluster.addresses(old)
    assert cluster.hosting() == {new: (":-)", "active"), old: (":-)", "standby")}
    assert tcp(cluster.client, "10.0.80.110", 7001) == "instance"


def _ha_peer(cluster: Cluster, node: str) -> str:
    """The node-side end of router80's ha- port (its only port in the node's HA bridge but ha0)."""
    out = netns.run(["ip", "-n", cluster.hosts[node].ns, "-o", "link", "show", "master", bridge_name("ha")]).stdout
    peers = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    peer, = (p for p in peers if p != "ha0")
    return peer


def test_track_interface_fault_on_lost_ha_carrier(cluster: Cluster) -> None:
    """keepalived's track_interface on ha-, as Neutron configures it: the master whose ha- loses
    carrier (its node-side port down) goes FAULT at once, withdrawing its addresses, and the
    other node takes over; with carrier back it is a backup and stays one (nopreempt)."""
    old, = cluster.active()
    new = next(n for n in NODES if n != old)
    peer = _ha_peer(cluster, old)
    cut_at = time.monotonic()
    netns.run(["ip", "-n", cluster.hosts[old].ns, "link", "set", peer, "down"])
    cluster.wait_for(lambda: cluster.ha_state(old) == "fault", 2.0, "the master FAULT on lost carrier")
    assert "169.254.0.1/24" not in cluster.addresses(old) and "10.0.80.101" not in cluster.addresses(old)
    cluster.wait_for(lambda: cluster.ha_state(new) == "active", BOUND + 1.0, "the other node taking over")
    print(f"track_interface: FAULT, then the other node active {time.monotonic() - cut_at:.2f} s after the cut")
    assert tcp(cluster.client, "10.0.80.110", 7001) == "instance"
    netns.run(["ip", "-n", cluster.hosts[old].ns, "link", "set", peer, "up"])
    cluster.wait_for(lambda: cluster.ha_state(old) == "standby", 2.0, "a backup again with carrier back")
    end = time.monotonic() + 2 * ADVERT
    while time.monotonic() < end:
        assert cluster.active() == [new]
        time.sleep(0.2)
    assert tcp(cluster.client, "10.0.80.110", 7001) == "instance"


def test_gateway_check_hands_the_router_to_the_node_that_reaches_the_gateway(cluster: Cluster) -> None:
    """Neutron's ha_vrrp_health_check_interval: the master's node loses its external network (its
    ext uplink cut; ha- keeps carrier, adverts still flow both ways), its pings to the upstream
    gateway go unanswered, and after two misses it stands down (FAULT, addresses withdrawn, a
    priority-0 advert): the other node, which reaches the gateway, takes over at once. With the
    uplink back, the old master is a backup after the hold and stays one (nopreempt)."""
    old, = cluster.active()
    new = next(n for n in NODES if n != old)
    cut_at = time.monotonic()
    cluster.hosts[old].cut("ex0")
    try:
        # Two missed pings a second apart, each judged at the next round: 2-3 s.
        cluster.wait_for(lambda: cluster.ha_state(old) == "fault", gwcheck.FALL + 3.0, "the master FAULT")
        fault_at = time.monotonic()
        assert "10.0.80.101" not in cluster.addresses(old)
        cluster.wait_for(lambda: cluster.ha_state(new) == "active", 3.0, "the other node taking over")
        print(f"gateway check: FAULT {fault_at - cut_at:.2f} s after the cut, "
              f"the other node active {time.monotonic() - cut_at:.2f} s after it")
        assert tcp(cluster.client, "10.0.80.110", 7001) == "instance"
        assert "gateway-lost" in (cluster.workdir / f"{old}.log").read_text()
    finally:
        cluster.hosts[old].restore("ex0")
    cluster.wait_for(lambda: cluster.ha_state(old) == "standby", gwcheck.hold_time(ADVERT) + 3.0,
                     "a backup again after the hold")
    end = time.monotonic() + 2 * ADVERT
    while time.monotonic() < end:
        assert cluster.active() == [new]
        time.sleep(0.2)
    assert tcp(cluster.client, "10.0.80.110", 7001) == "instance"
