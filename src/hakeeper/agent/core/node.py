"""A node's own decisions (not the leader's), pure: what to claim and how, what a resource
operation's result means for the store and for what this node believes it runs, what a probe
or a failed monitor reports, in which order the node stops things without the leader.

Both shells call these: the agent's asyncio tasks (agent/daemon.py, agent/leaving.py) and the
cluster simulation's node (tests/sim/adapter.py), so the simulation checks the same decisions the
agent makes. What stays in each shell is the sequencing: when to probe, when to look at the plan,
one action at a time, waiting for the store's answers. No I/O and no clock in here: `now` is
passed in (the report stamps; the leader compares a fail count's `last` with failure-timeout).

The plan/claim protocol (docs/agent.md has the picture):
  1. A node claims the first ready action of the plan it reads in one transaction, guarded by
     the plan being still the one it read and the action not done yet: it writes `running/<node>`
     (bound to its lease: the action in flight and the incarnation running it), rewrites `claims`
     (which the leader's publish compares, so a new plan and a claim cannot both succeed), and
     for a start or a promote a pending report (not bound to the lease: a node lost mid-start
     looks unclean and is fenced before the resource starts elsewhere).
  2. It runs the operation, then reports in one transaction guarded by its claim still standing
     (state.report_guard): the done marker, its report, a fail count on failure, and the release
     of `running/<node>`. A refused report changes nothing in the store: the node's next
     incarnation probes, or its fence settles it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from hakeeper.agent import state as st
from hakeeper.agent.core.types import Op, OpName, Role
from hakeeper.agent.plan import PlanAction
from hakeeper.coord.store import Compare, Delete, Put, absent
from hakeeper.resources.result import Result, Status
from hakeeper.spec import ClusterSpec

# The tasks after which the resource runs and gets its recurring monitor.
_MONITORED_AFTER = ("start", "promote", "demote")


@dataclass(frozen=True)
class Hosting:
    """What an outcome says about one resource on this node: whether it runs here and whether it
    is promoted here (None: unchanged). The shell keeps the two sets it applies to; they decide
    what the no-quorum stop and the shutdown stop."""

    running: bool | None = None
    promoted: bool | None = None

    def apply(self, rsc: str, running: set[str], promoted: set[str]) -> None:
        if self.running is not None:
            (running.add if self.running else running.discard)(rsc)
        if self.promoted is not None:
            (promoted.add if self.promoted else promoted.discard)(rsc)


def running_role(res: Result, promotable: bool) -> Role:
    """The role a running instance reports: Promoted (rc 8), else Unpromoted for an instance of a
    promotable clone, else Started."""
    if res.status is Status.PROMOTED:
        return "Promoted"
    return "Unpromoted" if promotable else "Started"


def fail_count_put(keys: st.Keys, node: str, spec: ClusterSpec, rsc: str, op: OpName, old: int, now: float) -> Put:
    """The fail count after `op` failed on `rsc` here (`old`: the stored count)."""
    count = st.next_fail_count(spec, op, old)
    return Put(keys.fail_of(node, rsc), st.dumps({"count": count, "last": now}))


# ----- claiming an action of the plan -----


@dataclass(frozen=True)
class Claim:
    """The transaction that claims an action, and the `running/` value its report is guarded by."""

    running: bytes
    compares: tuple[Compare, ...]
    ops: tuple[Op, ...]


def claim(
    keys: st.Keys,
    node: str,
    plan_raw: bytes,
    epoch: int,
    action: PlanAction,
    lease: int,
    rsc: str,
    promotable: bool,
    known: st.Definition | None,
    now: float,
) -> Claim:
    """Claim `action` of the plan stored as `plan_raw`, only if that plan is still the one stored
    and the action is not done (a claim retried after its report reached the store would leave
    `running/` behind, and the leader would wait for it as long as this node lives). `rsc` is what
    this node's reports call the action's resource."""
    running = st.running_value(epoch, action.id, lease)
    ops: list[Op] = [
        Put(keys.running_of(node), running, lease),
        Put(keys.claims, st.claim_value(node, epoch, action.id, lease)),
    ]
    pending = st.pending_doc(action.task, now, promotable, known)
    if pending is not None:
        ops.append(Put(keys.status_of(node, rsc), st.dumps(pending)))
    compares = (Compare(keys.plan, "value", "==", plan_raw), absent(keys.done_of(epoch, action.id)))
    return Claim(running, compares, tuple(ops))


def stops_monitor_first(task: str) -> bool:
    """Pacemaker cancels the recurring monitor before a role change: an unpromoted instance's
    monitor would take the promotion in progress (rc 8) for a failure."""
    return task in ("stop", "demote", "promote")


# ----- reporting an action's result -----


@dataclass(frozen=True)
class Report:
    """What an action's result makes: the guarded transaction, what runs here, and the recurring
    monitor to start (started whatever becomes of the report: what the action started runs, and
    a report whose answer was lost may well be in the store, so no claim of it succeeds again)."""

    ok: bool
    guard: Compare
    ops: tuple[Op, ...]
    hosting: Hosting
    monitor: Role | None


def action_report(
    keys: st.Keys,
    node: str,
    spec: ClusterSpec,
    epoch: int,
    action: PlanAction,
    rsc: str,
    res: Result,
    running: bytes,
    promotable: bool,
    known: st.Definition | None,
    old_fail: int,
    orphan: bool,
    cut_off: bool,
    now: float,
) -> Report:
    """The report of `action` (claimed with `running`) on `rsc` after its result `res`. A node
    `cut_off` from the store while the action ran starts no monitor: its no-quorum stop (which
    waited for this result) stops what the action started."""
    task = action.task
    ok = res.ok_for(task)
    key = keys.status_of(node, rsc)
    ops: list[Op] = [
        Put(keys.done_of(epoch, action.id), st.dumps({"ok": ok, "rc": res.rc, "status": res.status.value}))
    ]
    promoted: bool | None = None
    if ok and task in ("promote", "demote", "stop"):
        promoted = task == "promote"
    if ok and task == "stop":
        ops.append(Delete(key))
        hosting = Hosting(running=False, promoted=promoted)
    elif ok:
        role = "Promoted" if task == "promote" else running_role(res, promotable)
        ops.append(Put(key, st.dumps(st.status_doc(res, task, True, now, role, known))))
        hosting = Hosting(running=True, promoted=promoted)
    else:
        # A demote that failed leaves the instance promoted, unless it stopped altogether.
        role = "Promoted" if task == "demote" and res.status is not Status.NOT_RUNNING else "Started"
        ops.append(Put(key, st.dumps(st.status_doc(res, task, False, now, role, known))))
        ops.append(fail_count_put(keys, node, spec, rsc, task, old_fail, now))
        hosting = Hosting()
    ops.append(Delete(keys.running_of(node)))
    monitor: Role | None = None
    if ok and task in _MONITORED_AFTER and not orphan and not cut_off:
        monitor = "Promoted" if task == "promote" else "Started"
    guard = st.report_guard(keys, node, running)
    return Report(ok, guard, tuple(ops), hosting, monitor)


# ----- probes -----


@dataclass(frozen=True)
class Probed:
    """What a probe (a one-off monitor) of `rsc` found, for the probe's transaction."""

    op: Op
    hosting: Hosting
    monitor: Role | None  # the recurring monitor to start: it runs here
    forget: bool  # an orphan found stopped: nothing more to know about it


