"""Distributing clone instances over nodes, and choosing which instances are promoted.

Instances already running keep their node when it is still allowed and not over the per-node
share (Pacemaker's pre-allocation); the others go, one by one, to the best node that still has
room (clone-node-max). Promotable clones then promote the instances with the highest promotion
score, up to promoted-max (and promoted-node-max per node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hakeeper.placement.cluster import NEG, CloneE, Entity, GroupE, Rsc, first_member, last_member, leaf_primitives
from hakeeper.spec.values import INFINITY, add_scores, parse_score

if TYPE_CHECKING:
    from hakeeper.placement.allocate import Allocator


def _current(inst: Entity) -> int | None:
    leaf = first_member(inst)
    return leaf.current if isinstance(leaf, Rsc) else None


def _failed(inst: Entity) -> bool:
    return any(r.failed for r in leaf_primitives(inst))


def _provisional(inst: Entity) -> bool:
    return all(r.provisional for r in leaf_primitives(inst))


def distribute(alloc: Allocator, clone: CloneE) -> None:
    nodes = alloc.c.nodes
    counts = [0] * len(nodes)
    available = sum(1 for n in nodes if n.available)
    limit = clone.clone_max
    per_host = clone.clone_node_max
    all_coloc = limit < available
    loop_max = max(1, limit // available) if available else 1
    # The clone's own colocations act on every instance.
    for inst in clone.instances:
        head = first_member(inst)
        tail = last_member(inst)
        if isinstance(head, Rsc):
            head.this_with = list(clone.this_with) + head.this_with
        if isinstance(tail, Rsc):
            tail.with_this = tail.with_this + [
                c for c in clone.with_this if all_coloc or c.score < 0 or c.score >= INFINITY]
    own = clone.weights

    def rank(inst: Entity) -> int:
        cur = _current(inst)
        if cur is None or _failed(inst):
            return 1
        # Running where the clone itself may not run: placed after the instances not running.
        return 2 if own and own[cur] < 0 else 0

    order = sorted(clone.instances, key=rank)
    allocated = 0
    for inst in order:
        if allocated >= limit:
            break
        cur = _current(inst)
        if cur is None or not _provisional(inst) or _failed(inst):
            continue
        leaf = first_member(inst)
        if not nodes[cur].available or not isinstance(leaf, Rsc) or leaf.weights[cur] < 0:
            continue
        if isinstance(inst, GroupE) and own and own[cur] < 0:
            continue  # a group instance's own score there (the clone's, no stickiness) is negative
        if counts[cur] >= loop_max:
            continue
        if _allocate_instance(alloc, clone, inst, cur, per_host, counts) is not None:
            allocated += 1
    for inst in order:
        if not _provisional(inst):
            continue
        if allocated >= limit:
            for leaf in leaf_primitives(inst):
                leaf.weights = [NEG] * len(nodes)
                leaf.contributions.append((-1, NEG, f"clone-max {limit} instances already placed"))
                leaf.why = f"clone {clone.id} already has clone-max ({limit}) instances placed"
            alloc.assign(inst)
            continue
        if _allocate_instance(alloc, clone, inst, None, per_host, counts) is not None:
            allocated += 1
    if clone.promotable:
        set_roles(alloc, clone)


def _allocate_instance(alloc: Allocator, clone: CloneE, inst: Entity, prefer: int | None,
                       per_host: int, counts: list[int]) -> int | None:
    leaves = leaf_primitives(inst)
    if prefer is not None and leaves and leaves[0].weights[prefer] < 0:
        return None
    nodes = alloc.c.nodes
    # An instance may not run where the clone itself scores below zero, whatever the instance's
    # own stickiness says (Pacemaker checks the clone's score, not the instance's).
    own = clone.weights
    full = [n.index for n in nodes
            if not n.available or counts[n.index] >= per_host or own[n.index] < 0]
    for leaf in leaves:
        # Weights lists are replaced, not changed in place (the allocator caches by list).
        weights = list(leaf.weights)
        for node in full:
            if weights[node] > NEG:
                weights[node] = NEG
                leaf.contributions.append(
                    (node, NEG, "the node is unavailable or already has clone-node-max instances"))
        leaf.weights = weights
    backup = [(leaf, list(leaf.weights), len(leaf.contributions)) for leaf in leaves]
    chosen = alloc.assign(inst, prefer)
    if chosen is not None and prefer is not None and chosen != prefer:
        if isinstance(inst, GroupE):
            # Pacemaker 2.1.5 rolls back only the group's own scores here: its members stay
            # where they were just placed, uncounted against clone-node-max and clone-max, so a
            # later instance may land on the same node. Reproduced so plans agree with it.
            return None
        for leaf, weights, ncontrib in backup:
            alloc.unassign(leaf)
            leaf.weights = weights
            del leaf.contributions[ncontrib:]
        return None
    if chosen is not None:
        counts[chosen] += 1
    return chosen


def promotion_score(alloc: Allocator, clone: CloneE, leaf: Rsc, node: int,
                    extra: list[tuple[int, int, str]]) -> int | None:
    attrs = alloc.c.nodes[node].attributes
    score: int | None = None
    for name in (f"master-{leaf.base}", f"promotion-{leaf.base}", f"master-{leaf.id}"):
        if name in attrs:
            try:
                score = parse_score(attrs[name])
            except ValueError:
                score = 0
            break
    for n, value, _words in extra:
        if n == node:
            score = add_scores(score or 0, value)
    return score


def set_roles(alloc: Allocator, clone: CloneE,
              extra: list[tuple[int, int, str]] | None = None) -> None:
    extra = extra if extra is not None else clone.promotion_locations
    candidates: list[tuple[int, int, int, Entity, Rsc, int]] = []
    for pos, inst in enumerate(clone.instances):
        leaf = first_member(inst)
        if not isinstance(leaf, Rsc) or leaf.assigned is None:
            continue
        for member in leaf_primitives(inst):
            if member.next_role is None:
                member.next_role = "Unpromoted"
        if leaf.target_role in ("Unpromoted", "Started"):
            continue
        score = promotion_score(alloc, clone, leaf, leaf.assigned, extra)
        # Promoted-role colocations with other resources add to the promotion score.
        for coloc in leaf.this_with:
            if coloc.dependent_role == "Promoted":
                nodes = alloc.primary_nodes(coloc)
                if nodes and leaf.assigned in nodes:
                    score = add_scores(score or 0, coloc.score)
                elif nodes is not None and coloc.score >= INFINITY:
                    score = NEG
        if score is None and leaf.role == "Promoted" and leaf.current == leaf.assigned:
            score = 0  # promoted now and nothing says otherwise: it may stay promoted
        if score is None or score < 0:
            continue
        # Between equals, the instance already promoted stays promoted.
        promoted_now = 0 if leaf.role == "Promoted" and leaf.current == leaf.assigned else 1
        candidates.append((-score, promoted_now, pos, inst, leaf, leaf.assigned))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    per_node: dict[int, int] = {}
    promoted = 0
    quorum_demote = not alloc.c.have_quorum and alloc.c.no_quorum_policy == "demote"
    for _neg, _now, _pos, inst, _leaf, node in candidates:
        if promoted >= clone.promoted_max or quorum_demote:
            break
        if per_node.get(node, 0) >= clone.promoted_node_max:
            continue
        per_node[node] = per_node.get(node, 0) + 1
        promoted += 1
        for member in leaf_primitives(inst):
            member.next_role = "Promoted"
            member.why += "; promoted (highest promotion score)"
