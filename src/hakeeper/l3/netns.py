"""Network namespaces from one process: run code inside a router's namespace, and the commands that
build one (`ip -batch`, `nft -f`, `sysctl`) at setup time.

Sockets belong to the namespace they were created in, whichever namespace the process is in
later. So the speaker opens each router's sockets (VRRP, ARP, netlink) inside that router's
namespace with setns(2) on its own thread, and returns at once: `inside(name)` is a context
manager that must not await (the event loop runs other work between awaits).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the body in namespace `name` (under /run/netns), then come back, even on error."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    # A batch for a thousand routers (3000 veths, 1000 namespaces) is one process: its time
    # grows with its input, and more than a minute on a loaded machine.
    timeout = 60 + 0.2 * (stdin.count("\n") if stdin else 0)
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}: {proc.stderr.strip()[:500]}")
    return proc


def ip_batch(commands: Sequence[str], netns: str | None = None, force: bool = False) -> None:
    """Many `ip` commands in one process (`ip -batch -`): setup of a router costs one fork, not 20."""
    if not commands:
        return
    argv = ["ip", *(["-n", netns] if netns else []), *(["-force"] if force else []), "-batch", "-"]
    run(argv, stdin="\n".join(commands) + "\n", check=not force)


def in_netns(netns: str, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> None:
    # nsenter --net, not `ip netns exec`: that one also builds a private mount namespace, copying
    # the mount table, which holds a mount per namespace: with 1000 routers every command copied
    # 1000+ mounts and building a node's routers grew quadratic. nft and sysctl (/proc/sys/net
    # follows the network namespace) need only the network namespace.
    run(["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", *argv], stdin=stdin, check=check)


def add(name: str) -> None:
    if not exists(name):
        run(["ip", "netns", "add", name])


def delete(name: str) -> None:
    if exists(name):
        for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        run(["ip", "netns", "del", name], check=False)


def names(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []
