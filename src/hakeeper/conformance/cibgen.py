"""Seeded random clusters for differential testing against Pacemaker's scheduler.

`generate(seed)` returns a native `ClusterSpec` whose `state` says what runs where; `cibxml.render_cib`
turns it into a CIB that `crm_simulate` accepts. The same seed always gives the same cluster (a
private `random.Random`, no clock), so a mismatch is reproduced from its seed alone.

The cluster stays within what both engines are asked to agree on: Dummy primitives without
parameters and with one monitor, groups, anonymous clones (of a primitive or a group), location
constraints (scores, ±INFINITY, rules on node attributes), colocations, orders, stickiness,
migration-threshold, target-role=Stopped, standby, failed monitors with fail counts, failed starts,
and nodes that left cleanly or were lost (fenced by a fencing device, or with stonith disabled).

The current placement is coherent the way a running cluster's would be (a primitive on at most one
node, a group's running members a prefix on one node, one clone instance per node) but it ignores the
constraints: both engines then have to correct it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hakeeper.spec.model import (
    Clone,
    ClusterOptions,
    ClusterSpec,
    ClusterState,
    Colocation,
    Constraints,
    Expression,
    Group,
    Location,
    Meta,
    Node,
    NodeState,
    Operation,
    Order,
    Primitive,
    Resources,
    ResourceStatus,
    Rule,
)
from hakeeper.spec.values import INFINITY

AGENTS = ("ocf:heartbeat:Dummy", "ocf:pacemaker:Dummy")
FENCE_AGENT = "stonith:fence_dummy"
RACKS = ("r1", "r2", "r3")


@dataclass(frozen=True)
class Knobs:
    """Size and mix of a generated cluster; the defaults suit a differential test case."""

    nodes: tuple[int, int] = (2, 6)
    top_level: tuple[int, int] = (2, 10)  # resources at the top level: primitives, groups, clones
    group_share: float = 0.25
    clone_share: float = 0.2
    group_size: tuple[int, int] = (2, 4)
    locations: float = 0.6  # per top-level resource, the expected number of location constraints
    colocations: float = 0.35
    orders: float = 0.3
    rule_share: float = 0.25  # share of location constraints written as a rule
    running: float = 0.6  # share of resources running somewhere at the start
    failed_monitor: float = 0.08
    failed_start: float = 0.03
    probes: float = 0.5  # share of (resource, node) pairs with a "not running" probe result
    standby: float = 0.12  # per node
    offline: float = 0.1  # per node: left the cluster cleanly
    lost: float = 0.1  # per node: lost while running (unclean, must be fenced)
    stonith: float = 0.5  # share of clusters with a fencing device and stonith-enabled=true
    no_quorum: float = 0.05  # share of clusters without quorum
    asymmetric: float = 0.1  # share of opt-in clusters (symmetric-cluster=false)
    target_stopped: float = 0.04


@dataclass
class _Top:
    """A top-level resource being built, with the primitives it owns."""

    id: str
    kind: str  # "primitive", "group" or "clone"
    primitives: list[str] = field(default_factory=list)
    group: str | None = None  # a clone's group, if it clones one


def generate(seed: int, knobs: Knobs | None = None) -> ClusterSpec:
    """A random cluster with state; deterministic in `seed` and `knobs`."""
    k = knobs or Knobs()
    rnd = random.Random(seed)
    nodes = _nodes(rnd, k)
    names = [n.name for n in nodes]
    primitives: list[Primitive] = []
    groups: list[Group] = []
    clones: list[Clone] = []
    tops: list[_Top] = []
    counter = 0

    def new_primitive() -> str:
        nonlocal counter
        counter += 1
        rid = f"rsc{counter}"
        primitives.append(_primitive(rnd, k, rid))
        return rid

    for index in range(rnd.randint(*k.top_level)):
        roll = rnd.random()
        if roll < k.group_share:
            gid = f"grp{index + 1}"
            members = [new_primitive() for _ in range(rnd.randint(*k.group_size))]
            groups.append(Group(id=gid, members=members, meta=_meta(rnd, k)))
            tops.append(_Top(gid, "group", members))
        elif roll < k.group_share + k.clone_share:
            cid = f"cln{index + 1}"
            if rnd.random() < 0.3:
                gid = f"cgrp{index + 1}"
                members = [new_primitive() for _ in range(rnd.randint(2, 3))]
                groups.append(Group(id=gid, members=members))
                clones.append(Clone(id=cid, child=gid, meta=_clone_meta(rnd, len(names))))
                tops.append(_Top(cid, "clone", members, group=gid))
            else:
                child = new_primitive()
                clones.append(Clone(id=cid, child=child, meta=_clone_meta(rnd, len(names))))
                tops.append(_Top(cid, "clone", [child]))
        else:
            rid = new_primitive()
            tops.append(_Top(rid, "primitive", [rid]))

    stonith = rnd.random() < k.stonith
    if stonith:
        primitives.append(Primitive(id="fencing", agent=FENCE_AGENT,
                                    operations=[Operation(name="monitor", interval=60, timeout=20)]))
        tops.append(_Top("fencing", "primitive", ["fencing"]))

    options = ClusterOptions(
        name=f"gen{seed}",
        stonith_enabled=stonith,
        symmetric_cluster=rnd.random() >= k.asymmetric,
        no_quorum_policy=rnd.choice(["stop", "stop", "ignore", "freeze"]),
        resource_stickiness=rnd.choice([0, 0, 0, 1, 50, 100, INFINITY]),
        migration_threshold=rnd.choice([INFINITY, INFINITY, INFINITY, 1, 3]),
    )
    movable = [t for t in tops if t.id != "fencing"]
    constraints = Constraints(
        location=_locations(rnd, k, movable, names, options.symmetric_cluster),
        colocation=_colocations(rnd, k, movable),
        order=_orders(rnd, k, movable),
    )
    state = _state(rnd, k, seed, nodes, tops, {p.id: p for p in primitives}, stonith)
    return ClusterSpec(
        cluster=options,
        nodes=nodes,
        resources=Resources(primitives=primitives, groups=groups, clones=clones),
        constraints=constraints,
        state=state,
    )


def _nodes(rnd: random.Random, k: Knobs) -> list[Node]:
    nodes = []
    for i in range(rnd.randint(*k.nodes)):
        attributes: dict[str, str] = {}
        if rnd.random() < 0.6:
            attributes["rack"] = rnd.choice(RACKS)
        if rnd.random() < 0.4:
            attributes["ram"] = str(rnd.choice([8, 16, 32, 64]))
        if rnd.random() < 0.2:
            attributes["role"] = "controller"
        nodes.append(Node(name=f"node{i + 1}", attributes=attributes))
    return nodes


def _primitive(rnd: random.Random, k: Knobs, rid: str) -> Primitive:
    interval = rnd.choice([10, 15, 30])
    return Primitive(id=rid, agent=rnd.choice(AGENTS),
                     operations=[Operation(name="monitor", interval=interval, timeout=20)],
                     meta=_meta(rnd, k))


def _meta(rnd: random.Random, k: Knobs) -> Meta:
    meta = Meta()
    if rnd.random() < 0.15:
        meta.resource_stickiness = rnd.choice([0, 10, 200, INFINITY])
    if rnd.random() < 0.1:
        meta.migration_threshold = rnd.choice([1, 2])
    if rnd.random() < k.target_stopped:
        meta.target_role = "Stopped"
    return meta


def _clone_meta(rnd: random.Random, node_count: int) -> Meta:
    meta = Meta(interleave=rnd.random() < 0.5)
    if rnd.random() < 0.35:
        meta.clone_max = rnd.randint(1, max(1, node_count - 1))
    return meta


def _score(rnd: random.Random) -> int:
    return rnd.choice([INFINITY, -INFINITY, 100, 50, -50, 10, 200, 1000, -1000])


def _count(rnd: random.Random, expected: float, items: int) -> int:
    return sum(1 for _ in range(items) if rnd.random() < expected)


def _locations(rnd: random.Random, k: Knobs, tops: list[_Top], names: list[str],
               symmetric: bool) -> list[Location]:
    found: list[Location] = []
    for top in tops:
        wanted = _count(rnd, k.locations, 2)
        if not symmetric:
            # An opt-in cluster runs nothing without a positive preference: give most resources one.
            wanted += 1 if rnd.random() < 0.8 else 0
        for _ in range(wanted):
            lid = f"loc-{top.id}-{len(found) + 1}"
            if rnd.random() < k.rule_share:
                found.append(Location(id=lid, resource=top.id, rules=[_rule(rnd, lid)]))
            else:
                score = abs(_score(rnd)) if not symmetric and rnd.random() < 0.7 else _score(rnd)
                found.append(Location(id=lid, resource=top.id, node=rnd.choice(names), score=score))
    return found


def _rule(rnd: random.Random, lid: str) -> Rule:
    choices = [
        lambda: Expression(attribute="rack", operation="eq", value=rnd.choice(RACKS)),
        lambda: Expression(attribute="rack", operation="ne", value=rnd.choice(RACKS)),
        lambda: Expression(attribute="ram", operation=rnd.choice(["gt", "gte", "lt"]),
                           value=str(rnd.choice([8, 16, 32])), type="integer"),
        lambda: Expression(attribute="role", operation=rnd.choice(["defined", "not_defined"])),
        lambda: Expression(attribute="#uname", operation="eq", value=f"node{rnd.randint(1, 3)}"),
    ]
    expressions = [rnd.choice(choices)() for _ in range(rnd.choice([1, 1, 2]))]
    return Rule(id=f"{lid}-rule", score=_score(rnd), boolean_op=rnd.choice(["and", "or"]),
                expressions=list(expressions))


def _colocations(rnd: random.Random, k: Knobs, tops: list[_Top]) -> list[Colocation]:
    found: list[Colocation] = []
    for i, top in enumerate(tops):
        if i == 0 or rnd.random() >= k.colocations:
            continue
        # Only towards an earlier resource: no colocation cycles.
        with_top = rnd.choice(tops[:i])
        if top.kind == "clone" and with_top.kind != "clone":
            continue  # a clone placed by a primitive is legal but rare; keep the cases readable
        score = rnd.choice([INFINITY, INFINITY, -INFINITY, 100, -100, 500])
        found.append(Colocation(id=f"col-{top.id}-{with_top.id}", resource=top.id,
                                with_resource=with_top.id, score=score))
    return found


def _orders(rnd: random.Random, k: Knobs, tops: list[_Top]) -> list[Order]:
    found: list[Order] = []
    for i, top in enumerate(tops):
        if i == 0 or rnd.random() >= k.orders:
            continue
        first = rnd.choice(tops[:i])  # earlier only: no order cycles
        found.append(Order(id=f"ord-{first.id}-{top.id}", first=first.id, then=top.id,
                           kind=rnd.choice(["Mandatory", "Mandatory", "Optional"])))
    return found


def _state(rnd: random.Random, k: Knobs, seed: int, nodes: list[Node], tops: list[_Top],
           primitives: dict[str, Primitive], stonith: bool) -> ClusterState:
    now = 1_700_000_000.0 + seed % 100_000
    node_states: dict[str, NodeState] = {}
    for node in nodes:
        roll = rnd.random()
        if roll < k.offline:
            ns = NodeState(online=False)
        elif roll < k.offline + k.lost:
            ns = NodeState(online=False, unclean=True)
        else:
            ns = NodeState()
            if rnd.random() < k.standby:
                if rnd.random() < 0.5:
                    ns.standby = True  # a transient attribute in the status section
                else:
                    node.attributes["standby"] = "on"  # a permanent node attribute
        node_states[node.name] = ns
    if all(not ns.online for ns in node_states.values()):
        node_states[nodes[0].name] = NodeState()  # keep one member: the DC
    # Resources run on members and on lost nodes (which still hold them until fenced).
    holders = [n.name for n in nodes if node_states[n.name].online or node_states[n.name].unclean]
    statuses: list[ResourceStatus] = []
    running: set[tuple[str, str]] = set()

    def run(rid: str, node: str) -> None:
        running.add((rid, node))
        statuses.append(_running_status(rnd, k, rid, node, now))

    for top in tops:
        if top.kind == "clone":
            for holder in holders:
                if rnd.random() < k.running:
                    members = top.primitives[: rnd.randint(1, len(top.primitives))]
                    for rid in members:
                        run(rid, holder)
        elif holders and rnd.random() < k.running:
            holder = rnd.choice(holders)
            members = top.primitives if top.kind == "primitive" else \
                top.primitives[: rnd.randint(1, len(top.primitives))]
            for rid in members:
                run(rid, holder)
    # A failed start leaves the resource active (failed) on that node, so only a lone primitive that
    # runs nowhere else gets one: otherwise it would be active twice, a case neither engine is tested on.
    lone = {t.id for t in tops if t.kind == "primitive"} - {rid for rid, _ in running}
    for node in nodes:
        if not node_states[node.name].online:
            continue
        for rid in primitives:
            if (rid, node.name) in running:
                continue
            if rid in lone and rnd.random() < k.failed_start:
                lone.discard(rid)
                running.add((rid, node.name))
                statuses.append(ResourceStatus(resource=rid, node=node.name, failed=True, failed_op="start",
                                               fail_count=INFINITY, last_failure=now - 60))
            elif rnd.random() < k.probes:
                statuses.append(ResourceStatus(resource=rid, node=node.name, role="Stopped"))
    quorum = rnd.random() >= k.no_quorum
    return ClusterState(nodes=node_states, resources=statuses, have_quorum=quorum, now=now)


def _running_status(rnd: random.Random, k: Knobs, rid: str, node: str, now: float) -> ResourceStatus:
    if rnd.random() < k.failed_monitor:
        return ResourceStatus(resource=rid, node=node, failed=True, failed_op="monitor",
                              fail_count=rnd.choice([1, 1, 2, 3]), last_failure=now - 30)
    return ResourceStatus(resource=rid, node=node)
