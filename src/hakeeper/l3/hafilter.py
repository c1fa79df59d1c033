"""The node's own path for adverts on HA networks: each advert arriving from the other nodes goes
to the one router namespace it is for, not to every router of its HA network.

Each project's routers share one HA network, so the node's bridge for it floods every advert
from the other nodes into every router namespace of that network on this node, where all but one
drop it (the VRRP socket's VRID filter): N routers per HA network cost N deliveries (a veth, IP
input, a multicast route, the socket filter) per advert. Measured with perf at 300 routers, that
delivery was most of an idle node's system time. Two nftables tables in the node's namespace,
loaded as one transaction (`ruleset`):

* `netdev hakeeper_ha_in`: on the ingress of each HA uplink, an advert whose VRID belongs to
  exactly one router of that uplink is sent straight to that router's port (`fwd`): no bridge,
  no flood, no bridge netfilter.
* `bridge hakeeper_ha`: what the bridge still forwards (a VRID on two routers of a shared `ha`
  uplink, an advert of no router here) reaches a router's port only with that router's VRID.

Other traffic on the HA networks (ARP) and ports not listed (a router being built, keepalived)
pass as before. Ports are keyed by ifindex, not name: a name costs a string copy per packet.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hakeeper.l3 import nftlib
from hakeeper.l3.dataplane import Layout

BRIDGE_TABLE = "hakeeper_ha"
INGRESS_TABLE = "hakeeper_ha_in"


@dataclass(frozen=True, order=True)
class HaPort:
    index: int  # the node-side end of a router's ha- port
    vrid: int
    uplink: str | None  # the node's interface for the router's HA network (None: unknown)


def ruleset(ports: Sequence[HaPort]) -> str:
    """Both tables for these ports, as one atomic `nft -f` input (replacing the previous ones)."""
    lines = [f"table bridge {BRIDGE_TABLE}", f"delete table bridge {BRIDGE_TABLE}",
             f"table bridge {BRIDGE_TABLE} {{"]
    for vrid in sorted({p.vrid for p in ports}):
        lines += [f"  chain vrid{vrid} {{", f"    @th,8,8 != {vrid} drop", "  }"]
    lines += ["  map ports {", "    type iface_index : verdict"]
    if ports:
        elements = ", ".join(f"{p.index} : goto vrid{p.vrid}" for p in sorted(ports))
        lines.append(f"    elements = {{ {elements} }}")
    lines += ["  }", "  chain forward {", "    type filter hook forward priority filter; policy accept;",
              "    ip protocol vrrp oif vmap @ports", "  }", "}"]
    lines += [f"table netdev {INGRESS_TABLE}", f"delete table netdev {INGRESS_TABLE}",
              f"table netdev {INGRESS_TABLE} {{"]
    for n, (uplink, to) in enumerate(sorted(_direct(ports).items())):
        elements = ", ".join(f"{vrid} : {index}" for vrid, index in sorted(to.items()))
        lines += [f"  map to{n} {{", "    typeof @th,8,8 : oif", f"    elements = {{ {elements} }}", "  }",
                  f"  chain in{n} {{", f'    type filter hook ingress device "{uplink}" priority filter; '
                  "policy accept;", f"    ip protocol vrrp fwd to @th,8,8 map @to{n}", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _direct(ports: Sequence[HaPort]) -> dict[str, dict[int, int]]:
    """uplink -> {VRID: port index} for the VRIDs held by exactly one router on that uplink (on a
    shared `ha` uplink VRIDs repeat across projects: those adverts are left to the bridge)."""
    count = Counter((p.uplink, p.vrid) for p in ports)
    out: dict[str, dict[int, int]] = {}
    for p in ports:
        if p.uplink is not None and count[(p.uplink, p.vrid)] == 1:
            out.setdefault(p.uplink, {})[p.vrid] = p.index
    return out


def ports_of(lays: Sequence[Layout], physical: Mapping[str, str]) -> list[HaPort]:
    """These routers' ha- ports that exist now in this namespace, sorted; `physical` maps an HA
    network's key to the node's interface for it (the agent's --physical)."""
    out = []
    for lay in lays:
        try:
            index = socket.if_nametoindex(lay.ha.peer)
        except OSError:
            continue  # gone meanwhile: nothing to filter
        uplink = physical.get(lay.ha.network)
        if uplink is not None:
            try:
                socket.if_nametoindex(uplink)
            except OSError:
                uplink = None  # not here (yet): the bridge filter still applies
        out.append(HaPort(index, lay.vrid, uplink))
    return sorted(out)


def load(ports: Sequence[HaPort]) -> None:
    """Both tables for these ports, in this process's (the node's) namespace."""
    nftlib.load(None, ruleset(ports))


def removal() -> str:
    """Both tables gone, as one `nft -f` input that also holds when they are not there."""
    return "".join(f"table {family} {table}\ndelete table {family} {table}\n"
                   for family, table in (("bridge", BRIDGE_TABLE), ("netdev", INGRESS_TABLE)))


def unload() -> None:
    """Remove both tables from this process's (the node's) namespace: an agent that stops for good
    leaves the node's HA networks as it found them (a keepalived started for the same routers
    there would otherwise hear no advert: each VRID goes to a port only its router used)."""
    nftlib.load(None, removal())
