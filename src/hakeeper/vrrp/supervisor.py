"""No stale VIP after SIGKILL: a small parent process watches the speaker and the speaker watches it.

keepalived leaves its VIPs configured when its VRRP process is SIGKILLed, so the dead master keeps
answering ARP for an address the new master also holds. Here the process the operator starts is a
thin supervisor that forks the speaker:

* speaker dies (any signal, crash): the parent, woken by waitpid at once, removes the VIPs it finds
  on this host and sends a priority-0 advert for each instance that held them, so a backup takes
  over after Skew_Time; then it restarts the speaker after a delay, or exits.
* parent dies: the kernel sends the speaker SIGTERM (PR_SET_PDEATHSIG), and the speaker stops
  gracefully: priority 0, VIPs withdrawn.
* both die (the whole group SIGKILLed): `hakeeper vrrp --cleanup` from the unit's ExecStopPost.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
import os
import signal
import time
from collections.abc import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hakeeper.vrrp import netio
from hakeeper.vrrp.config import Config, Instance
from hakeeper.vrrp.machine import PRIO_STOP
from hakeeper.vrrp.packet import VRRP_GROUP_V4, VRRP_GROUP_V6, Advert, encode, ipv4_header

log = logging.getLogger("hakeeper.vrrp")
PR_SET_PDEATHSIG = 1


def withdraw(cfg: Config) -> list[str]:
    """Remove every configured VIP present on this host; priority 0 for each instance that held one.

    Returns the names of those instances."""
    held_by: list[str] = []
    vip_strs = {str(v.address.ip) for i in cfg.instances for v in i.vips + i.excluded_vips}
    with IPRoute() as ipr:
        links = netio.links(ipr)
        for inst in cfg.instances:
            link = links.get(inst.interface)
            if link is None:
                continue
            held = False
            for vip in inst.vips + inst.excluded_vips:
                dev = links.get(vip.dev or inst.interface)
                if dev is not None:
                    with contextlib.suppress(OSError, NetlinkError):
                        held = netio.del_address_sync(ipr, dev.index, vip.address) or held
            if held:
                held_by.append(inst.name)
                _send_stop(inst, link, vip_strs)
    return held_by


def _send_stop(inst: Instance, link: netio.Link, vip_strs: set[str]) -> None:
    fam = inst.family
    src_s = inst.unicast_src_ip or inst.mcast_src_ip
    src = ipaddress.ip_address(src_s) if src_s else netio.primary_address(link, fam, vip_strs)
    if src is None:
        return
    dsts = [ipaddress.ip_address(p) for p in inst.unicast_peers] or [
        ipaddress.ip_address(VRRP_GROUP_V4 if fam == 4 else VRRP_GROUP_V6)
    ]
    adv = Advert(inst.version, inst.vrid, PRIO_STOP, inst.interval_cs, tuple(v.address.ip for v in inst.vips),
                 inst.auth_type, inst.auth_pass)
    try:
        if fam == 4:
            s = netio.vrrp_socket_v4(inst.interface, link.index, multicast=False)
        else:
            s = netio.vrrp_socket_v6(inst.interface, link.index, multicast=False)
    except OSError as exc:
        log.warning("%s: cannot send priority 0: %s", inst.name, exc)
        return
    with s:
        for dst in dsts:
            payload = encode(adv, src, dst)
            if fam == 4:
                assert isinstance(src, ipaddress.IPv4Address) and isinstance(dst, ipaddress.IPv4Address)
                netio.send_quietly(s, ipv4_header(src, dst, len(payload)) + payload, (str(dst), 0))
            else:
                netio.send_v6(s, payload, src, dst, link.index)


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when our parent dies; if it already has, stop now."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(cfg: Config, child_main: Callable[[], int], restart_delay: float | None,
              speaker_pid_file: str | None = None) -> int:
    """Fork the speaker and watch it; see the module docstring. Returns the exit status."""
    stopping = False
    child = 0

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    parent = os.getpid()
    while True:
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            die_with_parent(parent)
            code = 1
            try:
                code = child_main()
            except BaseException:
                log.exception("speaker failed")
            finally:
                os._exit(code)
        if speaker_pid_file:
            _write_pid(speaker_pid_file, child)
        _, status = os.waitpid(child, 0)
        signalled = os.WIFSIGNALED(status)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        if signalled or code != 0:
            # The speaker did not stop by itself: take its addresses away now.
            held = withdraw(cfg)
            log.warning("speaker %d ended (%s); withdrew addresses of %s", child,
                        f"signal {os.WTERMSIG(status)}" if signalled else f"status {code}", held or "none")
        child = 0
        if stopping or restart_delay is None:
            return 0 if stopping else code
        deadline = time.monotonic() + restart_delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if stopping:
            return 0


def _write_pid(path: str, pid: int) -> None:
    with open(path, "w") as fh:
        fh.write(f"{pid}\n")
