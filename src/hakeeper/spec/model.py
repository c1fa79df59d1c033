"""hakeeper's native cluster spec: what the operator wants, plus optionally what is running now.

The YAML form mirrors Pacemaker's vocabulary (hyphenated keys such as `resource-stickiness`), so an
operator who knows a CIB reads it without a manual. Resources are declared flat and referenced by
id, as crm shell does: primitives once, groups list primitive ids, a clone names one primitive or
group. Cross-references (unknown ids, duplicates, order cycles) are checked in `checks.py`, where
each problem keeps the path of the offending value so its line can be reported.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hakeeper.names import Name
from hakeeper.spec.dates import parse_range, parse_time
from hakeeper.spec.values import INFINITY, Agent, Duration, Score

# Clone instances, promoted instances and their per-node limits are capped: Pacemaker allows a
# clone-max above the node count (the extra instances stay stopped), so the cap cannot be the node
# count, but the scheduler builds every instance, and a value like 10^9 must be refused, not
# tried. 1024 is far beyond any real cluster (Pacemaker's own test suite goes up to 14).
MAX_INSTANCES = 1024
# Utilization capacities and demands (memory in MB, CPU shares...): any non-negative 32-bit value.
MAX_UTILIZATION = 2**31 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INSTANCES)]
# Failures before a resource moves away: a count (0 turns the threshold off, as in Pacemaker).
Threshold = Annotated[Score, Field(ge=0)]
Utilization = Annotated[int, Field(ge=0, le=MAX_UTILIZATION)]


def _hyphenate(name: str) -> str:
    return name.replace("_", "-")


class SpecModel(BaseModel):
    """Base: hyphenated keys in YAML, unknown keys refused (a typo must not pass silently)."""

    model_config = ConfigDict(
        alias_generator=_hyphenate, populate_by_name=True, extra="forbid", frozen=False
    )


Role = Literal["Started", "Stopped", "Promoted", "Unpromoted"]
# Pacemaker's older role names are accepted and normalised.
_ROLE_ALIASES = {"Master": "Promoted", "Slave": "Unpromoted", "master": "Promoted",
                 "slave": "Unpromoted", "started": "Started", "stopped": "Stopped",
                 "promoted": "Promoted", "unpromoted": "Unpromoted"}


def normalise_role(value: Any) -> Any:
    return _ROLE_ALIASES.get(value, value) if isinstance(value, str) else value


class ClusterOptions(SpecModel):
    name: str = "hakeeper"
    symmetric_cluster: bool = True
    stonith_enabled: bool = True
    no_quorum_policy: Literal["stop", "freeze", "ignore", "demote", "suicide"] = "stop"
    # Defaults for every resource (Pacemaker's rsc_defaults).
    resource_stickiness: Score = 0
    migration_threshold: Threshold = INFINITY
    start_failure_is_fatal: bool = True
    maintenance_mode: bool = False
    stop_all_resources: bool = False
    # The node agents' fast failure detection (heartbeats; used with stonith only): a node whose
    # heartbeat is silent this long is lost. Unset: each agent's --node-timeout. 0: lease expiry only.
    node_timeout: Duration | None = Field(default=None, ge=0)
    # Options hakeeper keeps but does not interpret (imported from a CIB), never dropped.
    other: dict[str, str] = Field(default_factory=dict)


class Node(SpecModel):
    name: Name
    attributes: dict[str, str] = Field(default_factory=dict)
    # A node-level preference added to every resource's score on it (CIB <node score=...>).
    score: Score = 0
    utilization: dict[str, Utilization] = Field(default_factory=dict)


class Operation(SpecModel):
    name: str
    interval: Duration = 0.0
    timeout: Duration = 20.0
    role: Role | None = None
    on_fail: Literal["ignore", "block", "stop", "restart", "standby", "fence", "demote"] | None = None
    enabled: bool = True

    _role = field_validator("role", mode="before")(normalise_role)


class Meta(SpecModel):
    """Meta attributes of a resource; unset means 'inherit' (from the parent or cluster defaults)."""

    model_config = ConfigDict(extra="allow")  # unknown meta is kept verbatim, never dropped

    resource_stickiness: Score | None = None
    migration_threshold: Threshold | None = None
    failure_timeout: Duration | None = None
    target_role: Role | None = None
    is_managed: bool | None = None
    priority: int | None = Field(default=None, ge=-INFINITY, le=INFINITY)
    allow_migrate: bool | None = None
    multiple_active: Literal["block", "stop_only", "stop_start", "stop_unexpected"] | None = None
    requires: Literal["nothing", "quorum", "fencing", "unfencing"] | None = None
    # Clone meta (used on clones only).
    clone_max: Count | None = None
    clone_node_max: Count | None = None
    interleave: bool | None = None
    ordered: bool | None = None
    globally_unique: bool | None = None
    notify: bool | None = None
    promotable: bool | None = None
    promoted_max: Count | None = None
    promoted_node_max: Count | None = None

    _role = field_validator("target_role", mode="before")(normalise_role)


class Primitive(SpecModel):
    id: Name
    agent: Agent
    params: dict[str, str] = Field(default_factory=dict)
    operations: list[Operation] = Field(default_factory=list)
    meta: Meta = Field(default_factory=Meta)
    utilization: dict[str, Utilization] = Field(default_factory=dict)
    # Parameters that differ on some nodes (a CIB rule on node attributes): node → the values that
    # replace or add to `params` there. `params` holds what applies where no node rule holds.
    node_params: dict[Name, dict[str, str]] = Field(default_factory=dict)
    # Parameters never printed by status, events or `config show` (hakeeper.coord.secrets; names
    # such as password or auth_pass are secret without being listed).
    secret: list[str] = Field(default_factory=list)

    @field_validator("params", mode="before")
    @classmethod
    def _params_are_strings(cls, value: Any) -> Any:
        # Agents receive parameters as environment strings; accept YAML numbers and booleans.
        if isinstance(value, dict):
            return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


class Group(SpecModel):
    id: Name
    members: list[Name]
    meta: Meta = Field(default_factory=Meta)


class Clone(SpecModel):
    id: Name
    child: Name  # a primitive or group id
    meta: Meta = Field(default_factory=Meta)


class Resources(SpecModel):
    primitives: list[Primitive] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    clones: list[Clone] = Field(default_factory=list)


class Expression(SpecModel):
    attribute: str
    operation: Literal["lt", "gt", "lte", "gte", "eq", "ne", "defined", "not_defined"]
    value: str | None = None
    type: Literal["string", "integer", "number", "version"] = "string"

    @field_validator("value", mode="before")
    @classmethod
    def _value_is_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class DurationSpec(SpecModel):
    """The length of an `in_range` date expression that gives `start` and no `end`.

    Each field is at most a century, so the end of the range stays a representable date."""

    id: str | None = None
    years: int | None = Field(default=None, ge=0, le=100)
    months: int | None = Field(default=None, ge=0, le=100 * 12)
    weeks: int | None = Field(default=None, ge=0, le=100 * 53)
    days: int | None = Field(default=None, ge=0, le=100 * 366)
    hours: int | None = Field(default=None, ge=0, le=100 * 366 * 24)
    minutes: int | None = Field(default=None, ge=0, le=100 * 366 * 24 * 60)
    seconds: int | None = Field(default=None, ge=0, le=100 * 366 * 24 * 3600)


class DateSpec(SpecModel):
    """Cron-like fields, each a number or an inclusive range (`9-16`); all given must hold."""

    id: str | None = None
    years: str | None = None
    months: str | None = None
    monthdays: str | None = None
    hours: str | None = None
    minutes: str | None = None
    seconds: str | None = None
    yeardays: str | None = None
    weekyears: str | None = None
    weeks: str | None = None
    weekdays: str | None = None  # 1 = Monday ... 7 = Sunday

    @field_validator("years", "months", "monthdays", "hours", "minutes", "seconds", "yeardays",
                     "weekyears", "weeks", "weekdays", mode="before")
    @classmethod
    def _range(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            parse_range(value)
        return value


class DateExpression(SpecModel):
    """A rule's condition on the evaluation time (`spec.dates`); false when no time is known."""

    id: str | None = None
    operation: Literal["gt", "lt", "in_range", "date_spec"] = "in_range"
    start: str | None = None
    end: str | None = None
    duration: DurationSpec | None = None
    date_spec: DateSpec | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, str):
            parse_time(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> DateExpression:
        needs = {"gt": self.start is not None, "lt": self.end is not None,
                 "in_range": self.start is not None or self.end is not None,
                 "date_spec": self.date_spec is not None}
        if not needs[self.operation]:
            what = {"gt": "start", "lt": "end", "in_range": "start or end", "date_spec": "date-spec"}
            raise ValueError(f"a date expression with operation {self.operation} needs {what[self.operation]}")
        return self


class Rule(SpecModel):
    id: str | None = None
    score: Score | None = None
    score_attribute: str | None = None
    boolean_op: Literal["and", "or"] = "and"
    role: Role | None = None
    expressions: list[Expression | DateExpression | Rule] = Field(default_factory=list)

    _role = field_validator("role", mode="before")(normalise_role)


class ResourceSet(SpecModel):
    id: Name | None = None
    resources: list[Name]
    sequential: bool = True
    require_all: bool = True
    action: Literal["start", "stop", "promote", "demote"] | None = None
    role: Role | None = None

    _role = field_validator("role", mode="before")(normalise_role)


class Location(SpecModel):
    id: Name
    resource: Name | None = None
    resource_pattern: str | None = None
    node: Name | None = None
    score: Score | None = None
    role: Role | None = None
    rules: list[Rule] = Field(default_factory=list)
    resource_discovery: Literal["always", "never", "exclusive"] = "always"
    sets: list[ResourceSet] = Field(default_factory=list)

    _role = field_validator("role", mode="before")(normalise_role)


class Colocation(SpecModel):
    id: Name
    resource: Name | None = None  # the dependent resource: placed relative to `with`
    with_resource: Name | None = Field(default=None, alias="with")
    score: Score = INFINITY
    resource_role: Role | None = None
    with_role: Role | None = None
    node_attribute: str = "#uname"
    sets: list[ResourceSet] = Field(default_factory=list)

    _roles = field_validator("resource_role", "with_role", mode="before")(normalise_role)


Action = Literal["start", "stop", "promote", "demote"]


class Order(SpecModel):
    id: Name
    first: Name | None = None
    first_action: Action = "start"
    then: Name | None = None
    then_action: Action | None = None  # defaults to first-action, as in Pacemaker
    kind: Literal["Mandatory", "Optional", "Serialize"] = "Mandatory"
    symmetrical: bool | None = None  # defaults to true, except for Serialize
    require_all: bool = True
    sets: list[ResourceSet] = Field(default_factory=list)

    @property
    def effective_then_action(self) -> str:
        return self.then_action or self.first_action

    @property
    def is_symmetrical(self) -> bool:
        return self.symmetrical if self.symmetrical is not None else self.kind != "Serialize"


LossPolicy = Literal["stop", "demote", "fence", "freeze"]


class TicketConstraint(SpecModel):
    """A resource that may run only while a ticket is granted (Pacemaker's `rsc_ticket`).

    `role` narrows what the ticket guards (Promoted: only the promotion); `loss-policy` says what
    happens to a resource that is active when the ticket is lost (`effective_loss_policy`).
    """

    id: Name
    ticket: Name
    resource: Name | None = None
    role: Role | None = None
    loss_policy: LossPolicy | None = None
    sets: list[ResourceSet] = Field(default_factory=list)

    _role = field_validator("role", mode="before")(normalise_role)

    def effective_loss_policy(self, role: str | None, stonith_enabled: bool) -> LossPolicy:
        """The policy for a target with role filter `role` (its set's, or the constraint's).

        Pacemaker's defaults: demote for role Promoted, else stop; fence needs fencing enabled.
        """
        policy = self.loss_policy
        if policy is None:
            return "demote" if role == "Promoted" else "stop"
        if policy == "fence" and not stonith_enabled:
            return "stop"
        return policy

    def targets(self) -> list[tuple[str, Role | None]]:
        """(resource id, role filter) for the resource or every resource of every set (a set's
        own role applies to its resources). Started means no filter, as in Pacemaker."""
        if self.resource is not None:
            pairs = [(self.resource, self.role)]
        else:
            pairs = [(rsc, rset.role) for rset in self.sets for rsc in rset.resources]
        return [(rsc, None if role == "Started" else role) for rsc, role in pairs]


class Constraints(SpecModel):
    location: list[Location] = Field(default_factory=list)
    colocation: list[Colocation] = Field(default_factory=list)
    order: list[Order] = Field(default_factory=list)
    ticket: list[TicketConstraint] = Field(default_factory=list)


class NodeState(SpecModel):
    """What the cluster knows about one node now (Pacemaker's `node_state` and its attributes).

    `online`, `unclean` and `pending` are the conclusions a scheduler acts on; the membership fields
    below them are the raw facts they were derived from, kept so a decision can be explained.
    """

    online: bool = True
    standby: bool = False
    maintenance: bool = False
    # Lost without a clean shutdown: must be fenced before its resources run elsewhere.
    unclean: bool = False
    # Why the node is unclean (for explanations): "peer is no longer part of the cluster", ...
    fence_reason: str | None = None
    # Joined the membership but not yet accepted by the controller: runs nothing yet.
    pending: bool = False
    # The node asked to shut down (transient attribute `shutdown`): resources must move away.
    shutdown: bool = False
    # False when the status section has no entry for the node (never seen in this cluster's life);
    # with startup-fencing such a node is unclean.
    seen: bool = True
    # Membership facts as recorded: in the cluster layer (corosync), controller process up, join
    # phase (member, pending, down, banned), and what the controller expects (member or down).
    # `expected` differing from the actual state tells a crash from a clean leave.
    in_cluster: bool | None = None
    controller_online: bool | None = None
    join: str | None = None
    expected: Literal["member", "down"] | None = None
    # Transient attributes (Pacemaker's status section), merged over the node's own: standby,
    # fail-count-RSC#OP_INTERVAL, last-failure-RSC#OP_INTERVAL, master-RSC / promotion scores, ...
    attributes: dict[str, str] = Field(default_factory=dict)


OnFail = Literal["ignore", "block", "stop", "restart", "standby", "fence", "demote", "migrate",
                 "restart-container", "reset-remote"]


class ResourceStatus(SpecModel):
    """What the cluster knows about one resource (or clone instance) on one node.

    Imported from the operation history: an entry exists when the resource is active on the node,
    has failed there, has an operation in flight there or has a fail count there. A resource with
    no entry for a node is stopped on it.
    """

    resource: Name  # primitive id; `id:N` names an instance of a clone, kept as the CIB gives it
    node: Name
    role: Literal["Started", "Promoted", "Unpromoted", "Stopped"] = "Started"
    # The last operation failed: the resource must be recovered (stopped and started again).
    failed: bool = False
    fail_count: int = Field(default=0, ge=0, le=INFINITY)
    last_failure: float | None = None  # seconds since the epoch, for failure-timeout
    # The operation that failed (start, stop, monitor...): a failed stop means the node needs fencing.
    failed_op: str | None = None
    # The failed operation's interval (0 for start/stop/probe), its OCF exit code and its severity:
    # "soft" may be retried on the node, "hard" bans the node (not installed, bad privileges),
    # "fatal" bans every node (not configured).
    failed_interval: Duration | None = None
    failed_rc: int | None = None
    failure_kind: Literal["soft", "hard", "fatal"] | None = None
    # How the cluster responds to that failure (the failed op's on-fail, or Pacemaker's default:
    # fence for a failed stop when fencing is enabled, block without fencing, restart otherwise).
    on_fail: OnFail | None = None
    # Nothing more may be done to it on this node (a failed stop without fencing, on-fail=block).
    blocked: bool = False
    # It can never run on this node: a probe found its agent missing or its parameters invalid
    # (not a failure; the resource is simply kept away from the node, as with a hard failure).
    banned: bool = False
    # An operation that was started and has not reported yet (start, stop, promote, migrate_to...).
    pending: str | None = None
    # A live migration in progress: on the source, `migrating_to` names the target after a
    # successful migrate_to without a matching migrate_from; on the target, `migrating_from` names
    # the source after migrate_from. A partial migration needs a stop on both sides or a finish.
    migrating_to: Name | None = None
    migrating_from: Name | None = None
    # Recorded in the status but absent from the configuration: must be stopped, then forgotten.
    orphan: bool = False
    # For orphans, the agent as the history records it (the configuration no longer says).
    agent: str | None = None

    _role = field_validator("role", mode="before")(normalise_role)


class TicketState(SpecModel):
    """A ticket as the cluster holds it now (CIB `ticket_state`); absent means not granted."""

    granted: bool = False
    # Granted but asked to step down: what depends on it stops as if it were not granted,
    # without the loss-policy's fencing or freezing.
    standby: bool = False


class ClusterState(SpecModel):
    nodes: dict[Name, NodeState] = Field(default_factory=dict)
    resources: list[ResourceStatus] = Field(default_factory=list)
    have_quorum: bool = True
    now: float | None = None  # the evaluation time, seconds since the epoch (for failure-timeout)
    # The node that runs the controller's decisions (CIB `dc-uuid`, as a node name), if known.
    dc: Name | None = None
    # Tickets by name (multi-site clusters); a ticket with no entry is not granted.
    tickets: dict[Name, TicketState] = Field(default_factory=dict)


class ClusterSpec(SpecModel):
    cluster: ClusterOptions = Field(default_factory=ClusterOptions)
    nodes: list[Node] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    constraints: Constraints = Field(default_factory=Constraints)
    state: ClusterState | None = None


Rule.model_rebuild()
