"""Compile a ClusterSpec and a ClusterState into the scheduler's working model (cluster.py)."""

from __future__ import annotations

import itertools
from typing import Any

from hakeeper.placement.cluster import (
    NEG,
    CloneE,
    Cluster,
    Coloc,
    Entity,
    GroupE,
    NodeInfo,
    Rsc,
    first_member,
    last_member,
)
from hakeeper.spec.model import ClusterSpec, ClusterState, Meta, Primitive, ResourceStatus
from hakeeper.spec.values import INFINITY

FailTable = dict[tuple[str, int], tuple[int, float | None]]


def _in_clone(entity: Entity | None) -> bool:
    while entity is not None:
        if isinstance(entity, CloneE):
            return True
        entity = entity.parent
    return False


_META_FIELDS = frozenset(Meta.model_fields)


class MetaView:
    """Meta attributes with the first set value winning: primitive over group over clone."""

    def __init__(self, *metas: Meta | None) -> None:
        # Only the attributes actually given matter (most primitives give none): resolve them
        # once, outermost first so the innermost wins.
        self.values: dict[str, Any] = {}
        for meta in reversed([m for m in metas if m is not None]):
            for name in meta.model_fields_set:
                value = getattr(meta, name) if name in _META_FIELDS else None
                if value is not None:
                    self.values[name] = value
            for name, value in (meta.model_extra or {}).items():
                if value is not None:
                    self.values[name] = value

    def get(self, name: str) -> Any:
        return self.values.get(name)


def _meta_chain(*metas: Meta | None) -> MetaView:
    return MetaView(*metas)


def _is_true(value: object) -> bool:
    return str(value).lower() in ("true", "yes", "1", "on", "y")


def build(spec: ClusterSpec, state: ClusterState | None) -> tuple[Cluster, FailTable]:
    state = state or ClusterState()
    nodes: list[NodeInfo] = []
    for i, node in enumerate(spec.nodes):
        ns = state.nodes.get(node.name)
        # Pacemaker's built-in node attributes.
        attrs = {"#uname": node.name, "#id": node.name, "#kind": "cluster",
                 "#is_dc": "true" if state.dc == node.name else "false",
                 "#cluster-name": spec.cluster.name}
        attrs.update(node.attributes)
        info = NodeInfo(i, node.name, attrs)
        if ns is not None:
            attrs.update(ns.attributes)
            info.online, info.standby = ns.online, ns.standby
            info.maintenance, info.unclean = ns.maintenance, ns.unclean
            # A node shutting down or not yet accepted by the controller runs nothing new.
            info.shutdown = ns.shutdown or ns.pending
            info.pending = ns.pending
            info.fence_reason = ns.fence_reason
        if _is_true(attrs.get("standby", "false")):
            info.standby = True
        if _is_true(attrs.get("maintenance", "false")):
            info.maintenance = True
        nodes.append(info)
    node_index = {n.name: n.index for n in nodes}
    opts = spec.cluster
    have_quorum = state.have_quorum
    cluster = Cluster(keep_orphans=opts.other.get("stop-orphan-resources", "true").lower()
                      in ("false", "no", "0", "off"),
                      nodes=nodes, node_index=node_index, top=[], entities={}, primitives=[],
                      stonith_enabled=opts.stonith_enabled, fencing=[], have_quorum=have_quorum,
                      no_quorum_policy=opts.no_quorum_policy, symmetric=opts.symmetric_cluster,
                      stop_all=opts.stop_all_resources, maintenance_mode=opts.maintenance_mode)
    # A node is fenced when it is unclean and fencing is enabled; without quorum only under
    # no-quorum-policy=ignore (a partition without quorum must not shoot the others), or when
    # the node is still in our own membership (online), as Pacemaker's pe_can_fence allows.
    cluster.can_fence = opts.stonith_enabled and (have_quorum or opts.no_quorum_policy == "ignore")
    cluster.fencing = [n.index for n in nodes if n.unclean and fenceable(cluster, n.index)]
    _build_resources(spec, cluster)
    fail = _apply_state(state, cluster)
    _build_colocations(spec, cluster)
    return cluster, fail


