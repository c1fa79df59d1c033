"""DHCP for a project network, highly available as seed 004 sets it (`dhcp_agents_per_network = 2`).

Three network nodes follow router80 in the store (seed 004's own neutron.conf and l3_agent.ini);
the spec has the instance's port on vxlan-subnet80 (its MAC and 192.168.80.10). Two of the nodes
serve the network: a dnsmasq in a `qdhcp-vxlan-subnet80` namespace on each, both answering. The
instance is a namespace running busybox's udhcpc, a real DHCP client, whose script records each
lease (address, router, server) and applies it. It gets its address and default route from
either server; when the server it renewed with is killed, it renews from the other one and keeps
its address, and the agent starts that dnsmasq again; when a whole node serving it is lost (agent
and dnsmasq SIGKILLed, links cut) it renews from the survivor, and after `--node-lost-after` the
network is served from the third node too, which answers the same address on its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from l3procs import AgentNodes, env, store_server, torn_down
from seed004 import write_seed_files  # on the path through l3procs

from conftest import needs_binary, needs_root
from hakeeper.l3 import netns
from hakeeper.l3.model import RouterSpec
from hakeeper.l3.neutron import read_neutron
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec
from hakeeper.netlab import Host, Lab

pytestmark = pytest.mark.timeout(600)
NODES = ("network6", "network7", "network8")
SUBNET = "vxlan-subnet80"
MAC = "fa:16:3e:00:80:10"
FIXED = "192.168.80.10"
GATEWAY = "192.168.80.1"
# The DHCP port addresses: the subnet's first hosts after the gateway, one per node by name.
SERVER = {"network6": "192.168.80.2", "network7": "192.168.80.3", "network8": "192.168.80.4"}
LOST_AFTER = 8.0
SPEC = f"""\
routers:
  - id: 7a46dba8-8846-498c-9e10-588664558473
    name: router80
    project: service
    interfaces: [{{subnet: {SUBNET}, address: {GATEWAY}/24}}]
ports:
  - {{subnet: {SUBNET}, mac: "{MAC}", address: {FIXED}, name: vm80}}
"""
# udhcpc runs this at each event with the lease in its environment: apply it, then record it
# (a recorded lease is in place).
CLIENT_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew) ip addr replace "$ip/${{mask:-24}}" dev "$interface"; ip route replace default via "$router" ;;
esac
echo "$1 $ip $router $serverid" >> {events}
"""


@dataclass
class DhcpLab(AgentNodes):
    store: Path
    dhcp_dir: Path = Path("/run")
    instance: Host | None = None
    client: subprocess.Popen[bytes] | None = None

    def start(self, node: str) -> None:
        self.start_agent(node, {"ha": "ha0", SUBNET: "in0"}, "--node-lost-after", str(LOST_AFTER),
                         "--store", str(self.store), "--dhcp-dir", str(self.dhcp_dir / node))

    def namespace(self, node: str) -> str:
        return f"{self.prefix(node)}qdhcp-{SUBNET}"

    def dnsmasq(self, node: str) -> int | None:
        """The pid of the dnsmasq running in the node's qdhcp namespace, if any."""
        if not netns.exists(self.namespace(node)):
            return None
        pids = subprocess.run(["ip", "netns", "pids", self.namespace(node)], capture_output=True, text=True,
                              check=False).stdout.split()
        for pid in pids:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "dnsmasq":
                    return int(pid)
            except OSError:
                continue
        return None

    def serving(self) -> list[str]:
        return [n for n in NODES if self.dnsmasq(n) is not None]

    def leases(self) -> list[tuple[str, str, str, str]]:
        """(event, address, router, server) of each lease the client took, in order."""
        path = self.workdir / "client.events"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(f[0], f[1], f[2], f[3]) for f in (line.split() for line in lines) if len(f) == 4]

    def renew(self, timeout: float = 60) -> tuple[str, str, str, str]:
        """SIGUSR1 to the client (renew now) and its next lease event. The renewal is unicast to
        the server of its lease; if that one does not answer, it rebinds by broadcast."""
        assert self.client is not None
        count = len(self.leases())
        self.client.send_signal(signal.SIGUSR1)
        took = self.wait_for(lambda: len(self.leases()) > count, timeout, "the client's renewal")
        lease = self.leases()[-1]
        print(f"\nrenewed in {took:.1f} s: {lease}")
        return lease

    def logs(self, chars: int = 2000) -> str:
        """The agents' logs, the DHCP servers' and the client's."""
        client = self.workdir / "client.log"
        return "\n".join([super().logs(chars), *(f"== dnsmasq {n}\n" + self.dnsmasq_log(n)[-chars:] for n in NODES),
                          "== client\n" + (client.read_text()[-chars:] if client.exists() else "")])

    def dnsmasq_log(self, node: str) -> str:
        path = self.dhcp_dir / node / self.namespace(node) / "dnsmasq.log"
        return path.read_text() if path.exists() else ""


