"""Seed 004's router80 with one network node on Neutron's keepalived and one on hakeeper.

network7 runs the router as Neutron's L3 agent does: its qrouter namespace and a real keepalived
with the configuration Neutron generates (`hakeeper.l3.neutronka`: state BACKUP, nopreempt,
priority 50, garp_master_delay, advert_int 2, PASS 'openstack', track_interface ha-, the primary
VIP on ha-, virtual_ipaddress_excluded, virtual_routes). network8 runs `hakeeper l3-agent`. They
form one router: one master, and the router fails over both ways with traffic through the
floating IP, so network nodes can be replaced one at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "l3"))
from seed004 import write_seed_files

from conftest import needs_binary, needs_root
from hakeeper.l3 import dataplane, netns
from hakeeper.l3.agent import layouts_for, node_schedule
from hakeeper.l3.model import RouterSpec
from hakeeper.l3.neutron import read_neutron
from hakeeper.l3.neutronka import keepalived_conf
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec
from hakeeper.netlab import Host, Lab

SRC = Path(__file__).resolve().parents[3] / "src"
RID = "7a46dba8-8846-498c-9e10-588664558473"
ROUTERS = f"""\
routers:
  - id: {RID}
    name: router80
    project: service
    interfaces: [{{subnet: vxlan-subnet80, address: 192.168.80.1/24}}]
    gateway: {{network: ext-net80, address: 10.0.80.101/24, upstream: 10.0.80.1}}
    floating-ips: [{{external: 10.0.80.110, fixed: 192.168.80.10}}]