def fenceable(cluster: Cluster, node: int) -> bool:
    """Whether `node` may be fenced: always with quorum (or ignore), else only a member we see."""
    return cluster.can_fence or (cluster.stonith_enabled and cluster.nodes[node].online)


def _new_rsc(prim: Primitive, rid: str, order: int, meta: MetaView, spec: ClusterSpec,
             base: list[int], parent: Entity | None) -> Rsc:
    opts = spec.cluster
    rsc = Rsc(id=rid, order=order, parent=parent, base=prim.id, agent=str(prim.agent),
              weights=list(base))
    stickiness = meta.get("resource_stickiness")
    if stickiness is None and "resource_stickiness" not in opts.model_fields_set \
            and isinstance(parent, CloneE | GroupE) and _in_clone(parent):
        stickiness = 1  # Pacemaker's default for clone instances
    rsc.stickiness = stickiness if stickiness is not None else opts.resource_stickiness
    threshold = meta.get("migration_threshold")
    rsc.migration_threshold = threshold if threshold is not None else opts.migration_threshold
    rsc.failure_timeout = meta.get("failure_timeout")
    rsc.target_role = meta.get("target_role")
    managed = meta.get("is_managed")
    rsc.managed = managed if managed is not None else True
    if opts.maintenance_mode or _is_true(meta.get("maintenance") or False):
        rsc.managed = False  # maintenance: the cluster leaves it alone
    rsc.priority = meta.get("priority") or 0
    rsc.requires_quorum = meta.get("requires") != "nothing"
    rsc.multiple_active = meta.get("multiple_active") or "stop_start"
    rsc.needs_fencing = opts.stonith_enabled and prim.agent.cls != "stonith" and \
        meta.get("requires") not in ("nothing", "quorum")
    rsc.allow_migrate = bool(meta.get("allow_migrate"))
    rsc.contributions = [(node, score, "the node's own score")
                         for node, score in enumerate(base) if score] if any(base) else []
    return rsc


