"""The pure replay of one resource's operation history on one node."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.importers import migration
from hakeeper.importers.history import (
    PROMOTED,
    STARTED,
    STOPPED,
    UNPROMOTED,
    OpRecord,
    Outcome,
    default_on_fail,
    replay,
)


def op(task: str, call: int, rc: int = 0, *, interval: int = 0, target: int = 0, status: int | None = None,
       when: float | None = None, **kw: str) -> OpRecord:
    if status is None:
        status = 0 if rc == target else 4
    return OpRecord(task, interval, call, rc, status, target, when, kw.get("source"), kw.get("target_node"))


def run(*ops: OpRecord, stonith: bool = True, promotable: bool = False,
        on_fail: dict[tuple[str, int], str] | None = None, managed: bool = True) -> Outcome:
    table = on_fail or {}
    return replay(list(ops), lambda t, i: table.get((t, i)), stonith_enabled=stonith, promotable=promotable,
                  managed=managed)


def test_probe_finding_it_stopped_is_not_a_failure() -> None:
    out = run(op("monitor", 1, 7, target=7))
    assert out.role == STOPPED and not out.failed and out.failed_op is None


def test_unexpected_probe_result_running_means_active() -> None:
    out = run(op("monitor", 1, 0, target=7))
    assert out.role == STARTED and not out.failed


def test_start_then_failed_monitor_is_a_failure_to_recover() -> None:
    out = run(op("start", 2), op("monitor", 3, 7, interval=10000))
    assert out.failed and out.on_fail == "restart"
    assert out.failed_op.task == "monitor" and out.role == STARTED


def test_failed_monitor_then_stop_clears_the_failure() -> None:
    out = run(op("start", 2), op("monitor", 3, 1, interval=10000), op("stop", 4))
    assert out.role == STOPPED and not out.failed and out.on_fail == "ignore"


def test_failed_stop_needs_fencing_or_blocks_without_it() -> None:
    fenced = run(op("start", 2), op("stop", 3, 1))
    assert fenced.failed and fenced.on_fail == "fence" and fenced.stop_failed
    blocked = run(op("start", 2), op("stop", 3, 1), stonith=False)
    assert blocked.on_fail == "block"


def test_a_fence_response_outlives_a_later_stop() -> None:
    out = run(op("start", 2), op("monitor", 3, 1, interval=10000), op("stop", 4),
              on_fail={("monitor", 10000): "fence"})
    assert out.role == STOPPED and out.on_fail == "fence"


def test_ignore_pretends_the_operation_worked() -> None:
    out = run(op("start", 2, 1), on_fail={("start", 0): "ignore"})
    assert out.role == STARTED and not out.failed


def test_promotion_roles() -> None:
    assert run(op("start", 1), op("promote", 2), promotable=True).role == PROMOTED
    assert run(op("start", 1), op("promote", 2), op("demote", 3), promotable=True).role == UNPROMOTED
    assert run(op("start", 1), promotable=True).role == UNPROMOTED
    assert run(op("monitor", 1, 8, target=7)).role == PROMOTED


def test_pending_start_counts_as_active_and_is_reported() -> None:
    out = run(op("monitor", 1, 7, target=7), op("start", -1, 0, status=-1))
    assert out.role == STARTED and out.pending == "start"


def test_hard_and_fatal_failures() -> None:
    assert run(op("start", 1, 5)).failure_kind == "hard"
    assert run(op("start", 1, 6)).failure_kind == "fatal"
    masked = run(op("monitor", 1, 5, target=7))
    assert masked.role == STOPPED and masked.banned and not masked.failed


def test_expired_failure_is_forgotten() -> None:
    ops = (op("start", 1), op("monitor", 2, 1, interval=10000, when=100.0))
    assert run(*ops).failed
    out = replay(list(ops), lambda t, i: None, stonith_enabled=True, expired=lambda o: o.last_change == 100.0)
    assert not out.failed and out.role == STARTED


def test_default_on_fail() -> None:
    assert default_on_fail("stop", None, True) == "fence"
    assert default_on_fail("stop", "standby", False) == "block"  # not allowed for stop
    assert default_on_fail("monitor", "fence", False) == "stop"
    assert default_on_fail("monitor", None, False) == "restart"


TASKS = st.sampled_from(["start", "stop", "monitor", "promote", "demote", "notify"])


@given(st.lists(st.tuples(TASKS, st.sampled_from([0, 1, 7, 8]), st.sampled_from([0, 7, 8]),
                          st.sampled_from([0, 10000])), max_size=8), st.booleans(), st.booleans())
def test_replay_is_total_and_consistent(entries: list[tuple[str, int, int, int]], stonith: bool,
                                        promotable: bool) -> None:
    ops = [op(t, i + 1, rc, target=target, interval=iv) for i, (t, rc, target, iv) in enumerate(entries)]
    out = replay(ops, lambda t, i: None, stonith_enabled=stonith, promotable=promotable)
    assert out.role in (STOPPED, STARTED, UNPROMOTED, PROMOTED)
    # Failed implies active, and a failure always names the operation.
    assert not out.failed or (out.active and out.failed_op is not None)
    # The order of the input list does not matter: history is replayed by call id.
    again = replay(list(reversed(ops)), lambda t, i: None, stonith_enabled=stonith, promotable=promotable)
    assert (again.role, again.on_fail, again.failed) == (out.role, out.on_fail, out.failed)


@given(st.lists(st.tuples(TASKS, st.sampled_from([0, 1, 7])), max_size=6))
def test_a_final_successful_stop_always_leaves_it_stopped(entries: list[tuple[str, int]]) -> None:
    ops = [op(t, i + 1, rc) for i, (t, rc) in enumerate(entries)]
    ops.append(op("stop", len(ops) + 1))
    assert replay(ops, lambda t, i: None, stonith_enabled=False).role == STOPPED


def _mig(task: str, call: int, when: float, rc: int = 0, source: str = "n1", target: str = "n2",
         status: int = 0) -> OpRecord:
    return OpRecord(task, 0, call, rc, status, 0, when, source, target)


def _resolve(histories: dict[str, list[OpRecord]]) -> dict[str, Outcome]:
    outcomes = {node: replay(ops, lambda t, i: None, stonith_enabled=True) for node, ops in histories.items()}
    migration.resolve(histories, outcomes, online=lambda node: True)
    return outcomes


def test_migration_in_progress_is_active_on_both_ends() -> None:
    out = _resolve({"n1": [op("start", 1, when=10.0), _mig("migrate_to", 2, 20.0)],
                    "n2": [op("monitor", 1, 7, target=7, when=5.0)]})
    assert out["n1"].role == STARTED and out["n1"].migrating_to == "n2"
    assert out["n2"].role == STARTED and out["n2"].migrating_from == "n1" and not out["n2"].failed


def test_finished_migration_leaves_the_source_to_clean_up() -> None:
    out = _resolve({"n1": [op("start", 1, when=10.0), _mig("migrate_to", 2, 20.0)],
                    "n2": [_mig("migrate_from", 3, 21.0)]})
    assert out["n2"].role == STARTED
    assert out["n1"].role == STOPPED and out["n1"].migrating_to == "n2"


def test_migration_followed_by_stop_on_source() -> None:
    out = _resolve({"n1": [op("start", 1, when=10.0), _mig("migrate_to", 2, 20.0), op("stop", 3, when=30.0)],
                    "n2": [op("stop", 9, when=15.0)]})
    assert out["n1"].role == STOPPED and out["n2"].role == STARTED


def test_failed_stop_inside_a_container_recovers_the_container() -> None:
    out = replay([op("start", 1), op("stop", 2, 1)], lambda t, i: None, stonith_enabled=True, in_container=True)
    assert out.role == STOPPED and out.on_fail == "restart-container" and not out.stop_failed
