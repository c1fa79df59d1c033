"""The kernel VRID filter on a router's VRRP socket: adverts of other routers on the same HA
network never reach the process (they would wake it N*N/advert_int times a second)."""

from __future__ import annotations

import ipaddress
import select
import socket

from conftest import needs_root
from hakeeper.l3 import netns
from hakeeper.l3.speaker import attach_vrid_filter
from hakeeper.netlab import Lab
from hakeeper.vrrp import netio
from hakeeper.vrrp.packet import VRRP_GROUP_V4, Advert, decode, encode, ipv4_header, split_ipv4


def test_only_the_routers_own_vrid_is_received() -> None:
    needs_root()
    with Lab("hkl3f") as lab:
        a = lab.host("a", {"eth0": ["169.254.192.1/18"]})
        b = lab.host("b", {"eth0": ["169.254.192.2/18"]})
        with netns.inside(b.ns):
            rx = netio.vrrp_socket_v4("eth0", socket.if_nametoindex("eth0"), multicast=True)
            attach_vrid_filter(rx, 5)
        with netns.inside(a.ns):
            tx = netio.vrrp_socket_v4("eth0", socket.if_nametoindex("eth0"), multicast=False)
        try:
            src, group = ipaddress.IPv4Address("169.254.192.1"), ipaddress.IPv4Address(VRRP_GROUP_V4)
            for vrid in (6, 5, 7, 200, 5):
                payload = encode(Advert(2, vrid, 50, 200, (ipaddress.IPv4Address(f"169.254.0.{vrid}"),)))
                tx.sendto(ipv4_header(src, group, len(payload)) + payload, (VRRP_GROUP_V4, 0))
            got = []
            while select.select([rx], [], [], 1.0)[0]:
                head, body = split_ipv4(rx.recv(4096))
                got.append(decode(body, 4, head.src, head.dst).vrid)
            assert got == [5, 5]
        finally:
            rx.close()
            tx.close()