def _build_resources(spec: ClusterSpec, cluster: Cluster) -> None:
    res = spec.resources
    prims = {p.id: p for p in res.primitives}
    groups = {g.id: g for g in res.groups}
    nnodes = len(cluster.nodes)
    base = [n.score for n in spec.nodes] if spec.cluster.symmetric_cluster else [0] * nnodes
    group_of = {m: g.id for g in res.groups for m in g.members}
    clone_of = {c.child: c.id for c in res.clones}
    # Definition order of top-level resources: where their first primitive appears.
    first_pos: dict[str, int] = {}
    for pos, prim in enumerate(res.primitives):
        top = prim.id
        if top in group_of:
            top = group_of[top]
        if top in clone_of:
            top = clone_of[top]
        first_pos.setdefault(top, pos)
    clones = {c.id: c for c in res.clones}

    def priority(top: str) -> int:
        meta = clones[top].meta if top in clones else (
            groups[top].meta if top in groups else prims[top].meta)
        return meta.priority or 0

    # Pacemaker sorts resources by priority (highest first) when it reads the configuration,
    # keeping definition order between equals: that order drives allocation and the summary.
    tops = sorted(first_pos, key=lambda t: (-priority(t), first_pos[t]))

    def make_group(gid: str, suffix: str, order: int, parent: Entity | None,
                   outer: Meta | None) -> GroupE:
        group = groups[gid]
        entity = GroupE(id=gid + suffix, order=order, parent=parent)
        entity.weights = [0] * nnodes
        for member in group.members:
            prim = prims[member]
            meta = _meta_chain(prim.meta, group.meta, outer)
            rsc = _new_rsc(prim, member + suffix, order, meta, spec, base, entity)
            if isinstance(parent, CloneE):
                cluster.clone_of[member] = parent
            entity.members.append(rsc)
            cluster.entities[rsc.id] = rsc
            cluster.primitives.append(rsc)
        cluster.entities[entity.id] = entity
        # Each member is colocated with the one before it and ordered after it.
        for before, after in zip(entity.members, entity.members[1:], strict=False):
            coloc = Coloc(f"group:{gid}{suffix}", after, before, INFINITY, None, None, "#uname")
            after.this_with.append(coloc)
            before.with_this.append(coloc)
        return entity

    for order, top in enumerate(tops):
        if top in clones:
            clone = clones[top]
            meta = clone.meta
            cmax = meta.clone_max if meta.clone_max is not None else nnodes
            entity = CloneE(id=clone.id, order=order, child_id=clone.child)
            entity.clone_max = cmax
            entity.clone_node_max = meta.clone_node_max or 1
            entity.interleave = bool(meta.interleave)
            entity.ordered = bool(meta.ordered)
            entity.unique = bool(meta.globally_unique)
            entity.promotable = bool(meta.promotable)
            entity.promoted_max = meta.promoted_max if meta.promoted_max is not None else 1
            entity.promoted_node_max = meta.promoted_node_max or 1
            extra = meta.model_extra or {}
            try:
                entity.clone_min = int(extra.get("clone-min", extra.get("clone_min", 0)))
            except ValueError:
                entity.clone_min = 0
            entity.priority = meta.priority or 0
            entity.weights = [0] * nnodes
            cluster.entities[clone.id] = entity
            for i in range(cmax):
                inst: Entity
                if clone.child in groups:
                    inst = make_group(clone.child, f":{i}", order, entity, meta)
                else:
                    prim = prims[clone.child]
                    inst = _new_rsc(prim, f"{prim.id}:{i}", order,
                                    _meta_chain(prim.meta, meta), spec, base, entity)
                    cluster.entities[inst.id] = inst
                    cluster.primitives.append(inst)
                entity.instances.append(inst)
            # The unsuffixed child id names the clone's child for constraints.
            cluster.entities.setdefault(clone.child, entity)
            cluster.clone_of.setdefault(clone.child, entity)
            cluster.top.append(entity)
        elif top in groups:
            g = make_group(top, "", order, None, None)
            g.priority = groups[top].meta.priority or 0
            cluster.top.append(g)
        else:
            prim = prims[top]
            rsc = _new_rsc(prim, prim.id, order, _meta_chain(prim.meta), spec, base, None)
            cluster.entities[rsc.id] = rsc
            cluster.primitives.append(rsc)
            cluster.top.append(rsc)


def _apply_state(state: ClusterState, cluster: Cluster) -> FailTable:
    fail: FailTable = {}
    # Anonymous clone instances found running get the lowest free instance numbers, in the
    # order the state lists them (Pacemaker numbers them as it reads the status section).
    used: dict[str, dict[int, Any]] = {}
    for status in state.resources:
        node = cluster.node_index.get(status.node)
        if node is None:
            continue
        rsc = _locate(status, node, cluster, used)
        if rsc is None:
            if status.role == "Stopped" and not status.failed:
                continue
            rsc = _orphan(status, cluster)
            if rsc is None:
                continue
        key = (rsc.id, node)
        if status.fail_count:
            fail[key] = (status.fail_count, status.last_failure)
        if status.failure_kind in ("hard", "fatal") and status.on_fail != "ignore":
            # Not installed, not configured...: banned there (or everywhere), running or not.
            rsc.hard_failures.append(-1 if status.failure_kind == "fatal" else node)
        if status.role == "Stopped" and not status.failed:
            continue
        info = cluster.nodes[node]
        if not info.online and not info.unclean and not info.maintenance:
            continue  # a node that left cleanly runs nothing (unless in maintenance)
        if info.unclean and not cluster.stonith_enabled:
            continue  # without fencing, an unclean node's resources count as stopped
        if status.on_fail == "ignore":
            status = status.model_copy(update={"failed": False})
        if (status.blocked or status.on_fail == "block") and not info.unclean:
            rsc.managed = False  # nothing more may be done to it until it is cleaned up
        if status.failed and status.on_fail == "stop":
            rsc.target_role = "Stopped"
        if node not in rsc.running_on:
            rsc.running_on.append(node)
        if info.maintenance:
            rsc.managed = False  # what runs on a node in maintenance is left alone
        role = status.role if status.role != "Stopped" else "Started"
        if role == "Promoted" or rsc.role in ("Stopped", "Started"):
            rsc.role = role
        if status.failed:
            rsc.failed = True
            if status.failed_op == "stop" and status.on_fail in (None, "fence"):
                rsc.failed_stop = True
    return fail


