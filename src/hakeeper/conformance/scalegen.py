"""Large, regular clusters for benchmarks: exactly N nodes and R primitives, deterministic in a seed.

Shaped like a control plane grown big: mostly standalone primitives, some groups of three, one
anonymous clone per 400 resources (an instance on every node), location preferences, colocations and
orders between neighbours, resource-stickiness 100, and a fencing device. Two situations:

- "initial": every node has just joined, nothing has run, no operation history (Pacemaker probes
  every resource on every node and places everything);
- "node-failure": everything runs, spread the way the constraints ask, the status carries the
  history of what runs (start and monitor), and one node has just been lost uncleanly: it is
  fenced and its resources move. Render it with `render_cib(spec, probe_everywhere=True)` for the
  full history a real cluster keeps: a "not running" probe result for every other resource on
  every node.
"""

from __future__ import annotations

import random

from hakeeper.spec.model import (
    Clone,
    ClusterOptions,
    ClusterSpec,
    ClusterState,
    Colocation,
    Constraints,
    Group,
    Location,
    Node,
    NodeState,
    Operation,
    Order,
    Primitive,
    Resources,
    ResourceStatus,
)
from hakeeper.spec.values import INFINITY

SITUATIONS = ("initial", "node-failure")


def scale_cluster(nodes: int, primitives: int, situation: str = "initial", *, seed: int = 1) -> ClusterSpec:
    """A cluster of `nodes` nodes and `primitives` primitives (the fencing device included)."""
    if situation not in SITUATIONS:
        raise ValueError(f"situation must be one of {', '.join(SITUATIONS)}, not {situation!r}")
    rnd = random.Random(seed)
    names = [f"node{i + 1}" for i in range(nodes)]
    monitor = [Operation(name="monitor", interval=10, timeout=20)]
    prims: list[Primitive] = [Primitive(id="fencing", agent="stonith:fence_dummy",
                                        operations=[Operation(name="monitor", interval=60, timeout=20)])]
    groups: list[Group] = []
    clones: list[Clone] = []
    # Top-level units in declaration order: (id, member primitive ids, is a clone).
    units: list[tuple[str, list[str], bool]] = [("fencing", ["fencing"], False)]
    count = 1
    while count < primitives:
        n = len(units)
        roll = rnd.random()
        if n % 400 == 0:  # a few clones: each has an instance on every node
            pid = f"c{n}"
            prims.append(Primitive(id=pid, agent="ocf:pacemaker:Dummy", operations=monitor))
            clones.append(Clone(id=f"{pid}-clone", child=pid))
            units.append((f"{pid}-clone", [pid], True))
            count += 1
        elif roll < 0.15 and primitives - count >= 3:
            members = [f"g{n}m{i}" for i in range(3)]
            prims += [Primitive(id=m, agent="ocf:heartbeat:Dummy", operations=monitor) for m in members]
            groups.append(Group(id=f"g{n}", members=members))
            units.append((f"g{n}", members, False))
            count += 3
        else:
            pid = f"p{n}"
            prims.append(Primitive(id=pid, agent="ocf:heartbeat:Dummy", operations=monitor))
            units.append((pid, [pid], False))
            count += 1
    locations: list[Location] = []
    colocations: list[Colocation] = []
    orders: list[Order] = []
    # Where each unit should run: its own preference, or its colocation partner's node.
    home: dict[str, int] = {}
    for index, (uid, _members, is_clone) in enumerate(units):
        if is_clone or uid == "fencing":
            continue
        roll = rnd.random()
        partner = units[index - 1] if index > 1 else None
        if roll < 0.1 and partner is not None and not partner[2] and partner[0] in home:
            colocations.append(Colocation(id=f"col-{uid}", resource=uid, with_resource=partner[0], score=INFINITY))
            home[uid] = home[partner[0]]
        elif roll < 0.3:
            node = rnd.randrange(nodes)
            locations.append(Location(id=f"loc-{uid}", resource=uid, node=names[node], score=100))
            home[uid] = node
        else:
            home[uid] = index % nodes
        if 0.3 <= roll < 0.4 and partner is not None:
            orders.append(Order(id=f"ord-{uid}", first=partner[0], then=uid, kind="Optional"))
    spec = ClusterSpec(
        cluster=ClusterOptions(name=f"scale-{nodes}x{primitives}", stonith_enabled=True, resource_stickiness=100),
        nodes=[Node(name=name, attributes={"rack": f"r{i % 4}"}) for i, name in enumerate(names)],
        resources=Resources(primitives=prims, groups=groups, clones=clones),
        constraints=Constraints(location=locations, colocation=colocations, order=orders),
    )
    node_states = {name: NodeState() for name in names}
    if situation == "initial":
        spec.state = ClusterState(nodes=node_states, now=1_700_000_000.0)
        return spec
    statuses: list[ResourceStatus] = []
    home["fencing"] = 1 % nodes
    for uid, members, is_clone in units:
        where = set(range(nodes)) if is_clone else {home[uid]}
        for node in sorted(where):
            for pid in members:
                statuses.append(ResourceStatus(resource=pid, node=names[node]))
    node_states[names[0]] = NodeState(online=False, unclean=True)
    spec.state = ClusterState(nodes=node_states, resources=statuses, now=1_700_000_000.0)
    return spec
