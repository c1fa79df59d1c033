"""DHCP for the project networks on one network node: a `qdhcp-<subnet>` namespace per network the
node serves (`dhcpsched.py` decides which), with a dnsmasq in it, as Neutron's DHCP agent runs them.

The namespace has one port, `ns-...`, whose node end (`tap...`) is in the node's bridge for the
subnet (the same bridge as the routers' qr- ports), with this node's DHCP address. dnsmasq runs as
Neutron configures it: a `static` range (it hands out only the addresses of its host entries, one
per instance port: MAC, host name, fixed address), the router's gateway address as the default
route, its own lease file. Every server of a network has the same host entries, so whichever
answers, and whichever the client renews or rebinds with, the instance gets its port's address:
the lease files need not be shared. No DNS (`--port=0`): the spec has no DNS servers to forward to.

The agent (`l3/agent.py`) applies `DhcpServices.apply` whenever the routers document changes,
and `supervise` every few seconds restarts a dnsmasq that died (Neutron's process monitor).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hakeeper.l3 import netns
from hakeeper.l3.dataplane import _digest, bridge_name, port_mac
from hakeeper.l3.dhcpsched import DhcpHost, DhcpSchedule, networks_of, schedule_dhcp
from hakeeper.l3.model import RouterSpec

log = logging.getLogger("hakeeper.l3.dhcp")

LEASE_SECONDS = 86400  # Neutron's dhcp_lease_duration default
DEFAULT_DIR = "/run/hakeeper/dhcp"


@dataclass(frozen=True)
class DhcpLayout:
    subnet: str
    namespace: str
    port: str  # inside the namespace
    peer: str  # the node side, in the subnet's bridge
    mac: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address
    hosts: tuple[DhcpHost, ...]
    directory: Path

    @property
    def pid_file(self) -> Path:
        return self.directory / "pid"

    def same_server(self, other: DhcpLayout) -> bool:
        """Equal but for the host entries: a change of those is a reload, not a restart."""
        return (self.namespace, self.port, self.mac, self.address, self.gateway) == (
            other.namespace, other.port, other.mac, other.address, other.gateway)


def layouts(spec: RouterSpec, sched: DhcpSchedule, node: str, prefix: str, directory: str) -> list[DhcpLayout]:
    """Pure: the DHCP servers `node` runs."""
    out = []
    for net in networks_of(spec):
        p = sched.networks.get(net.subnet)
        if p is None or node not in p.nodes:
            continue
        ns = f"{prefix}qdhcp-{net.subnet}"
        out.append(DhcpLayout(net.subnet, ns, "ns-" + _digest("dhcp", net.subnet)[:11],
                              "tap" + _digest("dhcp", net.subnet)[:11], port_mac("dhcp", net.subnet, node),
                              p.addresses[node], net.gateway.ip, net.hosts, Path(directory) / ns))
    return out


def hosts_text(hosts: Sequence[DhcpHost]) -> str:
    return "".join(f"{h.mac},{h.name},{h.address}\n" for h in hosts)


def dnsmasq_argv(lay: DhcpLayout) -> list[str]:
    net = lay.address.network
    d = lay.directory
    return ["dnsmasq", "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
            "--bind-interfaces", f"--interface={lay.port}", "--except-interface=lo",
            f"--pid-file={d / 'pid'}", f"--dhcp-hostsfile={d / 'host'}", f"--dhcp-leasefile={d / 'leases'}",
            f"--log-facility={d / 'dnsmasq.log'}", "--log-dhcp",
            f"--dhcp-range=set:net,{net.network_address},static,{net.netmask},{LEASE_SECONDS}s",
            f"--dhcp-option=tag:net,option:router,{lay.gateway}",
            # Each server answers for every port: a REQUEST of a lease the other server granted
            # (a renewal while that one is gone) is acknowledged, not ignored.
            "--dhcp-authoritative"]


def closed_parent(directory: str) -> str | None:
    """The first existing directory on the way to `directory` that others cannot search, if any:
    dnsmasq drops root for 'nobody' before it reads (and on SIGHUP re-reads) its hosts file, and
    an unreadable one leaves it answering nobody ('no address available'), silently."""
    path = Path(directory).absolute()
    for d in [*reversed(path.parents), path]:
        try:
            mode = d.stat().st_mode
        except FileNotFoundError:
            return None  # made by the agent, searchable
        if not mode & 0o001:
            return str(d)
    return None


def pid_of(lay: DhcpLayout) -> int | None:
    """The running dnsmasq of `lay` (its pid file, checked against /proc), or None."""
    try:
        pid = int(lay.pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"dnsmasq" in cmdline and str(lay.directory).encode() in cmdline else None


def _write_hosts(lay: DhcpLayout) -> None:
    tmp = lay.directory / "host.new"
    tmp.write_text(hosts_text(lay.hosts))
    tmp.chmod(0o644)  # dnsmasq re-reads it on SIGHUP after dropping root
    os.replace(tmp, lay.directory / "host")


def start_dnsmasq(lay: DhcpLayout) -> None:
    lay.directory.mkdir(parents=True, exist_ok=True)
    lay.directory.chmod(0o755)
    _write_hosts(lay)
    netns.run(["nsenter", f"--net={os.path.join(netns.NETNS_DIR, lay.namespace)}", *dnsmasq_argv(lay)])


def build(lay: DhcpLayout) -> None:
    """The namespace (anew), its port in the subnet's bridge, and dnsmasq."""
    destroy(lay)
    netns.add(lay.namespace)
    netns.ip_batch([f"link add {lay.peer} type veth peer name {lay.port} address {lay.mac} netns {lay.namespace}",
                    f"link set {lay.peer} addrgenmode none",
                    f"link set {lay.peer} master {bridge_name(lay.subnet)} up"])
    netns.in_netns(lay.namespace, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
    netns.ip_batch(["link set lo up", f"addr add {lay.address} dev {lay.port}", f"link set {lay.port} up"],
                   netns=lay.namespace)
    start_dnsmasq(lay)


def destroy(lay: DhcpLayout) -> None:
    pid = pid_of(lay)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    netns.delete(lay.namespace)  # also kills whatever else runs in it
    netns.ip_batch([f"link del {lay.peer}"], force=True)
    shutil.rmtree(lay.directory, ignore_errors=True)


def reload(lay: DhcpLayout) -> None:
    """New host entries for a running dnsmasq (SIGHUP re-reads the hosts file)."""
    _write_hosts(lay)
    pid = pid_of(lay)
    if pid is None:
        start_dnsmasq(lay)
    else:
        os.kill(pid, signal.SIGHUP)


class DhcpServices:
    """The DHCP servers of this node as the routers document says, applied as differences."""

    def __init__(self, node: str, prefix: str, physical: Sequence[str], directory: str = DEFAULT_DIR) -> None:
        self.node, self.prefix, self.directory = node, prefix, directory
        self.physical = set(physical)
        self.applied: dict[str, DhcpLayout] = {}
        self.started = False
        self.reported: set[str] = set()
        self.lock = asyncio.Lock()  # apply and supervise never run at once

    async def run(self, what: str, *args: object) -> None:
        """`apply`, `supervise` or `stop` on a worker thread (the event loop keeps the routers'
        adverts on time meanwhile), one at a time; a failure is logged, the next call retries."""
        async with self.lock:
            try:
                await asyncio.to_thread(getattr(self, what), *args)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                log.error("DHCP %s: %s", what, exc)

    async def supervise_forever(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if self.applied:  # most nodes serve no DHCP: no worker thread every period for nothing
                await self.run("supervise")

    def apply(self, spec: RouterSpec, nodes: Sequence[str], down: Sequence[str]) -> None:
        """Blocking (`ip`, `nsenter`): the agent runs it on a worker thread."""
        sched = schedule_dhcp(networks_of(spec), nodes, down, spec.settings.dhcp_agents_per_network)
        for problem in sched.problems:
            if problem not in self.reported:
                log.error("%s", problem)
                self.reported.add(problem)
        want = {}
        for lay in layouts(spec, sched, self.node, self.prefix, self.directory):
            if lay.subnet not in self.physical:
                if lay.subnet not in self.reported:
                    log.error("DHCP for %s: this node has no --physical interface for it", lay.subnet)
                    self.reported.add(lay.subnet)
                continue
            want[lay.namespace] = lay
        if not self.started:
            # A namespace left by a previous agent is made anew (a DHCP server's restart is
            # harmless: its peer answers meanwhile); others are no longer this node's.
            for ns in netns.names(f"{self.prefix}qdhcp-"):
                if ns not in want:
                    netns.delete(ns)
            self.started = True
        for ns in [ns for ns in self.applied if ns not in want]:
            log.info("DHCP for %s: removed from this node", self.applied[ns].subnet)
            destroy(self.applied.pop(ns))
        for ns, lay in want.items():
            old = self.applied.get(ns)
            if old is None:
                log.info("DHCP for %s: served from this node as %s", lay.subnet, lay.address)
                build(lay)
            elif not old.same_server(lay):
                build(lay)
            elif old != lay:
                reload(lay)
            self.applied[ns] = lay

    def supervise(self) -> None:
        """Restart each dnsmasq that is gone (blocking: on a worker thread)."""
        for lay in list(self.applied.values()):
            if pid_of(lay) is None:
                log.warning("DHCP for %s: dnsmasq is gone, starting it again", lay.subnet)
                if netns.exists(lay.namespace):
                    start_dnsmasq(lay)
                else:
                    build(lay)

    def stop(self) -> None:
        for lay in self.applied.values():
            destroy(lay)
        self.applied.clear()
