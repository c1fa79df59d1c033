"""The prepared netlink requests of a takeover (nlbatch.py): what they say, and the kernel applying
them in a namespace (root): addresses and default route added in one send, removed in one send,
an expected failure (already there) not reported, an unexpected one reported with its request."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from conftest import needs_root
from hakeeper.l3 import netns, nlbatch

V = ipaddress.IPv4Interface


def _messages(data: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(data):
        length = int.from_bytes(data[off:off + 4], "little")
        out.append(data[off:off + length])
        off += (length + 3) & ~3
    return out


def test_requests_are_the_addresses_in_order_then_the_route() -> None:
    addrs = [(2, V("169.254.0.7/24")), (3, V("192.168.80.1/24")), (4, V("10.0.80.110/32"))]
    req = nlbatch.prepare(addrs, (ipaddress.IPv4Address("10.0.80.1"), 4), {2: "ha-x", 3: "qr-x", 4: "qg-x"})
    add = _messages(req.add)
    assert len(add) == 4 and len(_messages(req.remove)) == 3
    for raw, (index, addr) in zip(add, addrs, strict=False):
        m = ifaddrmsg(raw)
        m.decode()
        assert (m["header"]["type"], m["index"], m["prefixlen"]) == (nlbatch.RTM_NEWADDR, index,
                                                                     addr.network.prefixlen)
        assert m.get_attr("IFA_LOCAL") == str(addr.ip)
    route = rtmsg(add[3])
    route.decode()
    assert (route["header"]["type"], route.get_attr("RTA_GATEWAY"), route.get_attr("RTA_OIF")) == (
        nlbatch.RTM_NEWROUTE, "10.0.80.1", 4)
    assert req.what[1] == "add 169.254.0.7/24 on ha-x" and req.what[999] == "default route via 10.0.80.1"


@pytest.fixture
def namespace() -> Iterator[str]:
    needs_root()
    name = f"hkl3nl-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "qg-t", "type", "veth", "peer", "name", "qr-t"], check=True)
        for dev in ("lo", "qg-t", "qr-t"):
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _show(ns: str, *what: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-4", "-o", *what], capture_output=True, text=True, check=True).stdout


def test_the_kernel_applies_a_takeover_and_a_release_each_in_one_send(namespace: str) -> None:
    with netns.inside(namespace):
        nl = nlbatch.open_socket()
        qg, qr = socket.if_nametoindex("qg-t"), socket.if_nametoindex("qr-t")
    try:
        addrs = [(qr, V("192.168.80.1/24")), (qg, V("10.0.80.101/24")), (qg, V("10.0.80.110/32"))]
        req = nlbatch.prepare(addrs, (ipaddress.IPv4Address("10.0.80.1"), qg), {qg: "qg-t", qr: "qr-t"})
        nl.send(req.add)
        assert "192.168.80.1/24" in _show(namespace, "addr", "show", "qr-t")
        assert "10.0.80.110/32" in _show(namespace, "addr", "show", "qg-t")
        assert "default via 10.0.80.1 dev qg-t" in _show(namespace, "route", "show")
        nl.send(req.add)  # again: every address is already there (EEXIST), the route replaced
        assert nlbatch.failures(nl) == []
        nl.send(req.remove)
        assert "inet " not in _show(namespace, "addr", "show", "qg-t") + _show(namespace, "addr", "show", "qr-t")
        nl.send(req.remove)  # already gone: expected, not reported
        assert nlbatch.failures(nl) == []
        nl.send(nlbatch.prepare([(9999, V("10.1.1.1/24"))], None, {}).add)  # no such interface
        failed = nlbatch.failures(nl)
        assert [(seq, kind) for seq, kind, _ in failed] == [(1, nlbatch.RTM_NEWADDR)]
        assert failed[0][2] in (errno.ENODEV, errno.EINVAL)
    finally:
        nl.close()


def _read_until(nl: socket.socket, index: int, want: bool) -> bool | None:
    """The link's state as the socket hears it, waiting up to 2 s for `want` (link watch events
    come from a kernel worker, a moment after the change)."""
    import select

    seen: bool | None = None
    while select.select([nl], [], [], 2.0)[0]:
        _, links = nlbatch.read(nl)
        seen = links.get(index, seen)
        if seen == want:
            break
    return seen  # None: nothing heard about the link


def test_a_link_socket_hears_the_carrier_of_a_port_whose_peer_goes_down(namespace: str) -> None:
    # What the speaker's track_interface on ha- relies on: the answer to ask_link, then a change.
    with netns.inside(namespace):
        nl = nlbatch.open_socket(links=True)
        qg = socket.if_nametoindex("qg-t")
    try:
        nlbatch.ask_link(nl, qg)
        assert _read_until(nl, qg, True) is True
        subprocess.run(["ip", "-n", namespace, "link", "set", "qr-t", "down"], check=True)  # the peer
        assert _read_until(nl, qg, False) is False
        subprocess.run(["ip", "-n", namespace, "link", "set", "qr-t", "up"], check=True)
        assert _read_until(nl, qg, True) is True
        subprocess.run(["ip", "-n", namespace, "link", "set", "qg-t", "down"], check=True)  # itself
        assert _read_until(nl, qg, False) is False
    finally:
        nl.close()
