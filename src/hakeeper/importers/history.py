"""Operation history of one resource on one node → what the cluster should believe about it now.

This is the pure heart of the CIB status import. Pacemaker records every operation it ran
(`lrm_rsc_op`: task, interval, call id, exit code, execution status, the exit code it expected);
the current role, whether the resource failed and how the cluster must react follow from replaying
that history in call order. The rules follow Pacemaker 2.1.5's unpacking (lib/pengine/unpack.c),
re-expressed here: a probe that finds the resource stopped is not a failure, a pending start makes
it active, a failure is only "cleared" by a later successful start/stop/promote unless its on-fail
response is one that outlives a stop (fence, standby, stop, migrate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# OCF exit codes.
OCF_OK, OCF_INVALID_PARAM, OCF_UNIMPLEMENTED, OCF_INSUFFICIENT_PRIV = 0, 2, 3, 4
OCF_NOT_INSTALLED, OCF_NOT_CONFIGURED, OCF_NOT_RUNNING = 5, 6, 7
OCF_RUNNING_PROMOTED, OCF_FAILED_PROMOTED, OCF_DEGRADED, OCF_DEGRADED_PROMOTED = 8, 9, 190, 191

# Execution status codes (the executor's view, before comparing with the expected result).
EXEC_PENDING, EXEC_DONE, EXEC_CANCELLED, EXEC_TIMEOUT, EXEC_NOT_SUPPORTED = -1, 0, 1, 2, 3
EXEC_ERROR, EXEC_ERROR_HARD, EXEC_ERROR_FATAL, EXEC_NOT_INSTALLED = 4, 5, 6, 7
EXEC_NO_FENCE_DEVICE, EXEC_NO_SECRETS = 10, 11

# Roles in increasing order of "how active"; UNKNOWN means the history said nothing yet.
UNKNOWN, STOPPED, STARTED, UNPROMOTED, PROMOTED = 0, 1, 2, 3, 4
ROLE_NAMES = {UNKNOWN: "Stopped", STOPPED: "Stopped", STARTED: "Started",
              UNPROMOTED: "Unpromoted", PROMOTED: "Promoted"}

# How bad an on-fail response is; the worst seen in the history wins (Pacemaker's ordering).
_ON_FAIL_RANK = {"ignore": 0, "demote": 1, "restart": 2, "reset-remote": 3, "restart-container": 4,
                 "migrate": 5, "block": 6, "stop": 7, "standby": 8, "fence": 9}
# Responses a later successful operation does not cancel.
_STICKY = frozenset({"stop", "fence", "migrate", "standby", "reset-remote"})


@dataclass(slots=True)
class OpRecord:
    """One `lrm_rsc_op` entry, reduced to what the replay needs."""

    task: str
    interval_ms: int
    call_id: int
    rc: int
    status: int
    target_rc: int  # from the transition key; -1 when absent
    last_change: float | None = None
    migrate_source: str | None = None
    migrate_target: str | None = None

    @property
    def is_probe(self) -> bool:
        return self.task == "monitor" and self.interval_ms == 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.task, self.interval_ms)


@dataclass
class Outcome:
    """The conclusion for one resource on one node."""

    role: int = UNKNOWN
    on_fail: str = "ignore"
    failed_op: OpRecord | None = None
    failure_kind: str | None = None  # soft, hard, fatal
    # A probe found the agent missing or misconfigured: not running, but never to be placed here.
    banned: bool = False
    pending: str | None = None
    migrating_to: str | None = None
    migrating_from: str | None = None
    stop_failed: bool = False
    # Failures seen, and how many of them were configured on-fail=ignore (their fail count
    # does not count either).
    failures: int = 0
    ignored_failures: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.role > STOPPED

    @property
    def failed(self) -> bool:
        return self.active and self.on_fail != "ignore"


# (task, interval_ms) → on-fail response configured for that operation, or None for the default.
OnFailLookup = Callable[[str, int], str | None]


def default_on_fail(task: str, configured: str | None, stonith_enabled: bool, in_container: bool = False) -> str:
    """Pacemaker's response to a failed operation when (or after) the configuration says."""
    if task == "stop" and configured in ("standby", "demote", "stop"):
        configured = None  # not allowed for stop: back to the default
    if configured == "restart-container" and not in_container:
        configured = None
    if configured is None and in_container:
        return "restart-container"  # a resource inside a container is recovered with it
    if configured == "fence" and not stonith_enabled:
        return "stop"
    if configured == "nothing":
        return "ignore"
    if configured is not None:
        return configured
    if task == "stop":
        return "fence" if stonith_enabled else "block"
    return "restart"


