"""Which network nodes run which router, its VRID and its HA addresses: a pure function.

`schedule(routers, nodes, replicas, previous, ha_hosts)` is all of it. The rules, in order:

* A router keeps every node it had that is still alive (no needless move: a move of the active
  replica is a failover). It then gets more nodes until it has `replicas` (all nodes: 0 in
  Neutron's max_l3_agents_per_router becomes len(nodes) before the call), least-loaded first,
  ties by node name. Routers are taken in id order, so the result never depends on input order,
  and a router that lost a replica with a lost node gets a new one: redundancy comes back by itself.
* VRIDs are per HA network. Neutron has one HA network per project and fails with
  NoVRIDAvailable when its 255 VRIDs are gone; here a project's routers spill onto a further HA
  network segment (`HaNetwork(project, 1)`, ...), so there is always room. A router keeps its
  (network, VRID) for life; a new router takes the lowest free VRID of the lowest segment.
* Each replica has an `ha-` port address on its HA network: a host number of l3_ha_net_cidr,
  lowest free first, kept for life. When an HA network has no host number left, the router is
  reported in `problems` (the HA network is too small for another node) and not placed further.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MAX_VRID = 255


@dataclass(frozen=True, order=True)
class HaNetwork:
    """One L2 segment for VRRP: a project's HA network; `segment` > 0 when the first ones filled up."""

    project: str
    segment: int = 0

    @property
    def name(self) -> str:
        suffix = f"-{self.segment}" if self.segment else ""
        return f"HA network tenant {self.project}{suffix}"


@dataclass(frozen=True)
class RouterWant:
    id: str
    project: str


@dataclass(frozen=True)
class Placement:
    nodes: tuple[str, ...]  # sorted
    network: HaNetwork
    vrid: int
    ha_hosts: Mapping[str, int]  # node -> host number in l3_ha_net_cidr of this replica's ha- port


@dataclass(frozen=True)
class Schedule:
    routers: Mapping[str, Placement] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def load(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.routers.values():
            for n in p.nodes:
                out[n] = out.get(n, 0) + 1
        return out


def _lowest_free(used: set[int], low: int, high: int) -> int | None:
    for v in range(low, high + 1):
        if v not in used:
            return v
    return None


def schedule(routers: Iterable[RouterWant], nodes: Iterable[str], replicas: int,
             previous: Schedule | None = None, ha_hosts: int = 16382) -> Schedule:
    """Place `routers` on the alive `nodes`; see the module docstring. `ha_hosts` is how many host
    numbers the HA network CIDR has (a /18: 16382)."""
    prev = previous.routers if previous is not None else {}
    alive = sorted(set(nodes))
    alive_set = set(alive)
    want = sorted({r.id: r for r in routers}.values(), key=lambda r: r.id)
    count = min(replicas, len(alive)) if replicas > 0 else len(alive)
    problems: list[str] = []

    # What survives from before: identity (network, VRID, ports) of routers still wanted, and
    # their nodes that are alive.
    kept_nodes: dict[str, list[str]] = {}
    vrids: dict[HaNetwork, set[int]] = {}
    ports: dict[HaNetwork, set[int]] = {}
    ident: dict[str, tuple[HaNetwork, int]] = {}
    hosts: dict[str, dict[str, int]] = {}
    for r in want:
        p = prev.get(r.id)
        if p is None or p.network.project != r.project:
            continue
        ident[r.id] = (p.network, p.vrid)
        vrids.setdefault(p.network, set()).add(p.vrid)
        kept = [n for n in p.nodes if n in alive_set][:count]
        kept_nodes[r.id] = kept
        hosts[r.id] = {n: p.ha_hosts[n] for n in kept if n in p.ha_hosts}
        ports.setdefault(p.network, set()).update(hosts[r.id].values())

    load = dict.fromkeys(alive, 0)
    for kept in kept_nodes.values():
        for n in kept:
            load[n] += 1

    out: dict[str, Placement] = {}
    for r in want:
        if r.id not in ident:
            segment = 0
            while True:
                net = HaNetwork(r.project, segment)
                vrid = _lowest_free(vrids.setdefault(net, set()), 1, MAX_VRID)
                if vrid is not None:
                    break
                segment += 1
            vrids[net].add(vrid)
            ident[r.id] = (net, vrid)
        net, vrid = ident[r.id]
        chosen = list(kept_nodes.get(r.id, []))
        mine = dict(hosts.get(r.id, {}))
        used = ports.setdefault(net, set())
        for n in sorted((n for n in alive if n not in chosen), key=lambda n: (load[n], n)):
            if len(chosen) >= count:
                break
            host = _lowest_free(used, 1, ha_hosts)
            if host is None:
                problems.append(f"router {r.id}: {net.name} is too small for another node "
                                f"({ha_hosts} addresses in use)")
                break
            used.add(host)
            mine[n] = host
            chosen.append(n)
            load[n] += 1
        out[r.id] = Placement(tuple(sorted(chosen)), net, vrid, mine)
    return Schedule(out, tuple(problems))


def degraded(placement: Placement, minimum: int) -> bool:
    """Fewer replicas than min_l3_agents_per_router (Neutron's old threshold, kept as a report)."""
    return len(placement.nodes) < minimum


def lost_replicas(before: Schedule, after: Schedule, lost: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each router that had a replica on a lost node: the nodes it got instead."""
    gone = set(lost)
    out: dict[str, tuple[str, ...]] = {}
    for rid, p in before.routers.items():
        if gone & set(p.nodes) and rid in after.routers:
            out[rid] = tuple(sorted(set(after.routers[rid].nodes) - set(p.nodes)))
    return out
