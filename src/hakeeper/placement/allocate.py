"""Assigning resources to nodes, as Pacemaker 2.1.5 does it.

Resources are assigned in definition order (Pacemaker sorts them only for a non-default
placement-strategy); a resource first assigns every resource it is colocated with, takes their
placement into its node scores, adds the (attenuated) scores of the resources colocated with it,
then picks the best node. Between equal scores the node with fewer resources assigned so far wins,
then the node it runs on, then the lowest node name; a node exactly as good as the best where the
resource already runs is kept.
"""

from __future__ import annotations

from operator import itemgetter

from hakeeper.placement.cluster import (
    NEG,
    CloneE,
    Cluster,
    Coloc,
    Entity,
    GroupE,
    Rsc,
    first_member,
    last_member,
)
from hakeeper.spec.values import INFINITY, add_scores

HACK = NEG * 100  # Pacemaker's "node unusable" marker while merging colocated scores
ACTIVE, NONNEG = 1, 2


class Allocator:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.avail = [n.available for n in cluster.nodes]
        self.names = [n.name for n in cluster.nodes]
        self.n = len(cluster.nodes)
        self.avail_idx = [i for i, a in enumerate(self.avail) if a]
        self._nonzero: dict[int, tuple[list[int], list[int]]] = {}
        self._any: dict[int, tuple[list[int], bool]] = {}
        self._pick = itemgetter(*self.avail_idx) if len(self.avail_idx) > 1 else None

    # -- helpers -------------------------------------------------------------------------------
    def any_available(self, weights: list[int]) -> bool:
        """Whether some available node has a score >= 0 (cached per list, as `nonzero`)."""
        hit = self._any.get(id(weights))
        if hit is not None and hit[0] is weights:
            return hit[1]
        if self._pick is not None:
            result = bool(max(self._pick(weights)) >= 0)
        else:
            result = bool(self.avail_idx) and weights[self.avail_idx[0]] >= 0
        self._any[id(weights)] = (weights, result)
        return result

    def attr(self, node: int, name: str) -> str | None:
        if name == "#uname":
            return self.names[node]
        return self.c.nodes[node].attributes.get(name)

    def weights_of(self, entity: Entity) -> list[int]:
        weights: list[int] = getattr(entity, "weights", None) or [0] * self.n
        return weights

    def nonzero(self, weights: list[int]) -> list[int]:
        """Available nodes where `weights` is not zero, cached per list (lists are replaced,
        never changed in place, once allocation starts)."""
        hit = self._nonzero.get(id(weights))
        if hit is not None and hit[0] is weights:
            return hit[1]
        avail = self.avail
        idx = [i for i, s in enumerate(weights) if s and avail[i]]
        self._nonzero[id(weights)] = (weights, idx)
        return idx

    # -- merging the scores of colocated resources ---------------------------------------------
    def _best_matching(self, entity: Entity, attr: str) -> list[int]:
        weights = self.weights_of(entity)
        avail = self.avail
        if attr == "#uname":
            return [w if avail[i] else NEG for i, w in enumerate(weights)]
        best: dict[str | None, int] = {}
        for i, w in enumerate(weights):
            if avail[i]:
                value = self.attr(i, attr)
                if w > best.get(value, NEG):
                    best[value] = w
        return [best.get(self.attr(i, attr), NEG) for i in range(self.n)]

    def _add_matching(self, work: list[int], entity: Entity, attr: str, factor: float,
                      only_positive: bool) -> None:
        # A zero score adds nothing; unavailable nodes are -INFINITY for every resource already
        # (engine.prepare), so only the nonzero scores on available nodes need the full rule.
        if attr == "#uname":
            scores = self.weights_of(entity)
            indexes = self.nonzero(scores)
        else:
            scores = self._best_matching(entity, attr)
            indexes = [i for i, s in enumerate(scores) if s and self.avail[i]]
        for i in indexes:
            score = scores[i]
            current = work[i]
            if factor < 0 and score < 0:
                continue
            if current == HACK:
                continue
            if score >= INFINITY or score <= NEG:
                weight = int(factor * score + (0.5 if factor * score >= 0 else -0.5))
            else:
                prod = factor * score
                weight = int(prod - 0.5) if prod < 0 else int(prod + 0.5)
            if weight == 0 and score != 0:
                weight = 1 if factor > 0 else (-1 if factor < 0 else 0)
            new = add_scores(weight, current)
            if only_positive and new < 0 and current > 0:
                work[i] = HACK
                continue
            if only_positive and new < 0 and current == 0:
                continue
            work[i] = new

    def add_colocated(self, entity: Entity, work: list[int], attr: str, factor: float,
                      flags: int) -> list[int]:
        """Pacemaker's pcmk__add_colocated_node_scores, for the "with this" direction."""
        if entity.merging:
            return work
        entity.merging = True
        try:
            if isinstance(entity, GroupE):
                if not entity.members:
                    return work
                new = self.add_colocated(entity.members[0], list(work), attr, factor, flags)
                chain = last_member(entity).with_this
            else:
                chain = entity.with_this
                if attr == "#uname" and not self.nonzero(self.weights_of(entity)):
                    if not chain:
                        return work  # nothing to add and nobody further down the chain
                    new = work  # nothing to add here: no copy
                else:
                    new = list(work)
                    self._add_matching(new, entity, attr, factor, bool(flags & NONNEG))
            if self.any_available(new):
                multiplier = -1.0 if factor < 0 else 1.0
                for coloc in chain:
                    f = multiplier * coloc.score / INFINITY
                    new = self.add_colocated(coloc.dependent, new, coloc.attribute, f,
                                             flags | ACTIVE)
            elif flags & ACTIVE:
                return work
            if flags & NONNEG:
                new = [1 if w == HACK else w for w in new]
            return new
        finally:
            entity.merging = False

    # -- applying a colocation with an assigned primary ----------------------------------------
    def primary_nodes(self, coloc: Coloc) -> set[int] | None:
        """Nodes the primary was assigned to, or None when it is not assigned yet."""
        primary = coloc.primary
        if isinstance(primary, GroupE):
            member = last_member(primary) if coloc.score >= INFINITY else first_member(primary)
            if member.provisional:
                return None
            return {member.assigned} if isinstance(member, Rsc) and member.assigned is not None \
                else set()
        if isinstance(primary, CloneE):
            if primary.provisional:
                return None
            out: set[int] = set()
            for inst in primary.instances:
                leaf = last_member(inst)
                if isinstance(leaf, Rsc) and leaf.assigned is not None:
                    if not _role_matches(coloc, leaf):
                        continue
                    out.add(leaf.assigned)
            return out
        if isinstance(primary, Rsc):
            if primary.provisional:
                return None
            if coloc.primary_role == "Promoted" and primary.next_role != "Promoted":
                return set() if coloc.score > 0 else None
            return {primary.assigned} if primary.assigned is not None else set()
        return None

    def apply_coloc(self, rsc: Rsc, coloc: Coloc) -> None:
        if coloc.dependent_role == "Promoted":
            return  # decided when roles are chosen, not where the resource runs
        nodes = self.primary_nodes(coloc)
        if nodes is None:
            return
        score = coloc.score
        if not nodes and score < 0:
            return
        work = list(rsc.weights)
        who = coloc.primary.id
        if not nodes:
            for i in range(self.n):
                work[i] = add_scores(-score, work[i])
            rsc.contributions.append((-1, -score, f"colocation {coloc.id}: {who} is not running"))
        elif coloc.attribute == "#uname" and score >= INFINITY:
            # Mandatory colocation: every node but the primary's is out.
            kept = work
            work = [NEG] * self.n
            for i in nodes:
                work[i] = kept[i]
            where = ", ".join(self.names[n] for n in sorted(nodes))
            rsc.contributions.append(
                (-1, NEG, f"colocation {coloc.id}: must run where {who} runs ({where}), "
                          "so every other node is out"))
        elif coloc.attribute == "#uname" and isinstance(coloc.primary, CloneE) \
                and isinstance(coloc.dependent, CloneE) and coloc.dependent.interleave:
            # An interleaved clone pairs each instance with one instance of the primary: the one
            # on the instance's best node that has one (Pacemaker's find_compatible_child).
            names, counts = self.names, [n.count for n in self.c.nodes]
            hosts = [i for i in nodes if self.avail[i]]
            if hosts:
                best = min(hosts, key=lambda i: (-work[i], counts[i], names[i]))
                work[best] = add_scores(score, work[best])
                rsc.contributions.append((best, score, f"colocation {coloc.id} with {who}"))
        elif coloc.attribute == "#uname" and isinstance(coloc.primary, CloneE) and score > NEG:
            # Pacemaker applies a finite colocation with a clone instance by instance, in
            # instance order, and drops an instance's share when it would leave no node usable.
            for i in self._instance_nodes(coloc.primary, coloc, nodes):
                trial = list(work)
                trial[i] = add_scores(score, trial[i])
                if self.any_available(trial):
                    work = trial
                    rsc.contributions.append((i, score, f"colocation {coloc.id} with {who}"))
        elif coloc.attribute == "#uname":
            for i in nodes:
                work[i] = add_scores(score, work[i])
                rsc.contributions.append((i, score, f"colocation {coloc.id} with {who}"))
        else:
            values = {self.attr(n, coloc.attribute) for n in nodes}
            for i in range(self.n):
                if self.attr(i, coloc.attribute) in values:
                    if score < INFINITY:
                        work[i] = add_scores(score, work[i])
                        rsc.contributions.append((i, score, f"colocation {coloc.id} with {who}"))
                elif score >= INFINITY:
                    work[i] = add_scores(-score, work[i])
                    rsc.contributions.append(
                        (i, -score, f"colocation {coloc.id}: must run where {who} runs"))
        if score <= NEG or score >= INFINITY or self.any_available(work):
            rsc.weights = work

    def _instance_nodes(self, clone: CloneE, coloc: Coloc, nodes: set[int]) -> list[int]:
        """The nodes of `clone`'s instances counted by `primary_nodes`, in instance order."""
        out = []
        # Pacemaker's sorted children put instances whose current node cannot run anything after
        # the others (our placement order does not, yet: see clones.distribute).
        def unusable(inst: Entity) -> bool:
            leaf = first_member(inst)
            cur = leaf.current if isinstance(leaf, Rsc) else None
            return cur is not None and not self.avail[cur]

        ordered = sorted(clone.placed_order or clone.instances, key=unusable)
        for inst in ordered:
            leaf = last_member(inst)
            if isinstance(leaf, Rsc) and leaf.assigned is not None and leaf.assigned in nodes:
                if not _role_matches(coloc, leaf):
                    continue
                out.append(leaf.assigned)
        return out

    # -- assignment ----------------------------------------------------------------------------
    def assign(self, entity: Entity, prefer: int | None = None) -> int | None:
        if isinstance(entity, GroupE):
            return self._assign_group(entity, prefer)
        if isinstance(entity, CloneE):
            self._assign_clone(entity)
            return None
        assert isinstance(entity, Rsc)
        return self._assign_rsc(entity, prefer)

    def _assign_group(self, group: GroupE, prefer: int | None) -> int | None:
        if group.parent is not None and group.parent.provisional and not group.parent.allocating:
            self.assign(group.parent)
        if not group.provisional or group.allocating:
            return group.members[0].assigned if group.members else None
        group.allocating = True
        first: int | None = None
        for i, member in enumerate(group.members):
            node = self._assign_rsc(member, prefer)
            if i == 0:
                first = node
        group.allocating = False
        group.provisional = False
        return first

    def _assign_rsc(self, rsc: Rsc, prefer: int | None) -> int | None:
        parent = rsc.parent
        if parent is not None and parent.provisional and not parent.allocating:
            self.assign(parent, prefer)
        if not rsc.provisional or rsc.allocating:
            return rsc.assigned
        rsc.allocating = True
        for coloc in rsc.this_with:
            archive = None
            if coloc.score < 0 and coloc.score > NEG:
                archive = list(rsc.weights)
            self.assign(coloc.primary)
            self.apply_coloc(rsc, coloc)
            if archive is not None and not self.any_available(rsc.weights):
                rsc.weights = archive
        # Merging the scores of the resources colocated with this one can only change the choice
        # when more than one node is still possible (a mandatory colocation usually leaves one):
        # a merge that would make the last node negative is rolled back, so skip the work.
        weights = rsc.weights
        open_count = self.n - weights.count(NEG)  # unavailable nodes are -INFINITY already
        merge = open_count > 1 or (open_count == 1 and max(weights) < 0)
        for coloc in rsc.with_this if merge else ():
            merged = self.add_colocated(coloc.dependent, rsc.weights, coloc.attribute,
                                        coloc.score / INFINITY, ACTIVE)
            if merged is not rsc.weights:
                for i in range(self.n):
                    if merged[i] != rsc.weights[i]:
                        rsc.contributions.append(
                            (i, merged[i] - rsc.weights[i] if abs(merged[i]) < INFINITY
                             else merged[i],
                             f"{coloc.dependent.id} wants to run with it ({coloc.id})"))
                rsc.weights = merged
        if rsc.next_role == "Stopped":
            rsc.weights = [NEG] * self.n
        self._choose(rsc, prefer)
        rsc.allocating = False
        rsc.provisional = False
        return rsc.assigned

    def _choose(self, rsc: Rsc, prefer: int | None) -> None:
        c = self.c
        if not rsc.managed:
            node = rsc.current
            rsc.why = "it is not managed: left where it is"
            self._finalize(rsc, node, force=True)
            return
        if c.stop_all:
            rsc.why = "stop-all-resources is set"
            self._finalize(rsc, None, force=True)
            return
        weights, avail, nodes = rsc.weights, self.avail, c.nodes
        current = rsc.current

        def key(i: int) -> tuple[int, int, int, str]:
            w = weights[i] if avail[i] else NEG
            return (-w, nodes[i].count, 0 if i == current else 1, nodes[i].name)

        if not self.avail_idx:
            self._finalize(rsc, None)
            return
        # The best score first (cheap), then Pacemaker's tie-breakers among the equals only.
        top = max(self._pick(weights)) if self._pick is not None else weights[self.avail_idx[0]]
        tied = [i for i in self.avail_idx if weights[i] == top]
        best = tied[0] if len(tied) == 1 else min(tied, key=key)
        chosen = best
        bw = weights[best] if avail[best] else NEG
        if prefer is not None and avail[prefer] and weights[prefer] >= bw and weights[prefer] >= 0:
            chosen = prefer
        elif bw > 0 and current is not None and avail[current] and weights[current] >= 0 \
                and weights[current] == bw and not (rsc.parent and isinstance(rsc.parent, CloneE)
                                                    and rsc.parent.unique):
            chosen = current
        self._finalize(rsc, chosen)

    def _finalize(self, rsc: Rsc, node: int | None, force: bool = False) -> None:
        if node is not None and not force and (not self.avail[node] or rsc.weights[node] < 0):
            node = None
        rsc.assigned = node
        if node is None:
            if rsc.next_role is None or rsc.next_role != "Stopped":
                rsc.next_role = "Stopped"
            if not rsc.why:
                rsc.why = "no node can run it"
            return
        self.c.nodes[node].count += 1
        if not rsc.why:
            rsc.why = f"{self.names[node]} has the best score ({rsc.weights[node]})"

    def unassign(self, rsc: Rsc) -> None:
        if rsc.assigned is not None:
            self.c.nodes[rsc.assigned].count -= 1
        rsc.assigned = None
        rsc.provisional = True
        rsc.next_role = None
        rsc.why = ""

    # -- clones --------------------------------------------------------------------------------
    def _assign_clone(self, clone: CloneE) -> None:
        from hakeeper.placement.clones import distribute
        if not clone.provisional or clone.allocating:
            return
        clone.allocating = True
        for coloc in clone.this_with:
            self.assign(coloc.primary)
        for coloc in clone.with_this:
            clone.weights = self.add_colocated(coloc.dependent, clone.weights, coloc.attribute,
                                               coloc.score / INFINITY, ACTIVE | NONNEG)
        distribute(self, clone)
        clone.allocating = False
        clone.provisional = False


def _role_matches(coloc: Coloc, leaf: Rsc) -> bool:
    """Whether a clone instance counts for a colocation with the clone in a given role."""
    if coloc.primary_role == "Promoted":
        return leaf.next_role == "Promoted"
    if coloc.primary_role == "Unpromoted":
        return leaf.next_role != "Promoted"  # roles are chosen when the clone is placed
    return True


def allocate(cluster: Cluster) -> Allocator:
    alloc = Allocator(cluster)
    for entity in cluster.top:
        alloc.assign(entity)
    for rsc in cluster.primitives:
        if rsc.provisional:
            alloc.assign(rsc)
    return alloc