def probe_report(
    keys: st.Keys,
    node: str,
    rsc: str,
    res: Result,
    promotable: bool,
    known: st.Definition | None,
    orphan: bool,
    now: float,
) -> Probed:
    key = keys.status_of(node, rsc)
    if res.running:
        role = running_role(res, promotable)
        doc = st.status_doc(res, "monitor", True, now, role, known)
        return Probed(Put(key, st.dumps(doc)), Hosting(running=True, promoted=role == "Promoted" or None), role, False)
    if res.stopped:
        return Probed(Delete(key), Hosting(running=False, promoted=False), None, orphan)
    return Probed(
        Put(key, st.dumps(st.status_doc(res, "monitor", False, now, "Started", known))), Hosting(), None, False
    )


# ----- recurring monitors -----


def monitor_hosting(status: Status) -> Hosting:
    """What a failed monitor says about what this node runs. Only a clean "not running" takes the
    resource off the list: after an error or a timeout it may well still run, and a node that
    loses quorum must still stop it (the simulation found a resource whose monitor failed with
    rc 1 skipped by the no-quorum stop, then running on two nodes)."""
    if status is Status.NOT_RUNNING:
        return Hosting(running=False, promoted=False)
    if status is Status.SUCCESS:
        return Hosting(promoted=False)  # running, but no longer promoted
    if status in (Status.PROMOTED, Status.FAILED_PROMOTED):
        return Hosting(promoted=True)  # demote before any stop
    return Hosting()


def monitor_failure(
    keys: st.Keys,
    node: str,
    spec: ClusterSpec,
    rsc: str,
    res: Result,
    promoted: bool,
    interval: float,
    known: st.Definition | None,
    old_fail: int,
    now: float,
) -> tuple[Op, ...]:
    """The report of a recurring monitor that found `rsc` not in its role (`promoted`: the
    monitor's role), and the raised fail count. A promoted instance that failed but still runs
    is reported Promoted, so the scheduler demotes it before promoting another."""
    role = "Promoted" if promoted and res.status not in (Status.NOT_RUNNING, Status.SUCCESS) else "Started"
    doc = st.status_doc(res, "monitor", False, now, role, known)
    doc["interval"] = interval
    return (
        Put(keys.status_of(node, rsc), st.dumps(doc)),
        fail_count_put(keys, node, spec, rsc, "monitor", old_fail, now),
    )


# ----- stopping without the leader -----


def stop_order(spec: ClusterSpec, running: Collection[str]) -> list[str]:
    """The order a node stops what runs on it by itself (no quorum, the end of a shutdown):
    orphans first, then the rest in reverse definition order, which for a group is its stop
    order. Promoted instances are demoted first, each right before its stop."""
    order = [p.id for p in spec.resources.primitives]

    def position(rsc: str) -> int:
        prim = st.primitive(spec, rsc)
        if prim is None:
            return -len(order) - 1  # an orphan
        return -order.index(prim.id) if prim.id in order else 0

    return sorted(running, key=lambda rsc: (position(rsc), rsc))
