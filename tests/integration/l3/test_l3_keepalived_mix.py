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
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from l3procs import BOUND, R80, AgentNodes, router80_hosts, router80_yaml, tcp, torn_down, wait_for, write_spec

from conftest import needs_binary, needs_root
from hakeeper.l3 import dataplane, netns
from hakeeper.l3.agent import layouts_for, node_schedule
from hakeeper.l3.model import RouterSpec
from hakeeper.l3.neutronka import keepalived_conf
from hakeeper.netlab import Host, Lab

RID = R80
KA, HK = "network7", "network8"  # keepalived (Neutron), hakeeper
NODES = (KA, HK)
PHYSICAL = {"ha": "ha0", "ext-net80": "ex0", "vxlan-subnet80": "in0"}
VIP = "169.254.0.1/24"


@dataclass
class Mixed(AgentNodes):
    client: Host
    spec: RouterSpec
    spec_file: Path
    keepalived_pids: tuple[int, ...] = ()

    def master(self, node: str) -> bool:
        out = netns.run(["ip", "-n", self.router_ns(node, RID), "-o", "-4", "addr"], check=False).stdout
        return f" {VIP} " in out

    def masters(self) -> list[str]:
        return [n for n in NODES if netns.exists(self.router_ns(n, RID)) and self.master(n)]

    def hk_state(self) -> str | None:
        return self.states(HK).get(RID)

    # -- Neutron's node: namespace as the L3 agent builds it, then keepalived ----------------------
    def layout(self) -> dataplane.Layout:
        lay, = layouts_for(self.spec, node_schedule(self.spec, NODES), KA, self.prefix(KA))
        return lay

    def build_keepalived_node(self) -> None:
        with netns.inside(self.hosts[KA].ns):
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
        self.start_agent(HK, PHYSICAL, "--nodes", ",".join(NODES), "--spec", str(self.spec_file))

    def kill(self, node: str) -> float:
        """The node dies: its VRRP processes stopped then killed (no last advert), links cut."""
        agent = self.agents.get(HK)
        pids = list(self.keepalived_pids) if node == KA else [agent.pid] if agent else []
        t0 = time.monotonic()
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        for ifname in PHYSICAL.values():
            self.hosts[node].cut(ifname)
        if node == HK and agent is not None:
            agent.wait(timeout=30)
        return t0

    def restore(self, node: str) -> None:
        for ifname in PHYSICAL.values():
            self.hosts[node].restore(ifname)

    def log_tail(self) -> str:
        return self.logs(3000)


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
    spec, spec_file = write_spec(workdir, router80_yaml())
    with Lab("hkl3m") as lab:
        m: Mixed | None = None
        with torn_down(lambda: m):
            try:
                hosts, client, _ = router80_hosts(lab, NODES, {"ha0": "brha", "ex0": "brex", "in0": "brin"})
                m = Mixed(lab, hosts, workdir, client, spec, spec_file)
                yield m
            finally:
                if m is not None:
                    _kill_keepalived(m.keepalived_pids)  # before its namespace goes


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