"""
KA, HK = "network7", "network8"  # keepalived (Neutron), hakeeper
NODES = (KA, HK)
PHYSICAL = {"ha": "ha0", "ext-net80": "ex0", "vxlan-subnet80": "in0"}
ADVERT = 2
BOUND = 3 * ADVERT + (256 - 50) / 256  # Master_Down_Interval at priority 50: 6.805 s
VIP = "169.254.0.1/24"


@dataclass
class Mixed:
    lab: Lab
    nodes: dict[str, Host]
    client: Host
    spec: RouterSpec
    spec_file: Path
    workdir: Path
    agent: subprocess.Popen[bytes] | None = None
    keepalived_pids: tuple[int, ...] = ()

    def prefix(self, node: str) -> str:
        return f"{self.lab.prefix}-{self.lab.owner}-{node}-"

    def router_ns(self, node: str) -> str:
        return f"{self.prefix(node)}qrouter-{RID}"

    def master(self, node: str) -> bool:
        out = netns.run(["ip", "-n", self.router_ns(node), "-o", "-4", "addr"], check=False).stdout
        return f" {VIP} " in out

    def masters(self) -> list[str]:
        return [n for n in NODES if netns.exists(self.router_ns(n)) and self.master(n)]

    def hk_state(self) -> str | None:
        try:
            return str(json.loads((self.workdir / "hk.state.json").read_text())["routers"].get(RID))
        except (OSError, ValueError, KeyError):
            return None

    # -- Neutron's node: namespace as the L3 agent builds it, then keepalived ----------------------
    def layout(self) -> dataplane.Layout:
        lay, = layouts_for(self.spec, node_schedule(self.spec, NODES), KA, self.prefix(KA))
        return lay

    def build_keepalived_node(self) -> None:
        with netns.inside(self.nodes[KA].ns):
            dataplane.ensure_bridges(PHYSICAL)
            dataplane.build(self.layout())

    def start_keepalived(self) -> None:
        lay = self.layout()
        conf = self.workdir / "keepalived.conf"
        conf.write_text(keepalived_conf(lay, self.spec.settings, garp_master_delay=5))
        pid, vrrp_pid = self.workdir / "keepalived.pid", self.workdir / "keepalived.pid-vrrp"
        for p in (pid, vrrp_pid):
            p.unlink(missing_ok=True)
        netns.run(["ip", "netns", "exec", lay.namespace, "keepalived", "-P", "-f", str(conf), "-p", str(pid),
                   "-r", str(vrrp_pid)])
        wait_for(lambda: pid.exists() and vrrp_pid.exists(), 10, "keepalived's pid files")
        self.keepalived_pids = tuple(int(p.read_text().split()[0]) for p in (pid, vrrp_pid))

    def start_hakeeper(self) -> None:
        argv = ["nsenter", f"--net=/run/netns/{self.nodes[HK].ns}", sys.executable, "-m", "hakeeper", "l3-agent",
                "--node", HK, "--nodes", ",".join(NODES), "--spec", str(self.spec_file),
                "--netns-prefix", self.prefix(HK), "--state-file", str(self.workdir / "hk.state.json"),
                "--garp-master-delay", "5"]
        for key, dev in PHYSICAL.items():
            argv += ["--physical", f"{key}={dev}"]
        log = open(self.workdir / "hk.log", "ab")  # noqa: SIM115 (the agent keeps it)
        self.agent = subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=str(SRC)), stdout=log, stderr=log)

    def kill(self, node: str) -> float:
        """The node dies: its VRRP processes stopped then killed (no last advert), links cut."""
        pids = list(self.keepalived_pids) if node == KA else [self.agent.pid] if self.agent else []
        t0 = time.monotonic()
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        for ifname in PHYSICAL.values():
            self.nodes[node].cut(ifname)
        if node == HK and self.agent is not None:
            self.agent.wait(timeout=5)
        return t0

    def restore(self, node: str) -> None:
        for ifname in PHYSICAL.values():
            self.nodes[node].restore(ifname)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "hk.log").read_text()[-3000:]
        return ""


def wait_for(cond, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def tcp(host: Host, dst: str, port: int, timeout: float = 2) -> str:
    try:
        out = host.run(["socat", "-T", str(timeout), "-", f"TCP:{dst}:{port},connect-timeout={timeout}"],
                       timeout=timeout + 3)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout.strip()


def _kill_keepalived(pids: tuple[int, ...]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    needs_root()
    needs_binary("keepalived")
    needs_binary("nft", "nftables")
    needs_binary("socat")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3mix")
    conf, ini = write_seed_files(workdir)
    settings = read_neutron(str(conf), str(ini)).settings
    spec = RouterSpec(settings=settings, routers=parse_router_spec(ROUTERS).routers)
    spec_file = workdir / "routers.yaml"
    spec_file.write_text(dump_router_spec(spec))
    seg = {"ha0": "brha", "ex0": "brex", "in0": "brin"}
    with Lab("hkl3m") as lab:
        m = None
        try:
            nodes = {n: lab.host(n, {"ha0": [], "ex0": [], "in0": []}, segments=seg) for n in NODES}
            client = lab.host("client", {"eth0": ["10.0.80.1/24"]}, segments={"eth0": "brex"})
            instance = lab.host("inst", {"eth0": ["192.168.80.10/24"]}, segments={"eth0": "brin"})
            instance.ip("route", "add", "default", "via", "192.168.80.1")
            instance.spawn(["socat", "TCP-LISTEN:7001,fork,reuseaddr", "SYSTEM:echo instance"])
            m = Mixed(lab, nodes, client, spec, spec_file, workdir)
            yield m
        finally:
            if m is not None:
                if m.agent is not None and m.agent.poll() is None:
                    m.agent.terminate()
                    try:
                        m.agent.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        m.agent.kill()
                _kill_keepalived(m.keepalived_pids)
                for n in NODES:
                    for ns in netns.names(m.prefix(n)):
                        netns.delete(ns)


def test_keepalived_and_hakeeper_form_one_router_and_fail_over_both_ways(mixed: Mixed) -> None:
    m = mixed
    # Neutron's node first: keepalived becomes master after Master_Down_Interval.
    m.build_keepalived_node()
    m.start_keepalived()
    wait_for(lambda: m.master(KA), BOUND + 5, "keepalived master")
    # hakeeper's node joins as the standby (nopreempt, equal priority) and stays one.
    m.start_hakeeper()
    wait_for(lambda: m.hk_state() == "standby", 30, "hakeeper standby")
    end = time.monotonic() + BOUND + 1
    while time.monotonic() < end:
        assert m.masters() == [KA], f"masters {m.masters()}; {m.log_tail()}"
        time.sleep(0.2)
    assert m.hk_state() == "standby"
    assert tcp(m.client, "10.0.80.110", 7001) == "instance"

    # keepalived's node dies: hakeeper takes the router over within the VRRP bound.
    t0 = m.kill(KA)
    while tcp(m.client, "10.0.80.110", 7001, timeout=0.5) != "instance":
        assert time.monotonic() - t0 < BOUND + 2, f"no traffic through hakeeper's node; {m.log_tail()}"
    outage = time.monotonic() - t0
    print(f"keepalived -> hakeeper: traffic back {outage:.2f} s after the kill (bound {BOUND:.3f} s)")
    assert outage <= BOUND + 1.0
    assert m.hk_state() == "active"

    # Neutron's node comes back (as after a reboot: namespace rebuilt, links up, keepalived
    # started): it stays backup.
    m.keepalived_pids = ()
    m.build_keepalived_node()
    m.restore(KA)
    m.start_keepalived()
    end = time.monotonic() + BOUND + 2
    while time.monotonic() < end:
        assert m.masters() == [HK], f"masters {m.masters()} after keepalived's return"
        time.sleep(0.2)
    assert tcp(m.client, "10.0.80.110", 7001) == "instance"

    # Now hakeeper's node dies: keepalived takes the router back within the bound.
    t0 = m.kill(HK)
    while tcp(m.client, "10.0.80.110", 7001, timeout=0.5) != "instance":
        assert time.monotonic() - t0 < BOUND + 2, "no traffic through keepalived's node"
    outage = time.monotonic() - t0
    print(f"hakeeper -> keepalived: traffic back {outage:.2f} s after the kill (bound {BOUND:.3f} s)")
    assert outage <= BOUND + 1.0
    assert m.master(KA)