@contextlib.contextmanager
def _removed(directory: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def dlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DhcpLab]:
    needs_root()
    needs_binary("dnsmasq", "dnsmasq-base")
    needs_binary("busybox", "busybox")
    needs_binary("nft", "nftables")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3dhcp")
    conf, ini = write_seed_files(workdir)
    settings = read_neutron(str(conf), str(ini)).settings  # seed 004: dhcp_agents_per_network = 2
    assert settings.dhcp_agents_per_network == 2
    parsed = parse_router_spec(SPEC)
    spec_file = workdir / "routers.yaml"
    spec_file.write_text(dump_router_spec(RouterSpec(settings=settings, routers=parsed.routers, ports=parsed.ports)))
    store = workdir / "store.sock"
    server = store_server(store)
    # dnsmasq reads its hosts file as 'nobody': pytest's temporary directories are closed to it.
    dhcp_dir = Path(tempfile.mkdtemp(prefix="hkl3d-dhcp-", dir="/run"))
    dhcp_dir.chmod(0o755)
    with Lab("hkl3d") as lab, _removed(dhcp_dir):
        d: DhcpLab | None = None
        with torn_down(lambda: d, server):
            segments = {"ha0": "brha", "in0": "brin"}
            hosts = {n: lab.host(n, {"ha0": [], "in0": []}, segments=segments) for n in NODES}
            d = DhcpLab(lab, hosts, workdir, store, dhcp_dir)
            d.wait_for(store.exists, 60, "store socket")
            out = subprocess.run([sys.executable, "-m", "hakeeper", "router", "init", "--spec", str(spec_file),
                                  "--nodes", ",".join(NODES), "--store", str(store)],
                                 capture_output=True, text=True, timeout=120, env=env(), check=False)
            assert out.returncode == 0, out.stderr
            for n in NODES:
                d.start(n)
            d.wait_for(lambda: len(d.serving()) == 2, 120, "dnsmasq on two network nodes")
            inst = lab.host("inst", {"eth0": []}, segments={"eth0": "brin"})
            inst.ip("link", "set", "eth0", "address", MAC)
            script = workdir / "client.sh"
            script.write_text(CLIENT_SCRIPT.format(events=workdir / "client.events"))
            script.chmod(0o755)
            d.instance = inst
            log = open(workdir / "client.log", "ab")  # noqa: SIM115 (the client keeps it)
            d.client = inst.spawn(["busybox", "udhcpc", "-f", "-i", "eth0", "-s", str(script), "-t", "5", "-T", "1",
                                   "-A", "2"], stdout=log, stderr=log)
            yield d


