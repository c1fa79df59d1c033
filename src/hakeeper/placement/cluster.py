"""The scheduler's working model: the spec and state compiled into flat, index-based objects.

Everything the allocation touches per resource is an integer list over node indexes, and every
constraint is indexed by the resource it concerns, so no pass scans all constraints per resource.
Groups and clones keep references to their members; colocations are attached to the primitives
they act on when the model is built (a group's "with" colocations act on its first member, those
naming a group as the primary on its last member), as Pacemaker expands them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hakeeper.spec.values import INFINITY

NEG = -INFINITY
ROLE_RANK = {"Stopped": 1, "Started": 2, "Unpromoted": 3, "Promoted": 4}


@dataclass(eq=False, slots=True)
class NodeInfo:
    index: int
    name: str
    attributes: dict[str, str]
    online: bool = True
    standby: bool = False
    maintenance: bool = False
    unclean: bool = False
    shutdown: bool = False
    pending: bool = False  # joined but not yet accepted: cannot be probed yet
    fence_reason: str | None = None
    # Resources assigned so far: Pacemaker's tie-breaker between nodes of equal score.
    count: int = 0

    @property
    def available(self) -> bool:
        return (self.online and not self.standby and not self.maintenance and not self.unclean
                and not self.shutdown)


@dataclass(eq=False, slots=True)
class Coloc:
    id: str
    dependent: Entity
    primary: Entity
    score: int
    dependent_role: str | None
    primary_role: str | None
    attribute: str


@dataclass(eq=False, slots=True)
class Entity:
    """Common part of primitives, groups and clones (and clone instances of either)."""

    id: str
    order: int  # definition order of the top-level resource (allocation order)
    parent: Entity | None = None
    this_with: list[Coloc] = field(default_factory=list)  # colocations where this is dependent
    with_this: list[Coloc] = field(default_factory=list)  # colocations where this is primary
    provisional: bool = True
    allocating: bool = False
    merging: bool = False
    priority: int = 0


@dataclass(eq=False, slots=True)
class Rsc(Entity):
    """A primitive, or one instance of a cloned primitive (`child:N`)."""

    base: str = ""  # the primitive id in the spec
    agent: str = ""
    weights: list[int] = field(default_factory=list)
    running_on: list[int] = field(default_factory=list)
    role: str = "Stopped"
    next_role: str | None = None  # None: not decided yet (Started unless something says else)
    failed: bool = False
    failed_stop: bool = False
    managed: bool = True
    stickiness: int = 0
    migration_threshold: int = INFINITY
    failure_timeout: float | None = None
    target_role: str | None = None
    requires_quorum: bool = True
    multiple_active: str = "stop_start"
    needs_fencing: bool = True
    allow_migrate: bool = False
    migrating: bool = False  # moves by live migration in this transition
    # Nodes where a hard failure (not installed, ...) bans it; -1: a fatal one bans every node.
    hard_failures: list[int] = field(default_factory=list)
    # In an opt-in cluster, the nodes a location constraint names for it, whatever the score
    # (Pacemaker's "allowed nodes", which clone notifications list as available); None otherwise.
    allowed: set[int] | None = None
    assigned: int | None = None
    acts: dict[str, list[Any]] = field(default_factory=dict)  # this resource's actions by task
    # What moved each score, for `explain`: (node index or -1 for all nodes, score, words).
    contributions: list[tuple[int, int, str]] = field(default_factory=list)
    why: str = ""

    @property
    def current(self) -> int | None:
        return self.running_on[0] if self.running_on else None


@dataclass(eq=False, slots=True)
class GroupE(Entity):
    members: list[Rsc] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class CloneE(Entity):
    child_id: str = ""
    instances: list[Entity] = field(default_factory=list)  # Rsc or GroupE per instance
    weights: list[int] = field(default_factory=list)
    clone_max: int = 0
    clone_node_max: int = 1
    interleave: bool = False
    ordered: bool = False  # instances started one after another, stopped in the reverse order
    promotable: bool = False
    promoted_max: int = 1
    promoted_node_max: int = 1
    unique: bool = False
    clone_min: int = 0
    # Location constraints with role Promoted: (node, score, words), for promotion scores.
    promotion_locations: list[tuple[int, int, str]] = field(default_factory=list)
    # The instances in the order they were placed (Pacemaker sorts its list of children so, and
    # later walks it in that order, e.g. for colocations with the clone).
    placed_order: list[Entity] = field(default_factory=list)


@dataclass
class Cluster:
    nodes: list[NodeInfo]
    node_index: dict[str, int]
    top: list[Entity]  # top-level resources in definition order
    entities: dict[str, Entity]  # every id: primitives, groups, clones, instances
    primitives: list[Rsc]  # every primitive and instance, in output order
    stonith_enabled: bool
    fencing: list[int]  # nodes to fence, in node order
    have_quorum: bool
    no_quorum_policy: str
    symmetric: bool
    stop_all: bool
    maintenance_mode: bool
    warnings: list[str] = field(default_factory=list)
    can_fence: bool = False
    # Primitive id -> the clone holding it (a cloned primitive or a member of a cloned group).
    clone_of: dict[str, CloneE] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    keep_orphans: bool = False  # stop-orphan-resources=false  # last orphan instance number by id


def leaf_primitives(entity: Entity) -> list[Rsc]:
    if isinstance(entity, Rsc):
        return [entity]
    if isinstance(entity, GroupE):
        return list(entity.members)
    if isinstance(entity, CloneE):
        out: list[Rsc] = []
        for inst in entity.instances:
            out += leaf_primitives(inst)
        return out
    return []


def first_member(entity: Entity) -> Entity:
    return entity.members[0] if isinstance(entity, GroupE) and entity.members else entity


def last_member(entity: Entity) -> Entity:
    return entity.members[-1] if isinstance(entity, GroupE) and entity.members else entity


def top_of(entity: Entity) -> Entity:
    while entity.parent is not None:
        entity = entity.parent
    return entity
