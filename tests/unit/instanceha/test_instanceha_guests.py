"""The independent guest checker (novalab/guests.py): it must find a guest run by two processes
at once and a server Nova moved while its old process ran it, and accept a correct evacuation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as hs

from hakeeper.instanceha.novalab.guests import LedgerLine, Life, NovaSample, parse_ledger, runs, violations


def lives(src_last_alive: float) -> dict[int, Life]:
    return {10: Life(10, "compute-1", src_last_alive, dead=True), 20: Life(20, "compute-2", 100.0)}


def test_ledger_lines_are_parsed_and_torn_lines_skipped() -> None:
    text = "1.5 10 start a\n2.0 10 stop a\ngarbage\n3.0 20 start"
    assert parse_ledger(text) == [LedgerLine(1.5, 10, "start", "a"), LedgerLine(2.0, 10, "stop", "a")]


def test_a_correct_evacuation_passes() -> None:
    lines = [LedgerLine(1.0, 10, "start", "a"), LedgerLine(6.0, 20, "start", "a")]
    nova = [NovaSample(3.5, 4.0, {"a": "compute-1"}), NovaSample(6.5, 7.0, {"a": "compute-2"})]
    assert violations(lines, lives(5.0), nova) == []


def test_a_guest_started_while_its_old_process_still_ran_is_found() -> None:
    lines = [LedgerLine(1.0, 10, "start", "a"), LedgerLine(6.0, 20, "start", "a")]
    [found] = violations(lines, lives(6.5), [])
    assert "guest a started by pid 20 (compute-2)" in found


def test_nova_moving_a_server_before_its_host_died_is_found() -> None:
    lines = [LedgerLine(1.0, 10, "start", "a")]
    [found] = violations(lines, lives(8.0), [NovaSample(6.5, 7.0, {"a": "compute-2"})])
    assert "Nova placed a on compute-2" in found


def test_a_stopped_guest_may_start_elsewhere_while_its_old_process_lives() -> None:
    lines = [LedgerLine(1.0, 10, "start", "a"), LedgerLine(2.0, 10, "stop", "a"), LedgerLine(3.0, 20, "start", "a")]
    assert violations(lines, lives(9.0), [NovaSample(3.5, 4.0, {"a": "compute-2"})]) == []


def test_a_listing_asked_before_the_move_and_answered_after_it_is_no_violation() -> None:
    """Under load a listing takes seconds: its answer may still show the old host although the
    guest started on the new one while the listing was under way (seen in the real lab)."""
    lines = [LedgerLine(1.0, 10, "start", "a"), LedgerLine(6.0, 20, "start", "a")]
    assert violations(lines, lives(5.0), [NovaSample(4.0, 8.0, {"a": "compute-1"})]) == []
    # Asked after the guest started on compute-2, still answered compute-1: Nova 34 moves the host
    # only once the rebuild is over, so it lags the hypervisor; that is not a move.
    assert violations(lines, lives(5.0), [NovaSample(6.5, 8.0, {"a": "compute-1"})]) == []


@given(
    death=hs.floats(1.5, 50.0),
    start=hs.floats(1.5, 50.0),
    restarts=hs.integers(1, 3),
)
def test_verdict_is_exactly_whether_the_runs_overlap(death: float, start: float, restarts: int) -> None:
    """The old process last seen alive at `death`, the guest started on the other host at
    `start` (and started again there `restarts` times, as a resume does): a violation exactly
    when the old process was seen alive at or after the new start."""
    lines = [LedgerLine(1.0, 10, "start", "a")] + [LedgerLine(start + i, 20, "start", "a") for i in range(restarts)]
    assert len(runs(lines, lives(death))) == 2
    assert bool(violations(lines, lives(death), [])) == (death >= start)
