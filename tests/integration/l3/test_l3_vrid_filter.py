"""The kernel VRID filters: on a router's VRRP socket, adverts of other routers on the same HA
network never reach the process (they would wake it N*N/advert_int times a second); on the
node, they are not even delivered into the other routers' namespaces."""

from __future__ import annotations

import ipaddress
import select
import socket
import time

from conftest import needs_root
from hakeeper.l3 import dataplane, hafilter, netns
from hakeeper.l3.dataplane import layout
from hakeeper.l3.model import Settings
from hakeeper.l3.scheduler import RouterWant, schedule
from hakeeper.l3.speaker import attach_vrid_filter
from hakeeper.l3.specfile import parse_router_spec
from hakeeper.netlab import Lab
from hakeeper.vrrp import netio
from hakeeper.vrrp.packet import VRRP_GROUP_V4, Advert, decode, encode, ipv4_header, split_ipv4

ROUTERS = ("0000000a-9a49-4e00-8f60-00000000000a", "0000000b-9a49-4e00-8f60-00000000000b")


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


def test_the_node_sends_each_advert_only_to_its_routers_ha_port() -> None:
    """The node's advert filter (`hafilter`): of the adverts arriving from the other node, a
    router's ha- port gets only those of its own VRID; ARP and other IP still pass. Without it the
    node's bridge floods every advert into every router namespace of the HA network (checked
    first: that is what the filter takes away). Then each half alone: the uplink's ingress sends
    a router's adverts straight to its port, and the bridge filter drops what it floods to the
    wrong port. The routers' sockets here have no VRID filter of their own, so they show what the
    node delivers."""
    needs_root()
    spec = parse_router_spec("routers:\n" + "".join(
        f"  - {{id: {rid}, name: f{i}, project: p}}\n" for i, rid in enumerate(ROUTERS)))
    sched = schedule([RouterWant(r.id, "p") for r in spec.routers], ["n1", "n2"], 2)
    with Lab("hkl3f") as lab:
        a = lab.host("a", {"eth0": ["169.254.192.1/18"]})
        node = lab.host("n", {"eth0": []})
        lays = [layout(r, sched.routers[r.id], "n2", Settings(), f"{lab.prefix}-{lab.owner}-n-",
                       frozenset({"ha"})) for r in spec.routers]
        socks: list[socket.socket] = []
        try:
            with netns.inside(node.ns):
                dataplane.ensure_bridges({"ha": "eth0"})
                dataplane.build_many(lays)
            rx = {}
            for lay in lays:
                with netns.inside(lay.namespace):
                    rx[lay.vrid] = netio.vrrp_socket_v4(lay.ha.name, socket.if_nametoindex(lay.ha.name), True)
                socks.append(rx[lay.vrid])
            with netns.inside(a.ns):
                tx = netio.vrrp_socket_v4("eth0", socket.if_nametoindex("eth0"), multicast=False)
            socks.append(tx)
            src, group = ipaddress.IPv4Address("169.254.192.1"), ipaddress.IPv4Address(VRRP_GROUP_V4)

            def delivered() -> dict[int, list[int]]:
                for vrid in (1, 2, 3, 1):
                    payload = encode(Advert(2, vrid, 50, 200, (ipaddress.IPv4Address(f"169.254.0.{vrid}"),)))
                    tx.sendto(ipv4_header(src, group, len(payload)) + payload, (VRRP_GROUP_V4, 0))
                got: dict[int, list[int]] = {vrid: [] for vrid in rx}
                for vrid, s in rx.items():
                    while select.select([s], [], [], 0.5)[0]:
                        head, body = split_ipv4(s.recv(4096))
                        got[vrid].append(decode(body, 4, head.src, head.dst).vrid)
                return got

            assert [lay.vrid for lay in lays] == [1, 2]
            # Flooded to both. A port just built passes traffic only once the kernel's link watch
            # has activated it (up to a second after its carrier came on), so the first rounds may
            # find some or nothing yet (no filter is loaded: nothing here can drop one on purpose).
            flooded = {1: [1, 2, 3, 1], 2: [1, 2, 3, 1]}
            deadline = time.monotonic() + 5
            while (got := delivered()) != flooded and time.monotonic() < deadline:
                time.sleep(0.2)
            assert got == flooded
            with netns.inside(node.ns):
                ports = hafilter.ports_of(lays, {"ha": "eth0"})
                assert [(p.vrid, p.uplink) for p in ports] == [(1, "eth0"), (2, "eth0")]
                hafilter.load(ports)
            assert delivered() == {1: [1, 1], 2: [2]}
            # The ingress alone: 1 and 2 go straight to their ports, 3 (no router here) is flooded.
            netns.run(["ip", "netns", "exec", node.ns, "nft", "delete", "table", "bridge", hafilter.BRIDGE_TABLE])
            assert delivered() == {1: [1, 3, 1], 2: [2, 3]}
            # The bridge filter alone: what is flooded reaches only the port of its VRID.
            with netns.inside(node.ns):
                hafilter.load(ports)
            netns.run(["ip", "netns", "exec", node.ns, "nft", "delete", "table", "netdev", hafilter.INGRESS_TABLE])
            assert delivered() == {1: [1, 1], 2: [2]}
            for lay in lays:  # not VRRP: passes (ARP, then ICMP, to each router's ha- address)
                assert a.run(["ping", "-c1", "-W2", str(lay.ha_address.ip)]).returncode == 0
        finally:
            for s in socks:
                s.close()
            for lay in lays:
                netns.delete(lay.namespace)
