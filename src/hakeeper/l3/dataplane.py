"""One router's data plane on one network node: what it looks like (pure) and building it.

As Neutron's L3 agent lays it out: a namespace `qrouter-<id>` with
* `ha-<id>` on the router's HA network: the node's own address from l3_ha_net_cidr, and on the
  master the primary VIP 169.254.0.<vrid>/24 (keepalived's `virtual_ipaddress`);
* `qr-<...>` per internal subnet and `qg-<id>` on the external network, up on every replica with
  the same MAC (the port's), addresses only on the master (`virtual_ipaddress_excluded`), with the
  floating IPs as /32 on qg- and the default route via the upstream gateway (`virtual_routes`);
* nftables NAT in the namespace on every replica (inert without the addresses): DNAT of each
  floating IP to its fixed address, SNAT of it back, SNAT of the internal subnets to the gateway.

The node side: each interface is a veth whose other end is plugged into the node's bridge for that
network (`hkb-...`, holding the node's physical interface for it), standing in for OVS's br-int
and br-ex. IPv6 is off in router namespaces: a backup's qg-/qr- share the master's MAC, and IPv6
neighbour discovery from them would move that MAC on the switches.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hakeeper.l3 import netns, nftlib
from hakeeper.l3.model import Router, Settings
from hakeeper.l3.scheduler import Placement

log = logging.getLogger("hakeeper.l3")

HA_NETWORK = "ha"  # the key of the HA network in the node's physical mapping


def ha_network_key(project: str, segment: int) -> str:
    """The physical-mapping key of one HA network (`ha:PROJECT`, `ha:PROJECT-2`): each HA network
    needs an L2 segment of its own, as VRIDs repeat across them; unmapped ones share `ha`."""
    return f"ha:{project}" + (f"-{segment}" if segment else "")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def port_mac(*parts: str) -> str:
    """Neutron's fa:16:3e prefix, the rest from the port's identity: equal on every node."""
    d = _digest(*parts)
    return f"fa:16:3e:{d[0:2]}:{d[2:4]}:{d[4:6]}"


def bridge_name(network: str) -> str:
    return "hkb-" + _digest("bridge", network)[:10]


@dataclass(frozen=True)
class Port:
    name: str  # inside the router namespace
    peer: str  # the node-side end, in the node's bridge
    network: str  # key into the node's physical mapping
    mac: str | None  # None: let the kernel pick (the ha- port differs per node)
    addresses: tuple[ipaddress.IPv4Interface, ...]  # master-only ones


@dataclass(frozen=True)
class Layout:
    router_id: str
    namespace: str
    ha: Port
    ha_address: ipaddress.IPv4Interface
    vip: ipaddress.IPv4Interface
    vrid: int
    internal: tuple[Port, ...]
    external: Port | None
    upstream: ipaddress.IPv4Address | None
    nat: str  # the nftables ruleset of the namespace

    @property
    def ports(self) -> tuple[Port, ...]:
        return (self.ha, *self.internal, *((self.external,) if self.external else ()))

    def master_addresses(self) -> list[tuple[str, ipaddress.IPv4Interface]]:
        """(interface, address) present only while master, the primary VIP first."""
        out = [(self.ha.name, self.vip)]
        for p in (*self.internal, *((self.external,) if self.external else ())):
            out += [(p.name, a) for a in p.addresses]
        return out


NAT_TABLE = "hakeeper_nat"


# How a ruleset replaces the table a namespace may hold: created if missing, then deleted, in the
# same transaction as the new one.
REPLACING = f"table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\n"


def for_new_namespace(ruleset: str) -> str:
    """The ruleset without the lines that replace an existing table, for a namespace just made.
    Deleting a table, even one made empty in the same transaction, costs the kernel's commit an
    RCU grace period: 15 ms here, a load of 0.8 ms without it, so 14 s of the build of 1000
    routers went to replacing tables that were not there."""
    return ruleset.removeprefix(REPLACING)


def nat_ruleset(router: Router, qg: str | None) -> str:
    """The namespace's NAT table, as one atomic `nft -f` input (replaces the previous one)."""
    lines = [f"table ip {NAT_TABLE} {{",
             "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;"]
    if qg is not None and router.gateway is not None:
        lines += [f"    ip daddr {f.external} dnat to {f.fixed}" for f in router.floating_ips]
    lines += ["  }", "  chain output { type nat hook output priority -100; policy accept;"]
    if qg is not None:
        lines += [f"    ip daddr {f.external} dnat to {f.fixed}" for f in router.floating_ips]
    lines += ["  }", "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;"]
    if qg is not None and router.gateway is not None:
        lines += [f'    oifname "{qg}" ip saddr {f.fixed} snat to {f.external}' for f in router.floating_ips]
        lines += [f'    oifname "{qg}" ip saddr {i.address.network} snat to {router.gateway.address.ip}'
                  for i in router.interfaces]
    # Adverts are never NAT'd: untracked, they cost no connection-tracking lookup each (the NAT
    # chains turn conntrack on in the namespace, and a node sends or receives every advert of its
    # routers, 500 a second for 1000 routers at advert_int 2).
    lines += ["  }", "  chain vrrp_in { type filter hook prerouting priority raw; policy accept;",
              "    ip protocol vrrp notrack", "  }",
              "  chain vrrp_out { type filter hook output priority raw; policy accept;",
              "    ip protocol vrrp notrack", "  }", "}"]
    return REPLACING + "\n".join(lines) + "\n"