def test_the_instance_gets_its_port_s_address_and_route_by_dhcp_from_either_server(dlab: DhcpLab) -> None:
    d = dlab
    serving = d.serving()
    assert len(serving) == 2, serving  # dhcp_agents_per_network = 2, on different nodes
    d.wait_for(lambda: any(e[0] == "bound" for e in d.leases()), 60, "a lease")
    _, address, router, server = next(e for e in d.leases() if e[0] == "bound")
    assert (address, router) == (FIXED, GATEWAY)
    assert server in {SERVER[n] for n in serving}
    assert d.instance is not None
    assert f"inet {FIXED}/24" in d.instance.ip("addr", "show", "eth0").stdout
    assert f"default via {GATEWAY}" in d.instance.ip("route").stdout
    # Both servers answered the same address to the instance's DISCOVER (active/active).
    for n in serving:
        d.wait_for(lambda n=n: "DHCPOFFER" in d.dnsmasq_log(n) and f"{FIXED} {MAC}" in d.dnsmasq_log(n), 10,
                   f"{n}'s offer of {FIXED}")
    # The default route works: the router's gateway address answers through it (on its master).
    d.wait_for(lambda: d.instance is not None and d.instance.run(
        ["ping", "-c1", "-W1", GATEWAY]).returncode == 0, 60, "ping of the gateway")


def test_a_hung_dnsmasq_the_instance_renews_from_the_other_a_killed_one_is_restarted(dlab: DhcpLab) -> None:
    d = dlab
    server = d.leases()[-1][3]
    node = next(n for n, a in SERVER.items() if a == server)
    other = next(n for n in d.serving() if n != node)
    pid = d.dnsmasq(node)
    assert pid is not None
    # Hung (stopped, so the agent does not restart it under the client's renewal): the unicast
    # renewal to it goes unanswered, the broadcast one is answered by the other server.
    os.kill(pid, signal.SIGSTOP)
    try:
        assert d.renew() == ("renew", FIXED, GATEWAY, SERVER[other])
    finally:
        os.kill(pid, signal.SIGKILL)
    # Killed: the agent notices within a few seconds and starts it again (Neutron's process monitor).
    d.wait_for(lambda: d.dnsmasq(node) not in (None, pid), 30, f"dnsmasq on {node} started again")


def test_a_lost_node_the_instance_keeps_its_address_and_the_network_moves(dlab: DhcpLab) -> None:
    d = dlab
    server = d.leases()[-1][3]
    victim = next(n for n, a in SERVER.items() if a == server)
    before = d.serving()
    survivor = next(n for n in before if n != victim)
    third = next(n for n in NODES if n not in before)
    # The node dies: its agent and its dnsmasq SIGKILLed, its links cut.
    pid = d.dnsmasq(victim)
    d.agents[victim].kill()
    d.agents[victim].wait(timeout=10)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    d.hosts[victim].cut("ha0")
    d.hosts[victim].cut("in0")
    lost = time.monotonic()
    assert d.renew()[:4] == ("renew", FIXED, GATEWAY, SERVER[survivor])
    # The controller marks the node down after --node-lost-after: the third node serves too.
    took = d.wait_for(lambda: d.dnsmasq(third) is not None, LOST_AFTER + 60, f"dnsmasq on {third}")
    print(f"\nDHCP for {SUBNET} started on {third} {time.monotonic() - lost:.1f} s after the loss ({took:.1f} s wait)")
    assert d.dnsmasq(survivor) is not None  # the survivor's server never moved
    # The new server answers on its own: with the survivor's dnsmasq paused, the instance rebinds
    # with the third node, and keeps its address.
    paused = d.dnsmasq(survivor)
    assert paused is not None
    os.kill(paused, signal.SIGSTOP)
    try:
        assert d.renew()[:4] == ("renew", FIXED, GATEWAY, SERVER[third])
    finally:
        os.kill(paused, signal.SIGCONT)
    assert d.instance is not None and f"inet {FIXED}/24" in d.instance.ip("addr", "show", "eth0").stdout
    # The node returns (links back, agent restarted): it serves the network again and the third
    # node's server goes (rendezvous hashing gives the network back its own nodes).
    d.hosts[victim].restore("ha0")
    d.hosts[victim].restore("in0")
    d.start(victim)
    took = d.wait_for(lambda: d.serving() == sorted(before), LOST_AFTER + 60, f"DHCP back on {before} only")
    print(f"DHCP back on {victim} only {took:.1f} s after its agent started")
