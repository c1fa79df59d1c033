"""A few hosts made of network namespaces on one Linux bridge, for the OpenStack tests and the demo.

Each host is a namespace `<prefix>-<name>` whose `eth0` is one end of a veth pair; the other end is
enslaved to the bridge `<prefix>-br`. Every process started on a host runs in its own session, so a
host can be crashed (SIGKILL of its process groups, link down) and cleaned up without a trace.
`sweep(prefix)` removes whatever a crashed earlier run left behind with that prefix.

(Minimal on purpose: the shared `hakeeper.netlab` was not in main when this was written.)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pyroute2 import IPRoute, netns

Out = int | IO[Any] | None


def _ip(ns: str, *args: str, check: bool = True) -> None:
    # Inside a namespace we use `ip -n`: pyroute2's NetNS forks a helper per use, and a fork of a
    # process with signal handlers (the demo's) must not run its parent's cleanup.
    r = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip -n {ns} {' '.join(args)}: {r.stderr.strip()}")


def _pids_in(ns: str) -> list[int]:
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def _kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def sweep(prefix: str) -> list[str]:
    """Remove namespaces and links named `<prefix>-*` (and kill what runs in them). Returns what went."""
    gone = []
    for ns in netns.listnetns():
        if ns.startswith(f"{prefix}-"):
            _kill_pids(_pids_in(ns))
            with contextlib.suppress(OSError):
                netns.remove(ns)
            gone.append(ns)
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(f"{prefix}-"):
                with contextlib.suppress(Exception):
                    ipr.link("del", index=link["index"])
                gone.append(name)
    return gone


def leftovers(prefix: str) -> list[str]:
    found = [ns for ns in netns.listnetns() if ns.startswith(f"{prefix}-")]
    with IPRoute() as ipr:
        found += [n for link in ipr.get_links() if (n := link.get_attr("IFLA_IFNAME") or "").startswith(f"{prefix}-")]
    return found


@dataclass
class Host:
    name: str
    ns: str
    address: ipaddress.IPv4Address
    prefixlen: int
    veth: str  # the bridge-side end, on the host
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(self, argv: Sequence[str], *, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout, check=check)

    def start(self, argv: Sequence[str], *, stdout: Out = subprocess.DEVNULL, stderr: Out = subprocess.STDOUT,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a process in this host's namespace, in a session of its own (killable as a group)."""
        p = subprocess.Popen(self.argv(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             start_new_session=True, env=env)
        self.processes.append(p)
        return p

    def adopt(self, p: subprocess.Popen[bytes]) -> None:
        self.processes.append(p)

    def crash(self) -> None:
        """SIGKILL every process running in the namespace, then take the link down."""
        for p in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        _kill_pids(_pids_in(self.ns))
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(2)
        self.processes.clear()
        self.set_link(False)

    def set_link(self, up: bool) -> None:
        _ip(self.ns, "link", "set", "eth0", "up" if up else "down")

    def addresses(self) -> list[ipaddress.IPv4Address]:
        # `ip -n` is cheaper than a pyroute2 NetNS round trip, and the demo polls this often.
        r = subprocess.run(["ip", "-n", self.ns, "-o", "-4", "addr", "show", "dev", "eth0"],
                           capture_output=True, text=True, check=False)
        return [ipaddress.IPv4Address(line.split()[3].split("/")[0]) for line in r.stdout.splitlines()
                if len(line.split()) > 3]

    def del_address(self, address: ipaddress.IPv4Address, prefixlen: int) -> None:
        _ip(self.ns, "addr", "del", f"{address}/{prefixlen}", "dev", "eth0", check=False)

    def stop_all(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - time.monotonic()))
        _kill_pids(_pids_in(self.ns))
        self.processes.clear()


class Lab:
    """Hosts on one bridge. Use as a context manager: everything goes on exit, even after errors."""

    def __init__(self, prefix: str, network: str, workdir: str | Path) -> None:
        self.prefix = prefix
        self.network = ipaddress.IPv4Network(network)
        self.workdir = Path(workdir)
        self.bridge = f"{prefix}-br"
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Lab:
        sweep(self.prefix)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with IPRoute() as ipr:
            ipr.link("add", ifname=self.bridge, kind="bridge")
            ipr.link("set", index=ipr.link_lookup(ifname=self.bridge)[0], state="up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop_all()
        self.hosts.clear()
        sweep(self.prefix)

    def add_host(self, name: str, address: str, *, nonlocal_bind: bool = False) -> Host:
        ns = f"{self.prefix}-{name}"
        veth = f"{self.prefix}-{name}"
        if len(veth) > 15:
            raise ValueError(f"interface name {veth!r} is longer than 15 characters")
        addr = ipaddress.IPv4Address(address)
        if addr not in self.network:
            raise ValueError(f"{addr} is outside {self.network}")
        netns.create(ns)
        host = Host(name, ns, addr, self.network.prefixlen, veth)
        self.hosts[name] = host
        with IPRoute() as ipr:
            ipr.link("add", ifname=veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            ipr.link("set", index=ipr.link_lookup(ifname=veth)[0],
                     master=ipr.link_lookup(ifname=self.bridge)[0], state="up")
        _ip(ns, "addr", "add", f"{addr}/{self.network.prefixlen}", "dev", "eth0")
        _ip(ns, "link", "set", "eth0", "up")
        _ip(ns, "link", "set", "lo", "up")
        if nonlocal_bind:
            # haproxy binds the VIPs on every controller, holder or not.
            host.run(["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"])
        return host

    def holders(self, address: ipaddress.IPv4Address) -> list[str]:
        return [h.name for h in self.hosts.values() if address in h.addresses()]


@contextlib.contextmanager
def lab(prefix: str, network: str, workdir: str | Path) -> Iterator[Lab]:
    with Lab(prefix, network, workdir) as it:
        yield it
