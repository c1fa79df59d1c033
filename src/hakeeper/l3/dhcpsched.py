"""Which network nodes serve DHCP for which project network, and with which address: pure.

A project network here is a router's internal subnet (the spec has no networks apart from
them). Each is served by `dhcp_agents_per_network` dnsmasq instances on different network nodes,
all answering (Neutron's active/active DHCP).

The nodes of a network are its highest-ranked alive nodes by rendezvous hashing (a hash of the
network and the node): every agent works out the same answer from the routers document alone
(its `nodes` and `down`), so nothing more is stored. Why this rule and not least-loaded first as
for routers: a router's replica that moves is a failover, so the router scheduler must remember
where each one was; a DHCP server that moves costs nothing (its peer keeps answering the same
addresses), so the rule may be stateless, and rendezvous hashing already has the properties
wanted: a lost node's networks each get the next node of their own ranking while every other
replica stays, a returning node takes back exactly what it had, and adding or removing a network
never moves another network's servers. The load is balanced by the hash, not exactly.

Each node's DHCP port on a subnet has a fixed address: as Neutron's DHCP ports, the first host
addresses of the subnet after the gateway, one per network node in the order of their names
(gateway .1, three nodes: .2, .3, .4), so a server keeps its address wherever it moves.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hakeeper.l3.model import RouterSpec


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    address: ipaddress.IPv4Address
    name: str


@dataclass(frozen=True)
class DhcpNetwork:
    subnet: str
    gateway: ipaddress.IPv4Interface  # the router's address on it: the clients' default route
    hosts: tuple[DhcpHost, ...]


@dataclass(frozen=True)
class DhcpPlacement:
    nodes: tuple[str, ...]  # sorted
    addresses: dict[str, ipaddress.IPv4Interface]  # node -> its DHCP port's address


@dataclass(frozen=True)
class DhcpSchedule:
    networks: dict[str, DhcpPlacement]
    problems: tuple[str, ...] = ()


def networks_of(spec: RouterSpec) -> list[DhcpNetwork]:
    """Every internal subnet of the spec's routers that has instance ports (the first router's
    gateway on it), by subnet name. A subnet without ports has nobody to answer: Neutron's
    dnsmasq serves known ports only (static host entries), so no server is started for it."""
    gateways: dict[str, ipaddress.IPv4Interface] = {}
    for r in spec.routers:
        for i in r.interfaces:
            gateways.setdefault(i.subnet, i.address)
    out = []
    for subnet, gw in sorted(gateways.items()):
        hosts = tuple(DhcpHost(p.mac, p.address, p.name or "host-" + str(p.address).replace(".", "-"))
                      for p in spec.ports if p.subnet == subnet)
        if hosts:
            out.append(DhcpNetwork(subnet, gw, hosts))
    return out


def rank(network: str, node: str) -> bytes:
    return hashlib.sha256(f"{network}\0{node}".encode()).digest()


def place(network: str, alive: Iterable[str], count: int) -> tuple[str, ...]:
    """The `count` alive nodes ranked highest for `network` (fewer if fewer are alive), sorted."""
    ranked = sorted(set(alive), key=lambda n: (rank(network, n), n), reverse=True)
    return tuple(sorted(ranked[:max(count, 0)]))


def server_address(gateway: ipaddress.IPv4Interface, nodes: Sequence[str], node: str) -> ipaddress.IPv4Interface | None:
    """The DHCP port address of `node` on the gateway's subnet (None: the subnet is too small)."""
    net = gateway.network
    index = sorted(set(nodes)).index(node)
    for host in net.hosts():
        if host == gateway.ip:
            continue
        if index == 0:
            return ipaddress.IPv4Interface(f"{host}/{net.prefixlen}")
        index -= 1
    return None


def schedule_dhcp(networks: Iterable[DhcpNetwork], nodes: Sequence[str], down: Iterable[str],
                  per_network: int) -> DhcpSchedule:
    """Each network on `per_network` of the network `nodes` not `down`, with their addresses.
    A node whose DHCP address is an instance port's (or off the subnet) does not serve that
    network, and it is reported."""
    gone = set(down)
    alive = [n for n in nodes if n not in gone]
    out: dict[str, DhcpPlacement] = {}
    problems: list[str] = []
    for net in networks:
        taken = {h.address for h in net.hosts}
        usable = []
        addresses = {}
        for n in alive:
            addr = server_address(net.gateway, nodes, n)
            if addr is None or addr.ip in taken:
                why = "the subnet is too small" if addr is None else f"{addr.ip} is an instance port's"
                problems.append(f"{net.subnet}: no DHCP address for {n} ({why})")
                continue
            usable.append(n)
            addresses[n] = addr
        chosen = place(net.subnet, usable, per_network)
        out[net.subnet] = DhcpPlacement(chosen, {n: addresses[n] for n in chosen})
    return DhcpSchedule(out, tuple(problems))
