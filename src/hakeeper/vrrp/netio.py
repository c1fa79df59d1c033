"""The speaker's I/O edge: raw VRRP sockets, addresses and links (pyroute2), ARP and NA frames.

Everything here is a thin wrapper over a system call, so the speaker can stay readable. Sockets are
shared per interface and family: many instances on one interface use one socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute, IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hakeeper.vrrp.packet import IPPROTO_VRRP, TTL, VRRP_GROUP_V4, VRRP_GROUP_V6, IPAddr

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IFF_UP, IFF_RUNNING = 0x1, 0x40
IFA_F_NODAD = 0x02
RTMGRP_LINK = 0x1
ETH_P_ARP = 0x0806


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    mac: bytes
    up: bool
    addresses: tuple[str, ...]  # addr without prefix, IPv4 first as the kernel lists them


def links(ipr: IPRoute) -> dict[str, Link]:
    """Every interface of this namespace, with its carrier state and addresses."""
    addrs: dict[int, list[str]] = {}
    for a in ipr.get_addr():
        addrs.setdefault(a["index"], []).append(a.get("address"))
    return {link.name: link for link in (_link(m, addrs) for m in ipr.get_links())}


async def alinks(ipr: AsyncIPRoute) -> dict[str, Link]:
    addrs: dict[int, list[str]] = {}
    async for a in await ipr.get_addr():
        addrs.setdefault(a["index"], []).append(a.get("address"))
    return {link.name: link for link in [_link(m, addrs) async for m in await ipr.get_links()]}


def _link(m: Any, addrs: dict[int, list[str]]) -> Link:
    name, flags = m.get("ifname"), m["flags"]
    mac = bytes.fromhex((m.get("address") or "00:00:00:00:00:00").replace(":", ""))
    up = bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)
    return Link(name, m["index"], mac, up, tuple(addrs.get(m["index"], [])))


VipAddr = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _addr_args(index: int, vip: VipAddr, label: str | None = None, brd: str | None = None,
               scope: int | None = None) -> dict[str, Any]:
    kw: dict[str, Any] = {"index": index, "address": str(vip.ip), "prefixlen": vip.network.prefixlen}
    if scope is not None:
        kw["scope"] = scope
    if vip.version == 4:
        if label:
            kw["label"] = label
        if brd:
            kw["broadcast"] = str(vip.network.broadcast_address) if brd == "+" else brd
    else:
        kw["flags"] = IFA_F_NODAD  # as keepalived: the VIP is ours by election, skip DAD's delay
    return kw


async def add_address(ipr: AsyncIPRoute, index: int, vip: VipAddr, label: str | None = None,
                      brd: str | None = None, scope: int | None = None) -> bool:
    """Add a VIP; True if it was added, False if it was there already."""
    try:
        await ipr.addr("add", **_addr_args(index, vip, label, brd, scope))
    except NetlinkError as exc:
        if exc.code == 17:  # EEXIST
            return False
        raise
    return True


async def del_address(ipr: AsyncIPRoute, index: int, vip: VipAddr) -> bool:
    try:
        await ipr.addr("del", index=index, address=str(vip.ip), prefixlen=vip.network.prefixlen)
    except NetlinkError as exc:
        if exc.code in (99, 19, 2):  # EADDRNOTAVAIL, ENODEV, ENOENT: not there
            return False
        raise
    return True


def del_address_sync(ipr: IPRoute, index: int, vip: VipAddr) -> bool:
    """For the supervisor and --cleanup, which run without an event loop."""
    try:
        ipr.addr("del", index=index, address=str(vip.ip), prefixlen=vip.network.prefixlen)
    except NetlinkError as exc:
        if exc.code in (99, 19, 2):
            return False
        raise
    return True


def link_monitor() -> socket.socket:
    """A netlink socket that becomes readable whenever a link changes (carrier, up/down)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)  # NETLINK_ROUTE
    s.bind((0, RTMGRP_LINK))
    return s


def vrrp_socket_v4(ifname: str, ifindex: int, multicast: bool) -> socket.socket:
    """One raw protocol-112 socket per interface: we write the IPv4 header (TTL 255, our source)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, IPPROTO_VRRP)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    mreqn = socket.inet_aton(VRRP_GROUP_V4) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    if multicast:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    return s


def vrrp_socket_v6(ifname: str, ifindex: int, multicast: bool) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_NONBLOCK, IPPROTO_VRRP)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    # Not bound to our address: a bound raw IPv6 socket would only hear packets sent to it, and
    # adverts go to ff02::12. The source is set per packet (send_v6).
    if multicast:
        mreq = socket.inet_pton(socket.AF_INET6, VRRP_GROUP_V6) + struct.pack("@I", ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    return s


def send_v6(s: socket.socket, payload: bytes, src: IPAddr, dst: IPAddr, ifindex: int) -> bool:
    """Send from `src` exactly: the VRRPv3 checksum covers it."""
    info = src.packed + struct.pack("@I", ifindex)
    try:
        s.sendmsg([payload], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)], 0, (str(dst), 0, 0, ifindex))
    except OSError:
        return False
    return True


def recv_v6(s: socket.socket) -> tuple[bytes, ipaddress.IPv6Address, ipaddress.IPv6Address, int]:
    """One IPv6 VRRP message with its source, destination and hop limit (from ancillary data)."""
    data, anc, _flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4))
    hops, dst = -1, ipaddress.IPv6Address(VRRP_GROUP_V6)
    for level, kind, value in anc:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
            hops = struct.unpack("@i", value[:4])[0]
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            dst = ipaddress.IPv6Address(value[:16])
    src = ipaddress.IPv6Address(addr[0].split("%")[0])
    return data, src, dst, hops


def arp_socket(ifname: str) -> socket.socket:
    """A packet socket for sending whole frames. Protocol 0: it receives nothing, so it can stay
    open without queueing every ARP frame on the link (and without slowing each send down)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
    s.bind((ifname, 0))
    return s


def garp_frame(mac: bytes, ip: ipaddress.IPv4Address) -> bytes:
    """A gratuitous ARP request: sender and target are the VIP, broadcast, as keepalived sends."""
    bcast = b"\xff" * 6
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip.packed + bcast + ip.packed
    return bcast + mac + struct.pack("!H", ETH_P_ARP) + arp


def na_socket(ifname: str, ifindex: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    return s


def na_message(mac: bytes, ip: ipaddress.IPv6Address) -> bytes:
    """An unsolicited neighbour advertisement (Override set) with our link-layer address; the
    kernel fills in the ICMPv6 checksum."""
    return struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ip.packed + bytes([2, 1]) + mac


def send_quietly(s: socket.socket, data: bytes, addr: tuple[object, ...] | str | None = None) -> bool:
    """Send without raising: a link that is down makes sends fail, and that is not our crash."""
    try:
        if addr is None:
            s.send(data)
        else:
            s.sendto(data, addr)
    except OSError:
        return False
    return True


def primary_address(link: Link, family: int, exclude: set[str]) -> IPAddr | None:
    """The interface's own address of `family` (link-local for IPv6), not one of our VIPs."""
    for a in link.addresses:
        with contextlib.suppress(ValueError):
            ip = ipaddress.ip_address(a)
            if ip.version != family or str(ip) in exclude:
                continue
            if family == 6 and not ip.is_link_local:
                continue
            return ip
    return None
