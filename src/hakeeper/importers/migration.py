"""Live migration across nodes: what a migrate_to / migrate_from history means for both ends.

A migration writes `migrate_to` on the source and `migrate_from` on the target; what is running
where depends on both nodes' histories together (Pacemaker 2.1.5's unpack_migrate_to_success and
friends, re-expressed). Pure: histories in, corrected per-node outcomes out.
"""

from __future__ import annotations

from collections.abc import Callable

from hakeeper.importers.history import STARTED, STOPPED, OpRecord, Outcome

_STATE_CHANGES = frozenset({"start", "stop", "migrate_to", "migrate_from"})


def _newer(a: OpRecord, b: OpRecord, same_node: bool) -> bool:
    """Is `a` more recent than `b`? Call ids order one node's operations; across nodes, time does."""
    if same_node and a.call_id >= 0 and b.call_id >= 0:
        return a.call_id > b.call_id
    if a.last_change is not None and b.last_change is not None:
        return a.last_change > b.last_change
    return False


def _non_monitor_after(ops: list[OpRecord], ref: OpRecord, same_node: bool) -> bool:
    return any(op is not ref and op.task in _STATE_CHANGES and _newer(op, ref, same_node) for op in ops)


def _newer_state(ops: list[OpRecord], ref: OpRecord, same_node: bool) -> bool:
    stopped = [op for op in ops if op.task == "monitor" and op.rc == 7]
    return _non_monitor_after(ops, ref, same_node) or any(_newer(m, ref, same_node) for m in stopped)


def _find(ops: list[OpRecord], task: str, source: str | None = None, rc: int | None = None) -> OpRecord | None:
    found = [op for op in ops if op.task == task and (source is None or op.migrate_source == source)
             and (rc is None or op.rc == rc)]
    return max(found, key=lambda op: op.call_id) if found else None


def resolve(histories: dict[str, list[OpRecord]], outcomes: dict[str, Outcome],
            online: Callable[[str], bool]) -> None:
    """Correct `outcomes` (node → replayed outcome) of one resource for migrations in progress."""
    for source, ops in histories.items():
        migrate_to = _find(ops, "migrate_to")
        if migrate_to is None or migrate_to.migrate_target is None:
            continue
        target = migrate_to.migrate_target
        target_ops = histories.get(target, [])
        if migrate_to.rc == 0 and migrate_to.status == 0:
            _migrate_to_succeeded(source, target, migrate_to, ops, target_ops, outcomes, online)
        elif migrate_to.status != -1:
            _migrate_to_failed(source, target, migrate_to, ops, target_ops, outcomes, online)
    for ops in histories.values():
        migrate_from = _find(ops, "migrate_from")
        if migrate_from is None or migrate_from.rc == 0 or migrate_from.status == -1:
            continue
        origin = migrate_from.migrate_source
        if origin is None:
            continue
        # A failed migrate_from: the source still runs it unless something newer happened there.
        source_ops = histories.get(origin, [])
        migrate_to = _find(source_ops, "migrate_to", rc=0)
        ref = migrate_to or migrate_from
        if source_ops and not _newer_state(source_ops, ref, migrate_to is not None) and online(origin):
            _active(outcomes, origin, failed=True)


def _active(outcomes: dict[str, Outcome], node: str, *, failed: bool, migrating_from: str | None = None) -> None:
    out = outcomes.setdefault(node, Outcome())
    if out.role < STARTED:
        out.role = STARTED
    if failed and out.on_fail == "ignore":
        out.on_fail = "restart"
    if migrating_from is not None:
        out.migrating_from = migrating_from


def _migrate_to_succeeded(source: str, target: str, migrate_to: OpRecord, ops: list[OpRecord],
                          target_ops: list[OpRecord], outcomes: dict[str, Outcome],
                          online: Callable[[str], bool]) -> None:
    source_newer = _non_monitor_after(ops, migrate_to, True)
    migrate_from = _find(target_ops, "migrate_from", source=source)
    if source_newer and migrate_from is not None:
        return
    ref, same = (migrate_from, True) if migrate_from is not None else (migrate_to, False)
    target_newer = _newer_state(target_ops, ref, same)
    if source_newer and target_newer:
        return
    src = outcomes.setdefault(source, Outcome())
    if not source_newer:
        # Nothing happened on the source since: it still holds the resource (or its leftovers).
        src.role = STARTED
        src.migrating_to = target
    if migrate_from is not None and migrate_from.rc == 0 and migrate_from.status == 0:
        # Finished: the target runs it; the source only needs cleaning up (a "dangling" migration).
        if not source_newer:
            src.role = STOPPED
    elif migrate_from is not None and migrate_from.status != -1:
        if not target_newer and online(target):
            _active(outcomes, target, failed=True)
        else:
            src.on_fail = "restart"
    elif not target_newer and online(target):
        # In progress (or its record erased): active on both ends until finished or stopped.
        _active(outcomes, target, failed=False, migrating_from=source)
    elif not source_newer:
        src.on_fail = "restart"


def _migrate_to_failed(source: str, target: str, migrate_to: OpRecord, ops: list[OpRecord],
                       target_ops: list[OpRecord], outcomes: dict[str, Outcome],
                       online: Callable[[str], bool]) -> None:
    src = outcomes.setdefault(source, Outcome())
    migrate_from = _find(target_ops, "migrate_from", source=source, rc=0)
    ref = migrate_from or migrate_to
    if target_ops and not _newer_state(target_ops, ref, migrate_from is not None):
        if online(target):
            _active(outcomes, target, failed=False)
    elif not _non_monitor_after(ops, migrate_to, True):
        src.migrating_to = target  # a dangling migration: the source needs a stop