def _orphan(status: ResourceStatus, cluster: Cluster) -> Rsc | None:
    """A resource the status knows but the configuration does not (any more): it is stopped.

    A clone's surplus instance (beyond clone-max) becomes the clone's next-numbered instance;
    anything else is a top-level orphan after the configured resources, as Pacemaker lists them.
    """
    base = status.resource.partition(":")[0]
    clone = cluster.clone_of.get(base)
    if clone is not None:
        # The next number after the configured instances (and earlier orphans of this id).
        taken = cluster.orphans.get(base, len(clone.instances) - 1) + 1
        cluster.orphans[base] = taken
        rid = f"{base}:{taken}"
        if status.resource.partition(":")[2].isdigit() and clone.unique:
            rid = status.resource
    elif base in cluster.entities:
        return None
    else:
        rid = status.resource
    existing = cluster.entities.get(rid)
    if isinstance(existing, Rsc):
        return existing
    order = len(cluster.top) if clone is None else clone.order
    rsc = Rsc(id=rid, order=order, parent=clone, base=base, agent=status.agent or "",
              weights=[NEG] * len(cluster.nodes))
    rsc.next_role = "Stopped"
    rsc.why = "it is no longer configured (orphan): stopped"
    if cluster.keep_orphans and clone is None:
        rsc.managed = False
        rsc.why = "it is no longer configured (orphan); stop-orphan-resources is false"
    rsc.contributions.append((-1, NEG, "not in the configuration any more"))
    cluster.entities[rid] = rsc
    if clone is not None:
        # Listed right after the clone's configured instances (and earlier orphans).
        at = max((i for i, p in enumerate(cluster.primitives) if p.order <= clone.order),
                 default=-1)
        cluster.primitives.insert(at + 1, rsc)
        if clone.child_id == base:
            clone.instances.append(rsc)
    else:
        cluster.primitives.append(rsc)
    return rsc


def _locate(status: ResourceStatus, node: int, cluster: Cluster,
            used: dict[str, dict[int, Any]]) -> Rsc | None:
    entity = cluster.entities.get(status.resource)
    if isinstance(entity, Rsc) and not isinstance(entity.parent, CloneE) and not (
            isinstance(entity.parent, GroupE) and isinstance(entity.parent.parent, CloneE)):
        return entity
    name = status.resource
    base, _, num = name.partition(":")
    clone = cluster.clone_of.get(base)
    for candidate in (cluster.entities.get(base), entity):
        if clone is not None:
            break
        if isinstance(candidate, CloneE):
            clone = candidate
        elif isinstance(candidate, Rsc) and candidate.parent is not None:
            parent = candidate.parent
            if isinstance(parent, CloneE):
                clone = parent
            elif isinstance(parent, GroupE) and isinstance(parent.parent, CloneE):
                clone = parent.parent
        if clone is not None:
            break
    if clone is None:
        return None
    if clone.unique:
        # Globally unique: each numbered instance is its own resource.
        if num.isdigit() and int(num) < len(clone.instances):
            return _member(clone.instances[int(num)], base)
        return None
    # Anonymous: the number in the history means nothing (Pacemaker strips it). The instance
    # already active on this node is reused; otherwise the lowest-numbered instance not active
    # anywhere yet, in the order the status lists them (indexed: statuses come by thousands).
    if clone.instances and isinstance(clone.instances[0], GroupE):
        return _locate_in_group_clone(status, node, clone, base, used)
    index = used.setdefault(clone.id + "/" + base, {})
    on_node = index.get(node)
    if isinstance(on_node, Rsc) and node in on_node.running_on:
        if index.get(-2 - node) not in (None, status.resource) and status.role != "Stopped":
            return None  # a second copy active on the same node: an orphan instance
        return on_node
    start = index.get(-1, 0)
    for i in range(start, len(clone.instances)):
        target = _member(clone.instances[i], base)
        if target is not None and not target.running_on:
            index[-1] = i
            index[node] = target
            index[-2 - node] = status.resource
            return target
    return None


