"""CIB `<status>` → ClusterState: node membership, transient attributes, resource history.

Node rules follow Pacemaker 2.1.5 (determine_online_status_fencing / _no_fencing): with fencing
enabled, a node whose cluster-layer or controller membership disagrees with what was expected is
unclean and must be fenced; without fencing, such a node is merely offline. A node the status never
mentions is unclean under startup-fencing. Each resource's history is replayed by `history.replay`
as soon as it is read (so a huge status section is never held in memory); only non-trivial results
are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hakeeper.importers import migration
from hakeeper.importers.cib_resources import RscInfo
from hakeeper.importers.history import ROLE_NAMES, OpRecord, Outcome, replay
from hakeeper.spec.model import ClusterState, NodeState, ResourceStatus, TicketState

Attrs = Mapping[str, str]  # an element's attributes, as the parser hands them over
_TRUE = frozenset({"true", "on", "yes", "y", "1"})
_FAIL_ATTR = re.compile(r"(fail-count|last-failure)-(.+?)(?:#(.+)_(\d+))?$")


def _fail_count(attributes: dict[str, str], rid: str) -> tuple[int, float]:
    """Total fail count of `rid` on a node and its latest failure time, from transient attributes."""
    count, last = 0, 0.0
    for name, value in attributes.items():
        match = _FAIL_ATTR.match(name)
        if match is None or match.group(2) != rid:
            continue
        if match.group(1) == "fail-count":
            count += _count(value)
        else:
            last = max(last, float(_int(value, 0)))
    return min(count, 1_000_000), last


def _count(value: str) -> int:
    return 1_000_000 if value.upper().lstrip("+") in ("INFINITY", "INF") else max(0, _int(value, 0))


def _lookup(table: dict[tuple[str, int], str]) -> Callable[[str, int], str | None]:
    return lambda task, ms: table.get((task, ms))


def _agent(attrs: Attrs) -> str:
    klass, provider, kind = attrs.get("class"), attrs.get("provider"), attrs.get("type")
    return f"{klass}:{provider}:{kind}" if provider else f"{klass}:{kind}"


def _op_record(a: Attrs) -> OpRecord:
    key = a.get("transition-key")
    target = -1
    if key:
        parts = key.split(":")
        target = _int(parts[2], -1) if len(parts) >= 4 else -1
    change = a.get("last-rc-change")
    return OpRecord(task=a.get("operation") or "", interval_ms=_int(a.get("interval"), 0),
                    call_id=_int(a.get("call-id"), -1), rc=_int(a.get("rc-code"), 0),
                    status=_int(a.get("op-status"), 0), target_rc=target,
                    last_change=float(change) if change and change.isdigit() else None,
                    migrate_source=a.get("migrate_source"), migrate_target=a.get("migrate_target"))


def is_trivial(op: Attrs) -> bool:
    """A probe that found the resource stopped: never a failure, never active, nothing to keep.

    On a big cluster nearly every history is just that, so this is checked before anything else.
    """
    return (op.get("rc-code") == "7" and op.get("operation") == "monitor" and op.get("op-status") == "0"
            and op.get("interval", "0") == "0")


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


@dataclass
class RawNode:
    uname: str
    in_ccm: str | None
    crmd: str | None
    join: str | None
    expected: str | None
    remote: bool
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class StatusReader:
    """Collects the status section element by element; `finish` turns it into a ClusterState."""

    info: dict[str, RscInfo]
    stonith_enabled: bool
    node_names_by_id: dict[str, str]
    nodes: dict[str, RawNode] = field(default_factory=dict)
    outcomes: list[tuple[str, str, Outcome, str]] = field(default_factory=list)
    current: RawNode | None = None
    # Remote and guest nodes → the primitive that makes them exist (connection or container).
    remote_nodes: dict[str, str] = field(default_factory=dict)
    # Fencing is possible: enabled, and quorum held (or no-quorum-policy=ignore). Set by `finish`.
    can_fence: bool = True
    # Resources whose every history must be read (allow-migrate): set from the configuration.
    migratable_ids: set[str] = field(default_factory=set)
    # Guest node → whether its implicit connection resource is running.
    guest_connections: dict[str, bool] = field(default_factory=dict)
    # Nodes declared type="remote" in <nodes> (some may have lost their connection resource).
    remote_typed: set[str] = field(default_factory=set)
    # The evaluation time (for failure-timeout); None: failures never expire.
    now: float | None = None
    # Histories with failures of resources that have a failure-timeout: replayed in `finish`,
    # once the node's fail counts (which may come after the history) are known.
    deferred: list[tuple[str, str, list[OpRecord], str]] = field(default_factory=list)
    # Every history of resources that may live-migrate: resource → node → (history, agent).
    migratable: dict[str, dict[str, tuple[list[OpRecord], str]]] = field(default_factory=dict)
    # (resource, node) whose failures were all on-fail=ignore. Set by `finish`.
    ignored: set[tuple[str, str]] = field(default_factory=set)
    # <tickets><ticket_state>: ticket name → its state (absent: not granted).
    tickets: dict[str, TicketState] = field(default_factory=dict)

    def ticket_state(self, attrs: Attrs) -> None:
        """A <ticket_state> of <status><tickets>; attributes other than granted and standby
        (last-granted, owner, ...) say nothing the scheduler acts on."""
        name = attrs.get("id")
        if name:
            self.tickets[name] = TicketState(granted=is_true(attrs.get("granted")),
                                             standby=is_true(attrs.get("standby")))

    def node_state(self, attrs: Attrs) -> None:
        """A <node_state> begins: its membership (its attributes and history follow)."""
        ident = attrs.get("id") or ""
        uname = attrs.get("uname") or self.node_names_by_id.get(ident, ident)
        self.current = RawNode(uname, attrs.get("in_ccm"), attrs.get("crmd"), attrs.get("join"),
                               attrs.get("expected"), is_true(attrs.get("remote_node")))
        self.nodes[uname] = self.current

    def transient_attribute(self, pair: Attrs) -> None:
        """An nvpair inside the current node's <transient_attributes>."""
        name = pair.get("name")
        if self.current is not None and name is not None:
            self.current.attributes[name] = pair.get("value") or ""

    def lrm_resource(self, attrs: Attrs, children: list[Attrs]) -> None:
        """One <lrm_resource> of the current node with its <lrm_rsc_op> records."""
        if self.current is None or not children:
            return
        rid = attrs.get("id") or ""
        if rid in self.remote_nodes and self.remote_nodes[rid] != rid:
            # The implicit connection to a guest node: it decides whether the guest is up.
            ops = [_op_record(op) for op in children]
            conn = replay(ops, lambda task, ms: None, stonith_enabled=self.stonith_enabled)
            up = conn.active and not conn.failed
            self.guest_connections[rid] = self.guest_connections.get(rid, False) or up
            return
        info = self.info.get(rid.split(":", 1)[0])
        if info is not None and info.allow_migrate:
            # Migration spans nodes: keep every history of a migratable resource for `finish`.
            ops = [_op_record(op) for op in children]
            self.migratable.setdefault(rid, {})[self.current.uname] = (ops, _agent(attrs))
            return
        if len(children) == 1 and is_trivial(children[0]):
            return
        ops = [_op_record(op) for op in children]
        agent = _agent(attrs)
        if (info is not None and info.failure_timeout > 0 and self.now is not None
                and any(op.rc != op.target_rc or op.status not in (0, -1) for op in ops)):
            self.deferred.append((rid, self.current.uname, ops, agent))
            return
        self._replay(rid, self.current.uname, ops, agent, None)

    def _replay(self, rid: str, uname: str, ops: list[OpRecord], agent: str,
                expired: Callable[[OpRecord], bool] | None) -> None:
        info = self.info.get(rid.split(":", 1)[0])
        table = info.on_fail if info else {}
        outcome = replay(ops, lambda task, ms: table.get((task, ms)), stonith_enabled=self.stonith_enabled,
                         promotable=info.promotable if info else False,
                         managed=info.managed if info else True, expired=expired,
                         in_container=info.in_container if info else False)
        if outcome.active or outcome.failed_op is not None or outcome.banned or outcome.pending:
            self.outcomes.append((rid, uname, outcome, agent))

    def _expiry(self, rid: str, uname: str) -> Callable[[OpRecord], bool] | None:
        """When failures of `rid` on `uname` are forgotten (failure-timeout), or None if never."""
        info = self.info.get(rid.split(":", 1)[0])
        if info is None or info.failure_timeout <= 0 or self.now is None:
            return None
        raw = self.nodes.get(uname)
        timeout, blocking, now = info.failure_timeout, info.on_fail, self.now
        count, last = _fail_count(raw.attributes if raw else {}, rid)
        live_count = count > 0 and last + timeout > now

        def expired(op: OpRecord) -> bool:
            if op.last_change is None or now < op.last_change + timeout:
                return False
            if blocking.get(op.key) == "block":
                return False  # Pacemaker ignores failure-timeout for a failure with on-fail=block
            if live_count:
                return False  # an unexpired fail count keeps the failure alive
            # A probe that found the resource in a definite state is history, not a failure.
            return not (op.is_probe and op.rc in (0, 7, 8, 190, 191))

        return expired

    def _replay_deferred(self, online: Callable[[str], bool]) -> None:
        for rid, uname, ops, agent in self.deferred:
            self._replay(rid, uname, ops, agent, self._expiry(rid, uname))
        self.deferred = []
        for rid, histories in self.migratable.items():
            info = self.info.get(rid.split(":", 1)[0])
            lookup = _lookup(info.on_fail if info else {})
            outcomes = {uname: replay(ops, lookup,
                                      stonith_enabled=self.stonith_enabled,
                                      managed=info.managed if info else True, expired=self._expiry(rid, uname),
                                      in_container=info.in_container if info else False)
                        for uname, (ops, _) in histories.items()}
            migration.resolve({u: ops for u, (ops, _) in histories.items()}, outcomes, online)
            agent = next(iter(histories.values()))[1]
            for uname, outcome in outcomes.items():
                if outcome.active or outcome.failed_op is not None or outcome.banned or outcome.pending \
                        or outcome.migrating_to:
                    self.outcomes.append((rid, uname, outcome, agent))
        self.migratable = {}

    def finish(self, node_names: list[str], *, startup_fencing: bool, have_quorum: bool,
               suicide_without_quorum: bool, node_attributes: dict[str, dict[str, str]],
               ignore_quorum: bool = False) -> ClusterState:
        self.can_fence = self.stonith_enabled and (have_quorum or ignore_quorum)
        state = ClusterState(have_quorum=have_quorum, tickets=dict(self.tickets))
        for name in node_names:
            raw = self.nodes.get(name)
            attrs = dict(node_attributes.get(name, {}))
            if raw is None:
                unclean = self.stonith_enabled and startup_fencing
                state.nodes[name] = NodeState(online=False, seen=False, unclean=unclean,
                                              fence_reason="node was never seen" if unclean else None,
                                              standby=is_true(attrs.get("standby")),
                                              maintenance=is_true(attrs.get("maintenance")))
                continue
            attrs.update(raw.attributes)
            node = self._membership(raw, attrs)
            if suicide_without_quorum and not have_quorum and node.online:
                self._fence(node, "cluster does not have quorum")
            state.nodes[name] = node
        self._replay_deferred(lambda name: name in state.nodes and state.nodes[name].online)
        kept = []
        # Histories whose every failure was configured on-fail=ignore: their fail count is void.
        self.ignored = {(rid, uname) for rid, uname, outcome, _ in self.outcomes
                        if outcome.failures and outcome.failures == outcome.ignored_failures}
        for rid, uname, outcome, agent in self.outcomes:
            where = state.nodes.get(uname)
            if where is None:
                continue  # history of a node no longer configured: Pacemaker ignores it too
            if uname in self.remote_nodes:
                kept.append((rid, uname, outcome, agent))
            elif where.online or self.stonith_enabled:
                # Without fencing, an offline node's history is never read: what ran there is gone.
                state.resources.append(self._resource(rid, uname, where, outcome, agent))
        self._remote(state, kept, startup_fencing)
        self._fail_counts(state)
        return state

    def _remote(self, state: ClusterState, history: list[tuple[str, str, Outcome, str]],
                startup_fencing: bool) -> None:
        """A remote or guest node is up when the resource providing it runs, unfailed, somewhere.

        With fencing, a remote node (not a guest: a guest is "fenced" by recovering its container)
        is unclean when never seen, when its connection failed beyond a start, or when resources
        are thought active on it while it is down.
        """
        conn: dict[str, list[ResourceStatus]] = {}
        for status in state.resources:
            conn.setdefault(status.resource, []).append(status)
        for name, provider in self.remote_nodes.items():
            raw = self.nodes.get(name)
            attrs = dict(state.nodes[name].attributes) if name in state.nodes else {}
            if raw is not None:
                attrs.update(raw.attributes)
            entries = conn.get(provider, [])
            failed = any(e.failed for e in entries)
            up = any(e.role != "Stopped" for e in entries) and not failed
            if provider != name:
                # A guest also needs its implicit connection (history under the guest's name) up,
                # and is lost with a host that has to be fenced.
                hosts = [state.nodes.get(e.node) for e in entries if e.role != "Stopped"]
                host_lost = any(h is not None and h.unclean and not h.online for h in hosts)
                up = up and self.guest_connections.get(name, False) and not host_lost
            # Membership fields mean nothing for a remote node: its connection decides.
            node = NodeState(online=up, seen=raw is not None, attributes=attrs,
                             standby=is_true(attrs.get("standby")), maintenance=is_true(attrs.get("maintenance")))
            if self.stonith_enabled and provider == name:
                if raw is None and startup_fencing:
                    self._fence(node, "remote node was never seen")
                elif any(e.failed and not (e.failed_op == "start" or (e.failed_op == "monitor"
                                                                           and not e.failed_interval))
                         for e in entries):
                    self._fence(node, "remote connection is unrecoverable")
            state.nodes[name] = node
        for name in self.remote_typed:
            if name not in self.remote_nodes and name in state.nodes:
                # A stale remote node entry whose connection resource is gone: simply offline.
                state.nodes[name] = NodeState(online=False, seen=name in self.nodes)
        lost_guests: set[str] = set()
        for rid, uname, outcome, agent in history:
            node = state.nodes[uname]
            # History of a remote node is read once its connection is up, or (with fencing) at the end.
            if node.online or self.stonith_enabled:
                status = self._resource(rid, uname, node, outcome, agent)
                state.resources.append(status)
                if status.failed and not node.online and self.remote_nodes[uname] != uname:
                    lost_guests.add(uname)
        for name in lost_guests:
            # Fencing a guest means recovering its container: the container counts as failed.
            for entry in conn.get(self.remote_nodes[name], []):
                if entry.role != "Stopped":
                    entry.failed = True
                    entry.on_fail = entry.on_fail or "restart"

    def _membership(self, raw: RawNode, attrs: dict[str, str]) -> NodeState:
        shutdown = attrs.get("shutdown", "0") not in ("0", "")
        node = NodeState(online=False, standby=is_true(attrs.get("standby")),
                         maintenance=is_true(attrs.get("maintenance")), shutdown=shutdown,
                         in_cluster=is_true(raw.in_ccm) if raw.in_ccm is not None else None,
                         controller_online=raw.crmd == "online" if raw.crmd is not None else None,
                         join=raw.join, attributes=attrs,
                         expected=raw.expected if raw.expected in ("member", "down") else None)
        in_cluster = is_true(raw.in_ccm)
        crmd_online = (raw.crmd or "").lower() == "online"
        join = (raw.join or "").lower()
        expected_up = not shutdown and (raw.expected or "").lower() == "member"
        if not self.stonith_enabled:
            if in_cluster and crmd_online:
                node.online = join == "member"
                node.pending = join != "member"
            elif in_cluster and expected_up:
                self._fence(node, "peer is unexpectedly down")
            return node
        terminate = attrs.get("terminate")
        do_terminate = is_true(terminate) or bool(terminate and terminate[0].isdigit() and terminate[0] != "0")
        expected = (raw.expected or "down").lower()
        online = in_cluster
        if shutdown:
            online = crmd_online
        elif raw.in_ccm is None:
            self._fence(node, "peer has not been seen by the cluster")
        elif join == "banned":
            self._fence(node, "peer failed Pacemaker membership criteria")
        elif not do_terminate and expected == "down":
            if in_cluster or crmd_online:
                node.pending = node.standby = True
        elif do_terminate and join == "down" and not in_cluster and not crmd_online:
            online = False  # just fenced
        elif not in_cluster:
            self._fence(node, "peer is no longer part of the cluster")
        elif not crmd_online:
            self._fence(node, "peer process is no longer available")
        elif do_terminate:
            self._fence(node, "termination was requested")
        elif join == "member":
            pass
        elif join in ("pending", "down"):
            node.pending = node.standby = True
        else:
            self._fence(node, "peer was in an unknown state")
        node.online = online
        return node

    @staticmethod
    def _fence(node: NodeState, reason: str) -> None:
        if not node.unclean:
            node.unclean = True
            node.fence_reason = reason

    def _resource(self, rid: str, uname: str, node: NodeState, outcome: Outcome, agent: str) -> ResourceStatus:
        info = self.info.get(rid.split(":", 1)[0])
        managed = info.managed if info else True
        guest = self.remote_nodes.get(uname, uname) != uname
        lost = outcome.active and not node.online and not node.maintenance and managed
        if lost and not guest and self.stonith_enabled:
            self._fence(node, f"{rid} is thought to be active there")
        on_fail = "ignore" if node.unclean else outcome.on_fail
        if lost and guest:
            # A guest is "fenced" by recovering its container: what ran inside has failed.
            on_fail = "restart"
        if on_fail == "fence":
            self._fence(node, f"{rid} failed there")
        elif on_fail == "standby":
            node.standby = True
        op = outcome.failed_op
        # A failed stop is recovered by fencing; where fencing is impossible, nothing more can be done.
        blocked = outcome.on_fail == "block" or (outcome.stop_failed and not self.can_fence)
        return ResourceStatus(
            resource=rid, node=uname, role=ROLE_NAMES[outcome.role],
            failed=outcome.active and on_fail != "ignore",
            failed_op=op.task if op else None, failed_interval=op.interval_ms / 1000 if op else None,
            failed_rc=op.rc if op else None,
            # A probe that found the agent missing or misconfigured bans the node for good
            # (Pacemaker's hard error), even though the resource counts as stopped there.
            failure_kind=outcome.failure_kind or ("hard" if outcome.banned else None),
            on_fail=outcome.on_fail if op or outcome.on_fail != "ignore" else None,
            blocked=blocked, pending=outcome.pending, banned=outcome.banned or outcome.failure_kind == "hard",
            migrating_to=outcome.migrating_to, migrating_from=outcome.migrating_from,
            orphan=info is None, agent=agent if info is None else None)

    def _ignored_count(self, rid: str, uname: str, task: str | None, interval: str | None) -> bool:
        """Whether a fail-count attribute belongs to failures configured on-fail=ignore."""
        if task is not None and interval is not None:
            info = self.info.get(rid.split(":", 1)[0])
            return info is not None and info.on_fail.get((task, _int(interval, -1))) == "ignore"
        return (rid, uname) in self.ignored

    def _fail_counts(self, state: ClusterState) -> None:
        index = {(s.resource, s.node): s for s in state.resources}
        for uname, node in state.nodes.items():
            for name, value in node.attributes.items():
                match = _FAIL_ATTR.match(name)
                if match is None:
                    continue
                kind, rid = match.group(1), match.group(2)
                if self._ignored_count(rid, uname, match.group(3), match.group(4)):
                    continue
                status = index.get((rid, uname))
                if status is None:
                    if rid.split(":", 1)[0] not in self.info:
                        continue  # fail count of a resource no longer configured
                    status = ResourceStatus(resource=rid, node=uname, role="Stopped")
                    index[(rid, uname)] = status
                    state.resources.append(status)
                if kind == "fail-count":
                    status.fail_count = min(1_000_000, status.fail_count + _count(value))
                else:
                    when = float(_int(value, 0))
                    status.last_failure = max(status.last_failure or 0.0, when)