def _sort_key(op: OpRecord) -> tuple[int, int, float]:
    # Call order; pending operations (call id -1) have not completed and come last.
    pending = 1 if op.call_id < 0 else 0
    return (pending, op.call_id, op.last_change or 0.0)


def replay(ops: list[OpRecord], on_fail_for: OnFailLookup, *, stonith_enabled: bool,
           promotable: bool = False, managed: bool = True,
           expired: Callable[[OpRecord], bool] | None = None, in_container: bool = False) -> Outcome:
    """Replay one resource's history on one node.

    `expired(op)` says whether a failure recorded by `op` is older than the resource's
    failure-timeout (and no unexpired fail count keeps it alive): such failures are forgotten.
    """
    out = Outcome()
    last_failure: OpRecord | None = None
    active_role = UNPROMOTED if promotable else STARTED

    def set_active() -> None:
        if out.role < STARTED:
            out.role = active_role

    def escalate(response: str) -> None:
        if _ON_FAIL_RANK.get(response, 2) > _ON_FAIL_RANK.get(out.on_fail, 2):
            out.on_fail = response

    def succeeded(op: OpRecord, rc: int) -> None:
        nonlocal last_failure
        clear = False
        if rc == OCF_NOT_INSTALLED:
            out.role = STOPPED
        elif rc == OCF_NOT_RUNNING:
            clear = True
        elif op.task == "monitor":
            if last_failure is not None and last_failure.key == op.key:
                clear = True
            set_active()
        elif op.task == "start":
            out.role, clear = active_role, True
        elif op.task == "stop":
            out.role, clear = STOPPED, True
        elif op.task == "promote":
            out.role, clear = PROMOTED, True
        elif op.task == "demote":
            clear = out.on_fail == "demote"
            out.role = UNPROMOTED
        elif op.task == "migrate_from":
            out.role, clear = active_role, True
        elif op.task == "migrate_to":
            # What this means depends on the target's history too: see migration.resolve.
            set_active()
        else:
            set_active()
        if clear and out.on_fail not in _STICKY:
            out.on_fail = "ignore"
            out.failed_op = None
            out.failure_kind = None

    def failed(op: OpRecord, rc: int, status: int) -> None:
        nonlocal last_failure
        last_failure = op
        out.failed_op = op
        out.failure_kind = ("fatal" if status == EXEC_ERROR_FATAL
                            else "hard" if status in (EXEC_ERROR_HARD, EXEC_NOT_INSTALLED) else "soft")
        escalate(default_on_fail(op.task, on_fail_for(*op.key), stonith_enabled, in_container))
        if op.task == "stop":
            out.stop_failed = True
        elif op.task == "promote":
            out.role = PROMOTED
        elif op.task == "demote":
            if out.on_fail == "block":
                out.role = PROMOTED
            elif rc == OCF_NOT_RUNNING:
                out.role = STOPPED
            else:
                out.role = UNPROMOTED
        if op.is_probe and rc == OCF_NOT_INSTALLED:
            out.role = STOPPED
        else:
            set_active()

    for op in sorted(ops, key=_sort_key):
        if op.task in ("notify", "meta-data"):
            continue
        rc, status = op.rc, op.status
        if op.task == "monitor":
            rc = {OCF_DEGRADED: OCF_OK, OCF_DEGRADED_PROMOTED: OCF_RUNNING_PROMOTED}.get(rc, rc)
        masked = op.is_probe and (rc in (OCF_NOT_INSTALLED, OCF_INVALID_PARAM)
                                  or status == EXEC_NOT_INSTALLED)
        old = expired is not None and status != EXEC_NOT_INSTALLED and expired(op)
        if old and masked and op.rc != op.target_rc:
            if out.role <= STOPPED:
                out.role = UNKNOWN
            continue
        if masked:
            # The agent cannot run here: treat as stopped and keep the resource away from the node.
            succeeded(op, op.target_rc)
            out.role = STOPPED
            out.banned = True
            continue
        if status in (EXEC_DONE, EXEC_ERROR):
            status = _remap(op, rc, out, managed, promotable)
        if old and rc != op.target_rc:
            continue  # an expired failure: forgotten (a recurring monitor is simply rescheduled)
        if status == EXEC_CANCELLED:
            continue
        if status == EXEC_PENDING:
            if op.task == "start":
                set_active()
            elif op.task == "promote":
                out.role = PROMOTED
            if out.pending is None and (op.interval_ms or op.task != "monitor"):
                out.pending = op.task
            continue
        if status == EXEC_DONE:
            succeeded(op, rc)
            continue
        if status in (EXEC_NO_FENCE_DEVICE, EXEC_NO_SECRETS):
            status = EXEC_ERROR_HARD
        response = default_on_fail(op.task, on_fail_for(*op.key), stonith_enabled, in_container)
        if status == EXEC_NOT_INSTALLED and response == "ignore":
            out.on_fail = "migrate"  # an agent that does not exist cannot be ignored
        out.failures += 1
        if response == "ignore" and status != EXEC_NOT_INSTALLED:
            out.ignored_failures += 1
            succeeded(op, op.target_rc)  # on-fail=ignore: pretend it worked
            continue
        if response == "restart-container" and op.task == "stop":
            # The container's recovery stops it anyway: count the stop as done, recover the container.
            succeeded(op, op.target_rc)
            escalate(response)
            continue
        failed(op, rc, status)
    if out.role == UNKNOWN:
        out.role = STOPPED
    return out


