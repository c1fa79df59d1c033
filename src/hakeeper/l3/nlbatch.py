"""A router's master-only addresses and default route as netlink requests prepared in advance.

A takeover must put the VIP, the qr/qg addresses, the floating IPs and the default route in place
at once, for every router that takes over at the same moment (a lost node: all of them). Through
pyroute2's AsyncIPRoute each request costs a few milliseconds of Python (a round trip with the
reply parsed), so a thousand routers (4000 requests) took seconds, in series, and the later
routers' VIPs came long after the VRRP bound. Here the requests are encoded once, with pyroute2's
message classes, when the router is added or changed, and a transition is one `send` of the
ready bytes on a raw netlink socket inside the router's namespace: the kernel applies the
messages of one datagram in order. No acknowledgement is asked for: the kernel answers only a
failed request, and `failures` reads those (an address already there on add, or already gone on
removal, is expected and not reported).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyroute2.netlink import NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

NLMSG_ERROR = 2
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTMGRP_LINK = 0x1
# Up, and with carrier. Not IFF_RUNNING: that follows the operational state, which the kernel
# updates later (link watch), so a port just brought up would look down for a moment.
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE = 20, 21, 24
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1
# An address already there on add; already gone (or its interface) on removal.
_EXPECTED = {RTM_NEWADDR: {errno.EEXIST}, RTM_DELADDR: {errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT}}

Address = tuple[int, ipaddress.IPv4Interface]  # (ifindex, address)


def _address(kind: int, index: int, addr: ipaddress.IPv4Interface, seq: int) -> bytes:
    m = ifaddrmsg()
    m["family"] = socket.AF_INET
    m["prefixlen"] = addr.network.prefixlen
    m["index"] = index
    m["attrs"] = [("IFA_LOCAL", str(addr.ip)), ("IFA_ADDRESS", str(addr.ip))]
    m["header"]["type"] = kind
    m["header"]["flags"] = NLM_F_REQUEST | (NLM_F_CREATE if kind == RTM_NEWADDR else 0)
    m["header"]["sequence_number"] = seq
    m.encode()
    return bytes(m.data)


def _default_route(gateway: ipaddress.IPv4Address, oif: int, seq: int) -> bytes:
    m = rtmsg()
    m["family"] = socket.AF_INET
    m["dst_len"] = 0
    m["table"] = RT_TABLE_MAIN
    m["proto"] = RTPROT_STATIC
    m["scope"] = RT_SCOPE_UNIVERSE
    m["type"] = RTN_UNICAST
    m["attrs"] = [("RTA_GATEWAY", str(gateway)), ("RTA_OIF", oif)]
    m["header"]["type"] = RTM_NEWROUTE
    m["header"]["flags"] = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE
    m["header"]["sequence_number"] = seq
    m.encode()
    return bytes(m.data)


@dataclass(frozen=True)
class Requests:
    """One router's takeover (`add`) and release (`remove`) as ready datagrams; `what` names each
    request by its sequence number, for the log when one fails."""

    add: bytes
    remove: bytes
    what: dict[int, str] = field(default_factory=dict)


def prepare(addresses: Sequence[Address], route: tuple[ipaddress.IPv4Address, int] | None,
            names: dict[int, str]) -> Requests:
    """`addresses` in order (the primary VIP first), then the default route via `route`
    (gateway, ifindex) on add; `names` maps ifindex to the interface name for the log."""
    add, remove, what = [], [], {}
    for n, (index, addr) in enumerate(addresses):
        add.append(_address(RTM_NEWADDR, index, addr, 1 + n))
        remove.append(_address(RTM_DELADDR, index, addr, 1001 + n))
        what[1 + n] = f"add {addr} on {names.get(index, index)}"
        what[1001 + n] = f"remove {addr} from {names.get(index, index)}"
    if route is not None:
        add.append(_default_route(route[0], route[1], 999))
        what[999] = f"default route via {route[0]}"
    return Requests(b"".join(add), b"".join(remove), what)


def removal(addresses: Sequence[Address]) -> bytes:
    return b"".join(_address(RTM_DELADDR, index, addr, 2001 + n) for n, (index, addr) in enumerate(addresses))


def open_socket(links: bool = False) -> socket.socket:
    """A raw rtnetlink socket in the calling thread's namespace (call it inside `netns.inside`);
    with `links`, it also hears every change of the namespace's links (carrier, up/down)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                      socket.NETLINK_ROUTE)
    s.bind((0, RTMGRP_LINK if links else 0))
    return s


def ask_link(s: socket.socket, index: int) -> None:
    """Ask for one link's state: the answer is read by `read` as any link change."""
    s.send(struct.pack("=IHHIIBxHiII", 32, RTM_GETLINK, NLM_F_REQUEST, 3000, 0, socket.AF_UNSPEC, 0, index, 0, 0))


def failures(s: socket.socket) -> list[tuple[int, int, int]]:
    """The failed requests answered so far: (sequence number, request type, errno), leaving out
    the expected ones (an address already there, or already gone)."""
    return read(s)[0]


def read(s: socket.socket) -> tuple[list[tuple[int, int, int]], dict[int, bool]]:
    """What the socket holds: the failed requests (as `failures`) and, for a socket opened with
    `links`, each changed link's latest state: ifindex -> up with carrier."""
    out: list[tuple[int, int, int]] = []
    carrier: dict[int, bool] = {}
    while True:
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return out, carrier
        off = 0
        while off + 16 <= len(data):
            length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                break
            if kind == NLMSG_ERROR and off + 36 <= len(data):
                (code,) = struct.unpack_from("=i", data, off + 16)
                (req_kind,) = struct.unpack_from("=H", data, off + 24)
                if code < 0 and -code not in _EXPECTED.get(req_kind, set()):
                    out.append((seq, req_kind, -code))
            elif kind == RTM_NEWLINK and off + 32 <= len(data):
                _family, _type, index, flags, _change = struct.unpack_from("=BxHiII", data, off + 16)
                carrier[index] = flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP
            off += (length + 3) & ~3
