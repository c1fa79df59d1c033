"""Controller hosts for the OpenStack tests and the demo, on `hakeeper.netlab`.

netlab gives the namespaces (`<prefix>-<name>`, each with an `eth0` into a bridge that lives in the
switch namespace `<prefix>-sw`). This layer adds what a controller failover needs: every process
started on a host runs in a session of its own, so a host can be crashed (SIGKILL of everything in
it, its cable pulled) or stopped gracefully (SIGTERM first, so speakers withdraw their VIPs), and
`sweep(prefix)` removes whatever a crashed earlier run left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from hakeeper import netlab
from hakeeper.netlab.lab import kill_namespace_processes, namespaces

Out = int | IO[Any] | None


class Busy(Exception):
    """Another process holds the prefix: its namespaces are alive, not leftovers."""


LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")


@contextlib.contextmanager
def exclusive(prefix: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the prefix for this process (an flock, released if the process dies). Without it, a
    second run would sweep the first one's namespaces as leftovers. Waits up to `wait` seconds."""
    path = LOCK_DIR / f"hakeeper-lab-{prefix}.lock"
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "?"
                    raise Busy(f"namespaces {prefix}-* are in use by process {holder}") from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sweep(prefix: str) -> list[str]:
    """Remove namespaces named `<prefix>-*` and what runs in them. Returns what went."""
    gone = leftovers(prefix)
    netlab.sweep(prefix)
    return gone


def leftovers(prefix: str) -> list[str]:
    return [ns for ns in namespaces() if ns.startswith(f"{prefix}-")]


class Host:
    def __init__(self, inner: netlab.Host, address: ipaddress.IPv4Address, prefixlen: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.ns = inner.ns
        self.address = address
        self.prefixlen = prefixlen
        self.processes: list[subprocess.Popen[bytes]] = []

    def argv(self, argv: Sequence[str]) -> list[str]:
        return self.inner.cmd(argv)

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
        """SIGKILL every process running in the namespace, then pull its cable."""
        for p in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        kill_namespace_processes(self.ns)
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(2)
        self.processes.clear()
        self.set_link(False)

    def set_link(self, up: bool) -> None:
        # Switch side, as a pulled cable: the host sees NO-CARRIER, its addresses stay.
        if up:
            self.inner.restore("eth0")
        else:
            self.inner.cut("eth0")

    def addresses(self) -> list[ipaddress.IPv4Address]:
        return [ipaddress.IPv4Address(a.split("/")[0]) for a in self.inner.addresses("eth0") if ":" not in a]

    def del_address(self, address: ipaddress.IPv4Address, prefixlen: int) -> None:
        self.inner.ip("addr", "del", f"{address}/{prefixlen}", "dev", "eth0", check=False)

    def stop_all(self) -> None:
        """SIGTERM first (a VRRP speaker withdraws its VIPs, haproxy closes), then SIGKILL the rest."""
        for p in self.processes:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - time.monotonic()))
        self.processes.clear()
        self.inner.stop()


class Lab:
    """Hosts on one bridge. Use as a context manager: everything goes on exit, even after errors."""

    def __init__(self, prefix: str, network: str, workdir: str | Path) -> None:
        self.prefix = prefix
        self.network = ipaddress.IPv4Network(network)
        self.workdir = Path(workdir)
        self.inner = netlab.Lab(prefix)
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Lab:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.inner.start()  # sweeps `<prefix>-*` leftovers first
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop_all()
        self.hosts.clear()
        self.inner.close()

    def add_host(self, name: str, address: str, *, nonlocal_bind: bool = False) -> Host:
        addr = ipaddress.IPv4Address(address)
        if addr not in self.network:
            raise ValueError(f"{addr} is outside {self.network}")
        inner = self.inner.host(name, {"eth0": [f"{addr}/{self.network.prefixlen}"]})
        host = Host(inner, addr, self.network.prefixlen)
        self.hosts[name] = host
        if nonlocal_bind:
            # haproxy binds the VIPs on every controller, holder or not.
            host.run(["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"])
        return host

    def holders(self, address: ipaddress.IPv4Address) -> list[str]:
        return [h.name for h in self.hosts.values() if address in h.addresses()]