def layout(router: Router, placement: Placement, node: str, settings: Settings, ns_prefix: str = "",
           mapped: frozenset[str] = frozenset()) -> Layout:
    """Pure: names, MACs and addresses of `router`'s replica on `node`; `mapped` are the networks
    the node has an interface for (an HA network of its own, or the shared `ha`)."""
    rid = router.id
    short = rid.replace("-", "")[:11]
    host = placement.ha_hosts[node]
    cidr = settings.l3_ha_net_cidr
    ha_addr = ipaddress.IPv4Interface(f"{cidr.network_address + host}/{cidr.prefixlen}")
    ha_key = ha_network_key(placement.network.project, placement.network.segment)
    ha = Port(f"ha-{short}", "t" + _digest(rid, "ha")[:13], ha_key if ha_key in mapped else HA_NETWORK, None, ())
    internal = tuple(
        Port(f"qr-{_digest(rid, i.subnet)[:11]}", "t" + _digest(rid, "qr", i.subnet)[:13], i.subnet,
             port_mac(rid, "qr", i.subnet), (i.address,))
        for i in router.interfaces
    )
    external = None
    upstream = None
    if router.gateway is not None:
        g = router.gateway
        fips = tuple(ipaddress.IPv4Interface(f"{f.external}/32") for f in router.floating_ips)
        external = Port(f"qg-{short}", "t" + _digest(rid, "qg")[:13], g.network, port_mac(rid, "qg"),
                        (g.address, *fips))
        upstream = g.upstream
    vip = ipaddress.IPv4Interface(f"169.254.0.{placement.vrid}/24")
    return Layout(rid, f"{ns_prefix}qrouter-{rid}", ha, ha_addr, vip, placement.vrid, internal, external,
                  upstream, nat_ruleset(router, external.name if external else None))


def ensure_bridges(physical: dict[str, str]) -> None:
    """On the node: a bridge per network holding the node's physical interface for it."""
    cmds = []
    for network, dev in sorted(physical.items()):
        br = bridge_name(network)
        if netns.run(["ip", "link", "show", br], check=False).returncode != 0:
            cmds += [f"link add {br} type bridge forward_delay 0 stp_state 0"]
        cmds += [f"link set {dev} master {br}", f"link set {dev} up", f"link set {br} up"]
    netns.ip_batch(cmds)


def build(lay: Layout) -> None:
    """Create (or re-create) the router's namespace and interfaces on this node: no master address
    anywhere, so a returning node never starts as a second master. IPv6 is off before any port
    arrives or comes up: a port that spoke IPv6 (router solicitation, MLD, DAD) even once would
    announce the shared qr/qg MAC from a backup, and each new port's chatter floods every port of
    the node's bridges (a cost growing with the routers there)."""
    build_many([lay])


# IPv6 off before any port arrives (see build); forwarding on.
SYSCTLS = (("net/ipv4/ip_forward", "1"), ("net/ipv6/conf/all/disable_ipv6", "1"),
           ("net/ipv6/conf/default/disable_ipv6", "1"))


def _node_side(lay: Layout, ports: Sequence[Port] | None = None) -> list[str]:
    cmds = []
    for p in lay.ports if ports is None else ports:
        mac = f" address {p.mac}" if p.mac else ""
        cmds += [f"link add {p.peer} type veth peer name {p.name}{mac} netns {lay.namespace}",
                 f"link set {p.peer} addrgenmode none",  # the bridge port needs no IPv6 either
                 f"link set {p.peer} master {bridge_name(p.network)} up"]
        if p == lay.ha:
            # An isolated bridge port talks only to the node's uplink: a router has one replica
            # per node, so its adverts are for the other nodes, never for the routers next to it
            # (other VRIDs). Without it each advert was also delivered into every other router
            # namespace of its HA network on this node, the larger part of an idle node's CPU.
            cmds.append(f"link set {p.peer} type bridge_slave isolated on")
    return cmds