def _locate_in_group_clone(status: ResourceStatus, node: int, clone: CloneE, base: str,
                           used: dict[str, dict[int, Any]]) -> Rsc | None:
    """A cloned group's instance is chosen per node for the whole group: the members found on
    one node belong to one instance (the one already there, else the lowest unused one)."""
    index = used.setdefault(clone.id, {})
    inst = index.get(node)
    if isinstance(inst, GroupE):
        member = _member(inst, base)
        if member is not None and not (node in member.running_on and status.role != "Stopped"):
            return member
        return None  # a second copy of this member on the node: an orphan
    claimed = {id(i) for k, i in index.items() if k >= 0}
    for candidate in clone.instances:
        if isinstance(candidate, GroupE) and id(candidate) not in claimed and not any(
                m.running_on for m in candidate.members):
            index[node] = candidate
            return _member(candidate, base)
    return None


def _leaves(inst: Entity) -> list[Rsc]:
    if isinstance(inst, GroupE):
        return inst.members
    return [inst] if isinstance(inst, Rsc) else []


def _member(inst: Entity, base: str) -> Rsc | None:
    for leaf in _leaves(inst):
        if leaf.base == base:
            return leaf
    return None


def _build_colocations(spec: ClusterSpec, cluster: Cluster) -> None:
    for col in spec.constraints.colocation:
        pairs: list[tuple[str, str, str | None, str | None]] = []
        if col.resource and col.with_resource:
            pairs.append((col.resource, col.with_resource, col.resource_role, col.with_role))
        sets = col.sets
        for rset in sets:
            if rset.sequential and col.score < 0:
                # Anti-colocation: each member with every member before it, so no two of the
                # set share a node (as Pacemaker).
                for i, later in enumerate(rset.resources):
                    for earlier in rset.resources[:i]:
                        pairs.append((later, earlier, rset.role, rset.role))
            elif rset.sequential:
                for a, b in itertools.pairwise(rset.resources):
                    pairs.append((b, a, rset.role, rset.role))
        for s1, s2 in itertools.pairwise(sets):
            # Resources of an earlier set are placed relative to the later set.
            # As Pacemaker: the first member of an ordered earlier set (else each member) with
            # the last member of an ordered later set (else each member).
            deps = s1.resources[:1] if s1.sequential else s1.resources
            prims = s2.resources[-1:] if s2.sequential else s2.resources
            for dep_name in deps:
                for prim_name in prims:
                    pairs.append((dep_name, prim_name, s1.role, s2.role))
        for dep_id, prim_id, dep_role, prim_role in pairs:
            dep = cluster.entities.get(dep_id)
            prim = cluster.entities.get(prim_id)
            if dep is None or prim is None or dep is prim:
                continue
            prim_e: Entity = prim
            coloc = Coloc(col.id, dep, prim, col.score, dep_role, prim_role, col.node_attribute)
            # Dependent group: its first member carries it; primary group: its last member.
            first_member(dep).this_with.append(coloc)
            primary_side = last_member(prim_e) if isinstance(prim_e, GroupE) else prim_e
            primary_side.with_this.append(coloc)


def ban_everywhere(rsc: Rsc, words: str) -> None:
    for node in range(len(rsc.weights)):
        rsc.weights[node] = NEG
    rsc.contributions.append((-1, NEG, words))
