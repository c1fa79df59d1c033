"""The cluster's shared state under one key prefix, and the pure decisions made on it.

Layout under /hakeeper/<cluster>/ (values are JSON):
  config                  {"version": n, "spec": ClusterSpec}           written by `config apply`
  members/<node>          {"pid", "started"}  bound to the node's lease  membership
  leader                  "<node>"            bound to the leader's lease
  nodes/<node>            {"standby": bool}                              operator
  status/<node>/<rsc>     {"role", "failed", "op", "rc", "kind", "at",   the node's agent
                           "definition": what stopping it needs, see Definition}
  fail/<node>/<rsc>       {"count", "last"}                              the node's agent
  plan                    {"epoch", "leader", "actions", "edges", ...}  the leader, by CAS
  done/<epoch>/<index>    {"ok", "rc", "output"}                         whoever ran the action
  running/<node>          {"epoch", "id", "lease"}  bound to the node's  an action in flight
                          lease; its report counts only while this key holds the claim
                          (running_value, report_guard); a start or promote in flight also
                          leaves a pending status report, not bound to the lease (pending_doc)
  claims                  "<node>:<epoch>:<id>:<lease>" of the last     serialises claims and plans
                          claim (see claim_value)
  fence/<node>            {"at", "ok", "device", "output"}               the leader
  tickets/<ticket>        {"granted": bool, "standby": bool, "at"}      `hakeeper ticket`
  attrs/<node>/<name>     "value"  bound to the node's lease             the node's agent (its
                          resource agents' crm_attribute: promotion scores, galera's seqno, ...)
  events/<ns>-<node>      {"at", "node", "kind", "rsc", "message"}       everyone

Everything here is pure: time comes in as an argument.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hakeeper.agent.plan import PlanDoc, Work
from hakeeper.agent.plan import from_json as plan_from_json
from hakeeper.coord.store import Compare
from hakeeper.placement import Plan
from hakeeper.resources.result import Result, Status
from hakeeper.spec import ClusterSpec, ClusterState, NodeState, Primitive, ResourceStatus
from hakeeper.spec.model import Clone, Node, TicketState
from hakeeper.spec.values import INFINITY

Values = Mapping[str, bytes]


class Keys:
    def __init__(self, cluster: str) -> None:
        self.prefix = f"/hakeeper/{cluster}/"
        p = self.prefix
        self.config = p + "config"
        self.leader = p + "leader"
        self.plan = p + "plan"
        self.members = p + "members/"
        self.nodes = p + "nodes/"
        self.status = p + "status/"
        self.fail = p + "fail/"
        self.done = p + "done/"
        self.fence = p + "fence/"
        self.events = p + "events/"
        self.running = p + "running/"
        self.claims = p + "claims"
        self.reprobe = p + "reprobe/"
        self.heartbeat = p + "heartbeat/"
        self.attrs = p + "attrs/"
        self.tickets = p + "tickets/"

    def ticket(self, name: str) -> str:
        return self.tickets + name

    def attr_of(self, node: str, name: str) -> str:
        return f"{self.attrs}{node}/{name}"

    def running_of(self, node: str) -> str:
        return self.running + node

    def member(self, node: str) -> str:
        return self.members + node

    def node(self, node: str) -> str:
        return self.nodes + node

    def status_of(self, node: str, rsc: str) -> str:
        return f"{self.status}{node}/{rsc}"

    def fail_of(self, node: str, rsc: str) -> str:
        return f"{self.fail}{node}/{rsc}"

    def done_of(self, epoch: int, index: int) -> str:
        return f"{self.done}{epoch}/{index}"

    def event(self, at_ns: int, node: str) -> str:
        return f"{self.events}{at_ns:020d}-{node}"


def loads(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _children(values: Values, prefix: str) -> dict[str, Any]:
    """{rest-of-key: decoded value} for keys under prefix."""
    return {k[len(prefix) :]: loads(v) for k, v in values.items() if k.startswith(prefix)}


def config_of(values: Values, keys: Keys) -> tuple[int, ClusterSpec] | None:
    doc = loads(values.get(keys.config))
    if not isinstance(doc, dict) or "spec" not in doc:
        return None
    return int(doc.get("version", 0)), ClusterSpec.model_validate(doc["spec"])


def members(values: Values, keys: Keys) -> set[str]:
    return set(_children(values, keys.members))


def _per_node_resource(values: Values, prefix: str) -> dict[tuple[str, str], dict[str, Any]]:
    """{(node, rsc): document} for keys PREFIX<node>/<rsc>."""
    out = {}
    for rest, doc in _children(values, prefix).items():
        node, _, rsc = rest.partition("/")
        if isinstance(doc, dict):
            out[(node, rsc)] = doc
    return out


def statuses(values: Values, keys: Keys) -> dict[tuple[str, str], dict[str, Any]]:
    return _per_node_resource(values, keys.status)


def fail_counts(values: Values, keys: Keys) -> dict[tuple[str, str], dict[str, Any]]:
    return _per_node_resource(values, keys.fail)


def fail_count_of(values: Values, keys: Keys, node: str, rsc: str) -> int:
    """The stored fail count of `rsc` on `node` (0: none)."""
    doc = loads(values.get(keys.fail_of(node, rsc)))
    return int(doc.get("count", 0)) if isinstance(doc, dict) else 0


def attributes(values: Values, keys: Keys) -> dict[str, dict[str, str]]:
    """Every node's transient attributes: {node: {name: value}}."""
    out: dict[str, dict[str, str]] = {}
    for rest, value in _children(values, keys.attrs).items():
        node, _, name = rest.partition("/")
        if isinstance(value, str):
            out.setdefault(node, {})[name] = value
    return out


