"""Hosts made of network namespaces for the agent's tests, benchmark and demo (prefix `hka`).

Each host is a namespace with one veth into a shared Linux bridge in the root namespace; the
host's own address is 10.92.<subnet>.<n>/16. `sweep()` removes leftovers of a crashed run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

PREFIX = "hka"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def ns_pids(ns: str) -> list[int]:
    return [int(p) for p in ip("netns", "pids", ns, check=False).stdout.split()]


def kill_ns(ns: str) -> None:
    for pid in ns_pids(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3
    while ns_pids(ns) and time.monotonic() < deadline:
        time.sleep(0.02)


def sweep(prefix: str = PREFIX) -> None:
    for line in ip("netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if ns.startswith(prefix + "-"):
            kill_ns(ns)
            ip("netns", "del", ns, check=False)
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(prefix + "br") or name.startswith(prefix + "h"):
            ip("link", "del", name, check=False)


class Host:
    def __init__(self, ns: str, address: str, ifname: str = "eth0") -> None:
        self.ns = ns
        self.address = address  # with prefix length
        self.ifname = ifname
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def cmd(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(
        self, argv: Sequence[str], timeout: float = 30, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.cmd(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, log: str | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            self.cmd(argv),
            env=dict(env) if env is not None else None,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        if log:
            out.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def addresses(self) -> list[str]:
        out = ip("-n", self.ns, "-o", "-4", "addr", "show", "dev", self.ifname, check=False).stdout
        return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]

    def link_down(self) -> None:
        ip("-n", self.ns, "link", "set", self.ifname, "down", check=False)

    def link_up(self) -> None:
        ip("-n", self.ns, "link", "set", self.ifname, "up", check=False)


class Lab:
    """A bridge `hkabr<tag>` and hosts `hka-<tag><name>` on 10.92.<subnet>.0/24 (inside /16)."""

    def __init__(self, tag: str, subnet: int) -> None:
        self.tag = tag
        self.subnet = subnet
        self.bridge = f"{PREFIX}br{tag}"
        self.hosts: dict[str, Host] = {}
        ip("link", "add", self.bridge, "type", "bridge")
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        n = len(self.hosts) + 1
        ns = f"{PREFIX}-{self.tag}{name}"
        peer = f"{PREFIX}h{self.tag}{n}"
        ip("netns", "add", ns)
        ip("link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", peer, "master", self.bridge, "up")
        host = Host(ns, f"10.92.{self.subnet}.{n}/16")
        ip("-n", ns, "addr", "add", host.address, "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            for proc in host.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            kill_ns(host.ns)
            ip("netns", "del", host.ns, check=False)
        for n in range(1, len(self.hosts) + 1):
            ip("link", "del", f"{PREFIX}h{self.tag}{n}", check=False)
        ip("link", "del", self.bridge, check=False)
