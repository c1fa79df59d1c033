"""Namespaces, veths and a bridge through iproute2's `ip`, which is the most reliable interface here."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

IP = "ip"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def namespaces() -> list[str]:
    out = run("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def kill_namespace_processes(ns: str) -> None:
    pids = run("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    # Wait briefly so the namespace can be deleted (a process inside keeps it alive).
    deadline = time.monotonic() + 3
    while pids and time.monotonic() < deadline:
        pids = run("netns", "pids", ns, check=False).stdout.split()
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(prefix: str) -> None:
    """Remove namespaces `<prefix>-<pid>-*` (and what runs in them) whose creating process is gone.

    Names carry the pid of the process that built the lab, so two runs at once (a developer's and
    CI's) never sweep each other's hosts away; leftovers of dead runs, and names without a pid,
    are removed."""
    for ns in namespaces():
        if not ns.startswith(prefix + "-"):
            continue
        owner = ns[len(prefix) + 1 :].split("-", 1)[0].split(".", 1)[0]
        if owner.isdigit() and _alive(int(owner)):
            continue
        kill_namespace_processes(ns)
        run("netns", "del", ns, check=False)


def _delete(ns: str) -> None:
    kill_namespace_processes(ns)
    run("netns", "del", ns, check=False)


class Host:
    """One namespace with veths into the lab's bridge."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.ns = f"{lab.prefix}-{lab.owner}-{name}"
        self.ports: dict[str, str] = {}  # interface in the host -> its peer on the switch
        self.procs: list[subprocess.Popen[bytes]] = []

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("-n", self.ns, *args, check=check)

    def cmd(self, argv: Sequence[str]) -> list[str]:
        return [IP, "netns", "exec", self.ns, *argv]

    def run(self, argv: Sequence[str], timeout: float = 30, check: bool = False,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(argv), capture_output=True, text=True, timeout=timeout, check=check,
                              env=dict(env) if env is not None else None)

    def spawn(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
              **kw: Any) -> subprocess.Popen[bytes]:
        """Start a process inside the host; `ip netns exec` execs it, so its pid is the process's."""
        proc = subprocess.Popen(self.cmd(argv), env=dict(env) if env is not None else None, **kw)
        self.procs.append(proc)
        return proc

    def addresses(self, ifname: str) -> list[str]:
        """Addresses on `ifname` as `addr/prefix`."""
        out = self.ip("-o", "addr", "show", "dev", ifname, check=False).stdout
        return [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]

    def has_address(self, ifname: str, address: str) -> bool:
        return any(a.split("/")[0] == address for a in self.addresses(ifname))

    def cut(self, ifname: str) -> None:
        run("-n", self.lab.switch, "link", "set", self.ports[ifname], "down")

    def restore(self, ifname: str) -> None:
        run("-n", self.lab.switch, "link", "set", self.ports[ifname], "up")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        kill_namespace_processes(self.ns)



class StartedOrClosed:
    """A lab used as a context manager: started on entry, closed on exit, and closed at once when
    its start fails part-way, so a half-started lab leaves no process, namespace or file behind."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Lab:
    """A bridge in a switch namespace and hosts plugged into it; a context manager that cleans up."""

    _serial = itertools.count(1)

    def __init__(self, prefix: str, bridge: str = "br0") -> None:
        if len(prefix) > 6:
            raise ValueError("prefix too long: interface names are limited to 15 characters")
        self.prefix = prefix
        # pid.n: labs of one process (n) and of concurrent processes (pid) never share a name.
        self.owner = f"{os.getpid()}.{next(Lab._serial)}"
        self.switch = f"{prefix}-{self.owner}-sw"
        self.bridge = bridge
        self.hosts: dict[str, Host] = {}
        self._ports = 0
        self.bridges: set[str] = set()
        self.root_link: str | None = None

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        sweep(self.prefix)
        run("netns", "add", self.switch)
        run("-n", self.switch, "link", "set", "lo", "up")
        self._add_bridge(self.bridge)

    def _add_bridge(self, bridge: str) -> None:
        run("-n", self.switch, "link", "add", bridge, "type", "bridge")
        # No STP delay: ports forward as soon as they are up.
        run("-n", self.switch, "link", "set", bridge, "type", "bridge", "forward_delay", "0",
            "stp_state", "0")
        run("-n", self.switch, "link", "set", bridge, "up")
        self.bridges.add(bridge)

    def host(self, name: str, links: Mapping[str, Sequence[str]],
             segments: Mapping[str, str] | None = None) -> Host:
        """A host with an interface per key of `links`, each with the given `addr/prefix` list.

        Every interface plugs into the lab's bridge, unless `segments` names another bridge for it
        (created on first use), e.g. {"eth1": "br1"} for a second, separate network."""
        h = Host(self, name)
        run("netns", "add", h.ns)
        h.ip("link", "set", "lo", "up")
        # No duplicate address detection: IPv6 addresses are usable at once, as tests expect.
        for conf in ("all", "default"):
            h.run(["sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0"])
        for ifname, addrs in links.items():
            self._ports += 1
            port = f"{self.prefix}p{self._ports}"
            run("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", h.ns)
            bridge = (segments or {}).get(ifname, self.bridge)
            if bridge not in self.bridges:
                self._add_bridge(bridge)
            run("-n", self.switch, "link", "set", port, "master", bridge, "up")
            for addr in addrs:
                h.ip("addr", "add", addr, "dev", ifname)
            h.ip("link", "set", ifname, "up")
            h.ports[ifname] = port
        self.hosts[name] = h
        return h

    def attach_root(self, address: str) -> str:
        """Plug the root namespace (the test or benchmark itself) into the lab's bridge with
        `address` (addr/prefix), so it reaches the hosts directly; returns the interface's name.

        The name carries the pid (root interface names are shared by every run on the machine);
        the veth dies with the switch namespace, so a dead run's leftover goes with its sweep."""
        if self.root_link is not None:
            raise RuntimeError(f"root namespace already attached as {self.root_link}")
        serial = self.owner.split(".", 1)[1]
        name = f"{self.prefix}r{os.getpid():x}.{serial}"
        if len(name) > 15:
            raise ValueError(f"interface name {name} too long")
        port = f"{self.prefix}rp"
        run("link", "add", name, "type", "veth", "peer", "name", port, "netns", self.switch)
        self.root_link = name
        run("-n", self.switch, "link", "set", port, "master", self.bridge, "up")
        run("addr", "add", address, "dev", name)
        run("link", "set", name, "up")
        return name

    def close(self) -> None:
        if self.root_link is not None:
            run("link", "del", self.root_link, check=False)
            self.root_link = None
        for h in self.hosts.values():
            h.stop()
            _delete(h.ns)
        self.hosts.clear()
        _delete(self.switch)