def build_many(lays: Sequence[Layout]) -> None:
    """`build` for many routers at once, as an agent starting on a node with a thousand routers
    needs it: two `ip -batch` processes for every namespace and node-side port, and the rest from
    this process (sysctls, ports up and the ha- address over netlink, the NAT table through
    libnftables), instead of five processes per router."""
    if not lays:
        return
    from pyroute2 import IPRoute

    phases: list[tuple[str, float]] = [("", time.monotonic())]

    def done(what: str) -> None:
        phases.append((what, time.monotonic()))

    for lay in lays:
        netns.delete(lay.namespace)
    netns.ip_batch([f"netns add {lay.namespace}" for lay in lays])
    netns.ip_batch([f"link del {p.peer}" for lay in lays for p in lay.ports], force=True)
    done("namespaces")
    for lay in lays:
        with netns.inside(lay.namespace):
            for key, value in SYSCTLS:
                with open(f"/proc/sys/{key}", "w") as fh:
                    fh.write(value)
    done("sysctls")
    netns.ip_batch([cmd for lay in lays for cmd in _node_side(lay)])
    done("ports")
    for lay in lays:
        with netns.inside(lay.namespace):
            ipr = IPRoute()
        try:
            index = {link.get("ifname"): link["index"] for link in ipr.get_links()}
            ipr.link("set", index=index["lo"], state="up")
            ipr.addr("add", index=index[lay.ha.name], address=str(lay.ha_address.ip),
                     prefixlen=lay.ha_address.network.prefixlen)
            for p in lay.ports:
                ipr.link("set", index=index[p.name], state="up")
        finally:
            ipr.close()
    done("ports up and ha- addresses")
    for lay in lays:
        nftlib.load(lay.namespace, for_new_namespace(lay.nat))
    done("NAT")
    log.info("built %d routers in %.1f s: %s", len(lays), phases[-1][1] - phases[0][1],
             ", ".join(f"{what} {t - phases[n][1]:.1f} s" for n, (what, t) in enumerate(phases[1:])))


def destroy(lay: Layout) -> None:
    netns.delete(lay.namespace)
    netns.ip_batch([f"link del {p.peer}" for p in lay.ports], force=True)


async def inspect(lay: Layout) -> tuple[bool, bool]:
    """(the namespace is there with every port, it holds the primary VIP): what an agent that
    starts finds of its predecessor's work. Over netlink in this process: a restart adopts a
    thousand routers well within the backups' Master_Down_Interval."""
    if not netns.exists(lay.namespace):
        return False, False
    from pyroute2 import AsyncIPRoute

    with netns.inside(lay.namespace):
        ipr = AsyncIPRoute()
        _ = ipr.socket  # created now, so it lives in this namespace
    try:
        links = {link.get("ifname"): link["index"] async for link in await ipr.get_links()}
        if any(p.name not in links for p in lay.ports):
            return False, False
        vip = str(lay.vip.ip)
        held = [a.get("local") async for a in await ipr.get_addr(family=2, index=links[lay.ha.name])]
        return True, vip in held
    finally:
        ipr.close()


def refresh(lay: Layout) -> None:
    """Adopt a namespace left by the previous agent: its ports up, the ha- address and the NAT
    table as the spec says now; master addresses are left alone (the speaker decides)."""
    netns.ip_batch([f"addr replace {lay.ha_address} dev {lay.ha.name}", *(f"link set {p.name} up" for p in lay.ports)],
                   lay.namespace)
    nftlib.load(lay.namespace, lay.nat)


def update(old: Layout, new: Layout) -> None:
    """Change a running router in place: ports added or removed, the NAT table replaced. The
    namespace and the ha- port stay, so its VRRP instance goes on."""
    def key(p: Port) -> tuple[str, str, str | None]:
        return p.name, p.network, p.mac

    keep = {key(p) for p in new.ports}
    before = {key(p) for p in old.ports}
    netns.ip_batch([f"link del {p.peer}" for p in old.ports if key(p) not in keep], force=True)
    added = [p for p in new.ports if key(p) not in before]
    netns.ip_batch(_node_side(new, added))
    netns.ip_batch([f"link set {p.name} up" for p in added], new.namespace)
    if old.nat != new.nat:
        nftlib.load(new.namespace, new.nat)
