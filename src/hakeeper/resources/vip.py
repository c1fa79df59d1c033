"""A native virtual IP: the address added to an interface with pyroute2 (netlink), announced
with gratuitous ARP. Params: `ip` (address, with /prefix or a separate `cidr_netmask`), `nic`.
Runs in the network namespace the agent runs in. Netlink calls are short but synchronous, so they
run in a worker thread under the action's timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable

from pyroute2 import IPRoute

from hakeeper.resources.base import ResourceAgent, register_class
from hakeeper.resources.result import Result, Status

ARP_REPEATS = 3


class VipAgent(ResourceAgent):
    def _iface(self) -> ipaddress.IPv4Interface:
        ip = self.params.get("ip", "")
        if "/" not in ip:
            ip = f"{ip}/{self.params.get('cidr_netmask', '32')}"
        return ipaddress.IPv4Interface(ip)

    def installed(self) -> str | None:
        try:
            self._iface()
        except ValueError as exc:
            return f"vip: bad `ip`: {exc}"
        if not self.params.get("nic"):
            return "vip: needs a `nic` parameter"
        return None

    def _index(self, ipr: IPRoute) -> int:
        found = ipr.link_lookup(ifname=self.params["nic"])
        if not found:
            raise LookupError(f"no interface {self.params['nic']}")
        return int(found[0])

    def _present(self) -> bool:
        iface = self._iface()
        with IPRoute() as ipr:
            idx = self._index(ipr)
            return any(a.get_attr("IFA_ADDRESS") == str(iface.ip) for a in ipr.get_addr(index=idx, family=2))

    def _add(self) -> str:
        iface = self._iface()
        with IPRoute() as ipr:
            idx = self._index(ipr)
            if not self._present():
                ipr.addr(
                    "add",
                    index=idx,
                    address=str(iface.ip),
                    prefixlen=iface.network.prefixlen,
                    label=self.params.get("label") or None,
                )
            mac = ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")
        _garp(self.params["nic"], mac, str(iface.ip))
        return f"{iface} on {self.params['nic']}"

    def _del(self) -> None:
        iface = self._iface()
        with IPRoute() as ipr:
            idx = self._index(ipr)
            if self._present():
                ipr.addr("del", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)

    async def _do(self, fn: Callable[[], object], timeout: float) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        try:
            out = await asyncio.wait_for(asyncio.to_thread(fn), timeout)
        except TimeoutError:
            return Result(Status.TIMEOUT, None, "netlink did not answer in time")
        except LookupError as exc:
            return Result(Status.NOT_INSTALLED, 5, str(exc))
        except OSError as exc:
            return Result(Status.ERROR, 1, str(exc))
        return Result(Status.SUCCESS, 0, str(out or ""))

    async def start(self, timeout: float) -> Result:
        return await self._do(self._add, timeout)

    async def stop(self, timeout: float) -> Result:
        res = await self._do(self._del, timeout)
        # An interface that has gone cannot hold the address: that is stopped.
        return Result(Status.SUCCESS, 0, res.output) if res.status is Status.NOT_INSTALLED else res

    async def monitor(self, timeout: float) -> Result:
        try:
            present = await asyncio.wait_for(asyncio.to_thread(self._present), timeout)
        except TimeoutError:
            return Result(Status.TIMEOUT, None, "netlink did not answer in time")
        except (LookupError, ValueError, OSError) as exc:
            return Result(Status.NOT_RUNNING, 7, str(exc))
        return Result(Status.SUCCESS, 0, "present") if present else Result(Status.NOT_RUNNING, 7, "absent")


def _garp(nic: str, mac: str, ip: str) -> None:
    """Gratuitous ARP (an ARP request for our own address, sent to broadcast), so neighbours
    and switches learn the VIP's new place at once."""
    hw = bytes.fromhex(mac.replace(":", ""))
    addr = socket.inet_aton(ip)
    frame = b"\xff" * 6 + hw + struct.pack("!H", 0x0806)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + addr + b"\x00" * 6 + addr
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((nic, 0))
        for _ in range(ARP_REPEATS):
            s.send(frame)


def register() -> None:
    register_class("vip", VipAgent)