# ----- last known definitions (orphans) -----

# The operations an orphan may still need: a probe after a restart, a demote, a stop.
ORPHAN_OPS = ("monitor", "demote", "stop")


@dataclass(frozen=True)
class Definition:
    """What a node's agent needs to probe, demote and stop a resource it runs once the
    configuration no longer describes it (Pacemaker stops an orphan with the definition it last
    knew). Each status report carries one, so it survives agent restarts and any number of
    configuration versions in between, and goes when the report goes. `params` may hold secrets:
    the report lives in the same store as the configuration, but it is never logged."""

    agent: str
    params: dict[str, str] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)  # the CRM_meta_* facts it ran with
    clone: str | None = None  # the clone it belonged to
    unique: bool = False  # a globally unique clone's instance (keeps its number)

    def timeout(self, op: str, default: float = 20.0) -> float:
        return self.timeouts.get(op, default)

    def as_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "params": dict(self.params),
            "timeouts": dict(self.timeouts),
            "meta": dict(self.meta),
            "clone": self.clone,
            "unique": self.unique,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Definition | None:
        """The definition a report carries, or None when it has none (or a malformed one)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("agent"), str) or not doc["agent"]:
            return None
        params, timeouts, meta = doc.get("params", {}), doc.get("timeouts", {}), doc.get("meta", {})
        if not all(isinstance(d, dict) for d in (params, timeouts, meta)):
            return None
        try:
            return cls(
                agent=doc["agent"],
                params={str(k): str(v) for k, v in params.items()},
                timeouts={str(k): float(v) for k, v in timeouts.items()},
                meta={str(k): str(v) for k, v in meta.items()},
                clone=doc["clone"] if isinstance(doc.get("clone"), str) else None,
                unique=bool(doc.get("unique")),
            )
        except (TypeError, ValueError):
            return None


def definition(spec: ClusterSpec, rsc: str, node: str) -> Definition | None:
    """The definition of `rsc` (a resource or a clone instance) on `node` as configured now."""
    prim = primitive(spec, rsc)
    if prim is None:
        return None
    clone = _clone_of(spec, rsc.partition(":")[0])
    return Definition(
        agent=str(prim.agent),
        params=dict(prim.params),
        timeouts={op: op_timeout(prim, op) for op in ORPHAN_OPS},
        meta=ocf_meta(spec, rsc, node),
        clone=clone.id if clone is not None else None,
        unique=clone is not None and bool(clone.meta.globally_unique),
    )


def configured(spec: ClusterSpec, rsc: str) -> bool:
    return primitive(spec, rsc) is not None


def orphans_of(spec: ClusterSpec, values: Values, keys: Keys, node: str) -> dict[str, dict[str, Any]]:
    """{rsc: report} of what `node` reports that the configuration no longer has."""
    return {r: d for (n, r), d in statuses(values, keys).items() if n == node and not configured(spec, r)}


def orphan_fail_counts(spec: ClusterSpec, values: Values, keys: Keys) -> list[str]:
    """Fail-count keys of resources no longer configured and no longer reported on that node:
    nothing is left to recover, so they are forgotten (as Pacemaker clears an orphan's)."""
    reports = statuses(values, keys)
    return [
        keys.fail_of(node, rsc)
        for node, rsc in fail_counts(values, keys)
        if not configured(spec, rsc) and (node, rsc) not in reports
    ]


def _orphan_names(spec: ClusterSpec, reports: Mapping[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], str]:
    """The name the scheduler gets for each orphan report. An anonymous clone's instances are
    reported under the primitive's id on every node; once the clone is gone they would merge into
    one resource with one role, so each node's instance gets a number (`db:0` promoted on n1,
    `db:1` unpromoted on n2) and is demoted and stopped on its own. Node agents map the number
    back (`local_id`)."""
    names: dict[tuple[str, str], str] = {}
    numbers: dict[str, int] = {}
    for (node, rsc), doc in sorted(reports.items()):
        if configured(spec, rsc):
            continue
        d = Definition.from_json(doc.get("definition"))
        if d is not None and d.clone is not None and not d.unique and ":" not in rsc:
            n = numbers.get(rsc, 0)
            numbers[rsc] = n + 1
            names[(node, rsc)] = f"{rsc}:{n}"
        else:
            names[(node, rsc)] = rsc
    return names


def _is_stonith(spec: ClusterSpec, rsc: str, doc: Mapping[str, Any] | None = None) -> bool:
    prim = primitive(spec, rsc)
    if prim is not None:
        return prim.agent.cls == "stonith"
    # An orphan: as its last known definition says.
    d = Definition.from_json((doc or {}).get("definition"))
    return d is not None and d.agent.split(":", 1)[0] == "stonith"


def active(doc: Mapping[str, Any]) -> bool:
    return doc.get("role", "Stopped") != "Stopped" or bool(doc.get("failed")) or bool(doc.get("pending"))


def scheduled_role(doc: Mapping[str, Any]) -> str:
    """The role the scheduler takes a report for: a pending report's target role (the action
    may be done already), else the role reported."""
    return str(doc.get("pending") or doc.get("role", "Stopped"))


# ----- a node's reports of what it runs -----


def status_doc(
    res: Result, op: str, ok: bool, at: float, role: str = "Started", known: Definition | None = None
) -> dict[str, Any]:
    """The report of `op`'s result `res` on a resource (`role`: the role it runs in if running)."""
    doc: dict[str, Any] = {
        "role": role if res.running or (ok and op != "stop") else "Stopped",
        "op": op,
        "rc": res.rc,
        "at": at,
        "result": res.status.value,
    }
    if res.status is Status.PROMOTED:
        doc["role"] = "Promoted"
    if not ok:
        # A promoted instance that failed is still taken for promoted (Pacemaker's failed
        # Promoted): the scheduler then demotes it before promoting another instance.
        failed_role = "Promoted" if role == "Promoted" else "Started"
        doc.update({"failed": True, "kind": failure_kind(res), "role": failed_role, "output": res.output[-500:]})
    if known is not None:
        doc["definition"] = known.as_json()
    return doc


# The tasks whose claim leaves a pending report, and the role it reports.
def claim_value(node: str, epoch: int, action_id: int, lease: int) -> bytes:
    """What a claim writes to `claims`, which the leader's publish compares by value: it must
    differ from every earlier claim the leader may have read. Node, epoch and action alone do not:
    a node claims an action, is lost with it (its `running/` key goes with the lease), and its next
    incarnation claims the same action of the same plan again; a leader that read the store
    before that second claim found `claims` unchanged and published a new plan over an action
    in flight, which then ran twice (the simulation's seeds 4233 and 4405: the VIP on two nodes).
    The lease tells the incarnations apart; within one lease a claim of the same action again
    is refused by the claim's `done` guard or finds its own `running/` key in the leader's view."""
    return f"{node}:{epoch}:{action_id}:{lease:x}".encode()


def running_value(epoch: int, action_id: int, lease: int) -> bytes:
    """What a claim writes to `running/<node>` (bound to the claimant's lease): the action in
    flight, and the incarnation that runs it. The lease makes the value differ between
    incarnations, so `report_guard` can tell this incarnation's claim from a later one's."""
    return dumps({"epoch": epoch, "id": action_id, "lease": f"{lease:x}"})


def report_guard(keys: Keys, node: str, running: bytes) -> Compare:
    """The guard of an action's report: the claim that allowed the action (`running`, from
    running_value) is still in force, so the incarnation that ran it still lives.

    A report written after its writer's lease expired must not count. By then the leader may
    have taken the node for lost, its fence under way; a report that its resource stopped would
    make it look cleanly down, the fence would be dropped from the next plan and the resource
    started elsewhere without it (the simulation's seeds 12609 and 21505: a node paused during a
    stop, its lease expired, it woke, its stop ended and its report landed; the leader started the
    resource elsewhere unfenced). Worse, a report held up in the network could land after the
    node's next incarnation had probed or run something, and undo that. `running/<node>` goes
    with the lease and a new incarnation's claim has another value: a value compare on it holds
    exactly while the claim stands. A refused report is not lost knowledge: the node stays as
    its reports were (unclean if they say it runs something) until its fence, or until its next
    incarnation's probe says what runs there."""
    return Compare(keys.running_of(node), "value", "==", running)


PENDING_ROLE = {"start": "Started", "promote": "Promoted"}


def pending_doc(task: str, at: float, promotable: bool, known: Definition | None = None) -> dict[str, Any] | None:
    """The report a claim leaves for a start or a promote about to run (Pacemaker's
    record-pending: `"pending": <the role it is going to>`), or None for a task that needs none
    (a stop or a demote leaves the report of what runs as it is: active until the result says not).

    It takes the resource for active in its new role from the moment the action may begin, and it
    is not bound to the node's lease. So if the node is lost before it reports the result (paused,
    cut off, crashed), the leader sees a lost node with an active resource: unclean, fenced before
    the resource starts (or is promoted) anywhere else. The `running/` key alone cannot say it:
    it goes with the lease (the simulation found the resource then started on a second node while
    the lost one still started it). The action's result, a probe or the fence replaces it."""
    role = PENDING_ROLE.get(task)
    if role is None:
        return None
    if role == "Started" and promotable:
        role = "Unpromoted"
    # `role` stays what runs now (nothing before a start, an unpromoted instance before a
    # promote), so what reads roles sees no change before the result; `pending` is the role the
    # action is taking it to, which the scheduler takes it for (scheduled_role).
    now_role = "Unpromoted" if task == "promote" else "Stopped"
    doc: dict[str, Any] = {"role": now_role, "op": task, "pending": role, "at": at}
    if known is not None:
        doc["definition"] = known.as_json()
    return doc


def probing(values: Values, keys: Keys, suspects: Collection[str] = ()) -> set[str]:
    """Members registered but not done probing (after an agent restart, or a lost node back before
    its fence). The leader plans nothing while there are any, as Pacemaker orders starts after the
    probes of a joining node: until the probe says what runs there, such a node looks cleanly
    offline, and a plan made then would start elsewhere what it still runs, or drop a pending
    fence of it (both found by the simulation). Probes are bounded by their timeouts, and a hung
    agent stops its heartbeat and becomes a suspect, which ends the wait."""
    return {
        n
        for n, doc in _children(values, keys.members).items()
        if n not in suspects and isinstance(doc, dict) and not doc.get("probed", True)
    }


def cluster_state(
    spec: ClusterSpec, values: Values, keys: Keys, now: float, suspects: Collection[str] = ()
) -> ClusterState:
    """What the scheduler needs to know, from the store's current values.

    A node is online while its member key (bound to its lease) exists and the leader does not
    suspect it (`suspects`: its heartbeat stopped, see heartbeat.py). A node without a member key
    that still has active resources reported is unclean: it was lost, not shut down, and must be
    fenced (the leader deletes its reports once fencing succeeded, which makes it clean-offline).

    Orphans: a report of a resource the configuration no longer has becomes a ResourceStatus
    with orphan=True and the agent of its last known definition, so the scheduler stops it
    (demoting it first if promoted), unless stop-orphan-resources is false.

    Unconfigured nodes: a node dropped from the configuration while its agent still runs (or
    still reports resources) is listed too, in standby. Pacemaker keeps a member that is not in
    the configuration in the cluster (its controller adds it back); nothing may be placed there,
    so whatever it runs moves away or, if orphaned, stops. An empty configuration therefore stops
    everything everywhere. `scheduling_spec` adds these nodes to the configuration the scheduler
    sees.
    """
    joined = {n: d for n, d in _children(values, keys.members).items() if n not in suspects}
    # A member that has not finished probing is present (not lost) but runs nothing new yet.
    online = {n for n, doc in joined.items() if not isinstance(doc, dict) or doc.get("probed", True)}
    reports = statuses(values, keys)
    fails = fail_counts(values, keys)
    node_docs = _children(values, keys.nodes)
    attrs = attributes(values, keys)
    names = [node.name for node in spec.nodes]
    unconfigured = sorted(
        ({n for n in joined if n not in names} | {n for (n, _), d in reports.items() if active(d)}) - set(names)
    )
    nodes: dict[str, NodeState] = {}
    for name in names + unconfigured:
        doc = node_docs.get(name) or {}
        # A stonith resource is only a pointer to a device: its node needs no fencing for it.
        lost_active = name not in joined and any(
            n == name and active(d) and not _is_stonith(spec, r, d) for (n, r), d in reports.items()
        )
        member = joined.get(name)
        nodes[name] = NodeState(
            online=name in online,
            # Its agent is leaving: the scheduler moves everything away first.
            shutdown=isinstance(member, dict) and bool(member.get("shutdown")),
            standby=bool(doc.get("standby")) or name in unconfigured,
            unclean=lost_active,
            fence_reason=(
                None
                if not lost_active
                else "its heartbeat stopped while it ran resources"
                if name in suspects
                else "its lease expired while it ran resources"
            ),
            in_cluster=name in online,
            attributes=attrs.get(name, {}),
        )
    # A fail count without a status report (the resource was stopped since) still counts.
    entries = dict(reports)
    for key in fails:
        entries.setdefault(key, {"role": "Stopped"})
    orphan_names = _orphan_names(spec, reports)
    resources: list[ResourceStatus] = []
    for (node, rsc), doc in sorted(entries.items()):
        fail = fails.get((node, rsc)) or {}
        failed = bool(doc.get("failed"))
        orphan = not configured(spec, rsc)
        known = Definition.from_json(doc.get("definition")) if orphan else None
        resources.append(
            ResourceStatus(
                resource=orphan_names.get((node, rsc), rsc),
                node=node,
                role=scheduled_role(doc),
                failed=failed,
                fail_count=int(fail.get("count", 0)),
                last_failure=fail.get("last"),
                failed_op=doc.get("op") if failed else None,
                failed_rc=doc.get("rc") if failed else None,
                failure_kind=doc.get("kind") if failed else None,
                orphan=orphan,
                agent=known.agent if known is not None else None,
            )
        )
    tickets = {
        name: TicketState(granted=bool(doc.get("granted")), standby=bool(doc.get("standby")))
        for name, doc in _children(values, keys.tickets).items()
        if isinstance(doc, dict)
    }
    return ClusterState(nodes=nodes, resources=resources, have_quorum=True, now=now, tickets=tickets)


def scheduling_spec(spec: ClusterSpec, state: ClusterState) -> ClusterSpec:
    """The configuration as the scheduler must see it with `state` (from cluster_state): nodes
    the configuration dropped but that still run or report something are added (cluster_state
    puts them in standby), so what they run can be moved away or stopped. A clone without an
    explicit clone-max keeps the configured node count, which is what its agents are told
    (ocf_meta). The configuration itself when nothing is missing."""
    names = {n.name for n in spec.nodes}
    extra = [Node(name=name) for name in state.nodes if name not in names]
    if not extra:
        return spec
    pinned = {"clone_max": len(spec.nodes)}
    clones = [
        c if c.meta.clone_max is not None else c.model_copy(update={"meta": c.meta.model_copy(update=pinned)})
        for c in spec.resources.clones
    ]
    return spec.model_copy(
        update={
            "nodes": [*spec.nodes, *extra],
            "resources": spec.resources.model_copy(update={"clones": clones}),
        }
    )


def scheduler_input(
    spec: ClusterSpec, values: Values, keys: Keys, now: float, suspects: Collection[str] = ()
) -> tuple[ClusterSpec, ClusterState]:
    """(configuration, state) to give the scheduler: cluster_state with scheduling_spec."""
    state = cluster_state(spec, values, keys, now, suspects)
    return scheduling_spec(spec, state), state


# ----- plans -----


def plan_doc(plan: Plan, epoch: int, leader: str, now: float) -> dict[str, Any]:
    return PlanDoc.of(plan, epoch, leader, now).to_json()


# The helpers below take a decoded plan document (`hakeeper status` reads them so); the agent
# itself parses the plan once with `hakeeper.agent.plan.parse` and asks the PlanDoc.


def work(doc: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """The real steps of a plan (pseudo steps happen by themselves): (task, resource, node)."""
    return plan_from_json(doc).work()


def done_marks(values: Values, keys: Keys, epoch: int) -> dict[int, bool]:
    out = {}
    for rest, doc in _children(values, f"{keys.done}{epoch}/").items():
        if rest.isdigit() and isinstance(doc, dict):
            out[int(rest)] = bool(doc.get("ok"))
    return out


def remaining(doc: Mapping[str, Any], done: Mapping[int, bool]) -> set[tuple[str, str, str]]:
    return plan_from_json(doc).remaining(done)


def completed(doc: Mapping[str, Any], done: Mapping[int, bool]) -> set[int]:
    """Actions that count as finished: done markers with ok, plus pseudo actions whose
    predecessors are all finished."""
    return plan_from_json(doc).completed(done)


def ready(doc: Mapping[str, Any], done: Mapping[int, bool], node: str, tasks: Iterable[str]) -> list[dict[str, Any]]:
    """This node's actions of the given tasks whose predecessors have all finished, in plan order."""
    ids = {a.id for a in plan_from_json(doc).ready(done, node, set(tasks))}
    return [a for a in doc.get("actions", []) if a["id"] in ids]


# ----- resources on a node -----


def primitive(spec: ClusterSpec, rsc: str) -> Primitive | None:
    base = rsc.split(":", 1)[0] if ":" in rsc and not any(p.id == rsc for p in spec.resources.primitives) else rsc
    for p in spec.resources.primitives:
        if p.id == base:
            return p
    # A clone instance child:N of a primitive, or the clone's own id.
    for c in spec.resources.clones:
        if c.id == base:
            return primitive(spec, c.child)
    return None


def _clone_of(spec: ClusterSpec, base: str) -> Clone | None:
    """The clone a primitive id belongs to (directly, or through a cloned group), or the clone
    of that id."""
    group = next((g.id for g in spec.resources.groups if base in g.members), None)
    return next((c for c in spec.resources.clones if c.child in (base, group) or c.id == base), None)


def local_id(spec: ClusterSpec, rsc: str) -> str:
    """The name a node's agent knows a resource by. The instances of an anonymous clone are
    interchangeable and a node runs at most one of each primitive: it is known by the primitive's
    id, whatever instance number a plan gives it (Pacemaker's executor strips it too), so its
    state, status report and fail count stay one thing when the numbering changes. A globally
    unique clone's instances are distinct resources and keep their numbers."""
    base, _, number = rsc.partition(":")
    if not number.isdigit():
        return rsc
    clone = _clone_of(spec, base)
    return rsc if clone is None or clone.meta.globally_unique else base


def local_work(spec: ClusterSpec | None, work: Iterable[Work]) -> set[Work]:
    """Work with each resource as its node knows it (`local_id`): a replan that only renumbers an
    anonymous clone's instance (start p:1 on n2, then start p:2 on n2) is the same work, and must
    not replace the current plan (its notifications not yet run would be lost)."""
    if spec is None:
        return set(work)
    return {(task, local_id(spec, rsc) if rsc else rsc, node) for task, rsc, node in work}


def ocf_meta(spec: ClusterSpec, rsc: str, node: str) -> dict[str, str]:
    """The CRM_meta_* facts Pacemaker's executor gives an agent: its node, and for a clone's
    instance its number (when the plan gave one) and the clone's counts (both promoted_* and the
    older master_* names, as agents read either)."""
    meta = {"on_node": node}
    base, _, number = rsc.partition(":")
    clone = _clone_of(spec, base)
    if clone is None:
        return meta
    m = clone.meta
    promoted_max = str(m.promoted_max if m.promoted_max is not None else 1)
    promoted_node_max = str(m.promoted_node_max if m.promoted_node_max is not None else 1)
    if number.isdigit():
        meta["clone"] = number
    meta.update(
        {
            "clone_max": str(m.clone_max if m.clone_max is not None else len(spec.nodes)),
            "clone_node_max": str(m.clone_node_max if m.clone_node_max is not None else 1),
            "globally_unique": "true" if m.globally_unique else "false",
            "notify": "true" if m.notify else "false",
        }
    )
    if m.promotable:
        meta.update(
            {
                "promotable": "true",
                "promoted_max": promoted_max,
                "promoted_node_max": promoted_node_max,
                "master_max": promoted_max,
                "master_node_max": promoted_node_max,
            }
        )
    return meta


def op_timeout(prim: Primitive, name: str, default: float = 20.0) -> float:
    for op in prim.operations:
        if op.name == name and (name != "monitor" or op.interval > 0):
            return float(op.timeout)
    return default


def monitor_op(prim: Primitive, role: str = "Started") -> tuple[float, float] | None:
    """(interval, timeout) of the recurring monitor for an instance in `role`: a Promoted one
    uses the monitor declared for role Promoted, any other the one for Started/Unpromoted."""
    wanted = ("Promoted",) if role == "Promoted" else (None, "Started", "Unpromoted")
    for op in prim.operations:
        if op.name == "monitor" and op.interval > 0 and op.enabled and op.role in wanted:
            return float(op.interval), float(op.timeout)
    return None


def failure_kind(result: Result) -> str:
    if result.status is Status.NOT_CONFIGURED:
        return "fatal"
    if result.status is Status.NOT_INSTALLED:
        return "hard"
    return "soft"


def next_fail_count(spec: ClusterSpec, op: str, old: int) -> int:
    """A failed start counts as INFINITY when start-failure-is-fatal (Pacemaker's default)."""
    if op == "start" and spec.cluster.start_failure_is_fatal:
        return INFINITY
    return min(INFINITY, old + 1)


def expired_fail_counts(spec: ClusterSpec, values: Values, keys: Keys, now: float) -> list[str]:
    """Fail-count keys whose last failure is older than the resource's failure-timeout."""
    out = []
    for (node, rsc), doc in fail_counts(values, keys).items():
        prim = primitive(spec, rsc)
        timeout = prim.meta.failure_timeout if prim is not None else None
        last = doc.get("last")
        if timeout and last is not None and last + timeout <= now:
            out.append(keys.fail_of(node, rsc))
    return out


def stonith_devices(spec: ClusterSpec, victim: str) -> list[Primitive]:
    """Stonith primitives able to fence `victim` (pcmk_host_list / pcmk_host_map, else any)."""
    out = []
    for p in spec.resources.primitives:
        if p.agent.cls != "stonith":
            continue
        hosts = p.params.get("pcmk_host_list", "").replace(",", " ").split()
        mapped = [
            item.split(":", 1)[0]
            for item in p.params.get("pcmk_host_map", "").replace(",", ";").split(";")
            if ":" in item
        ]
        if (hosts or mapped) and victim not in hosts and victim not in mapped:
            continue
        out.append(p)
    return out