def _remap(op: OpRecord, rc: int, out: Outcome, managed: bool, promotable: bool) -> int:
    """Judge a completed operation against what was expected; may update the role (Pacemaker's remap)."""
    status = EXEC_DONE if op.target_rc >= 0 and op.target_rc == rc else EXEC_ERROR
    if rc == OCF_OK:
        if op.is_probe and op.target_rc == OCF_NOT_RUNNING:
            status = EXEC_DONE  # a probe found it running: not a failure, just news
    elif rc == OCF_NOT_RUNNING:
        if op.is_probe or op.target_rc == rc or not managed:
            status = EXEC_DONE
            out.role = STOPPED
            if out.on_fail not in _STICKY:
                out.on_fail = "ignore"
    elif rc == OCF_RUNNING_PROMOTED:
        if op.is_probe:
            status = EXEC_DONE
        out.role = PROMOTED
    elif rc == OCF_FAILED_PROMOTED:
        out.role = PROMOTED
        status = EXEC_ERROR
    elif rc == OCF_NOT_CONFIGURED:
        status = EXEC_ERROR_FATAL
    elif rc == OCF_UNIMPLEMENTED:
        status = EXEC_ERROR_HARD if op.interval_ms == 0 else EXEC_NOT_SUPPORTED
    elif rc in (OCF_NOT_INSTALLED, OCF_INVALID_PARAM, OCF_INSUFFICIENT_PRIV):
        status = EXEC_ERROR_HARD
    elif status == EXEC_DONE:
        status = EXEC_ERROR
    return status
