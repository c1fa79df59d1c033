"""The figures and verdict of `hakeeper demo routers` (the demo itself runs in
tests/integration/l3/test_l3_demo.py)."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.l3.demofigures import Outcome, first_at, longest_dual_active, longest_gap, ping_loss

UP, STANDBY, DEAD = (True, "active"), (True, "standby"), (False, "unknown")


def test_longest_gap_counts_the_edges_and_ignores_events_outside() -> None:
    assert longest_gap([1.0, 1.2, 7.0, 7.2], 0.5, 8.0) == 7.0 - 1.2
    assert longest_gap([], 0.0, 3.0) == 3.0
    assert longest_gap([-5.0, 0.1, 9.0], 0.0, 1.0) == 0.9


@given(st.lists(st.floats(0, 100), max_size=30), st.floats(0, 50), st.floats(50, 100))
def test_longest_gap_is_at_most_the_window_and_at_least_its_share(times: list[float], start: float,
                                                                   end: float) -> None:
    gap = longest_gap(times, start, end)
    inside = [t for t in times if start <= t <= end]
    assert gap <= end - start + 1e-9
    assert gap * (len(inside) + 1) >= end - start - 1e-9  # some stretch is at least the average


def test_ping_loss_counts_missing_sequence_numbers_up_to_the_last_reply() -> None:
    assert ping_loss({1: 0.0, 2: 0.2, 5: 1.0, 6: 1.2}) == (6, 2)
    assert ping_loss({}) == (0, 0)


def test_first_at_takes_reads_asked_after_the_kill_only() -> None:
    samples = [(0.5, {"a": DEAD}), (1.0, {"a": UP}), (2.5, {"a": DEAD})]
    assert first_at(samples, 1.0, lambda s: s.get("a") == DEAD) == 1.5
    assert first_at(samples, 3.0, lambda s: True) is None


def test_dual_active_runs_from_first_read_to_the_first_read_without() -> None:
    samples = [(0.0, {"a": UP, "b": STANDBY}), (1.0, {"a": UP, "b": UP}), (1.5, {"a": UP, "b": UP}),
               (4.0, {"a": UP, "b": STANDBY}), (5.0, {"a": UP, "b": UP}), (5.5, {"a": UP, "b": UP})]
    assert longest_dual_active(samples) == 3.0
    # A dead node's stale 'active' is no second active: list-hosting shows it unknown.
    assert longest_dual_active([(0.0, {"a": UP, "b": DEAD}), (9.0, {"a": UP, "b": DEAD})]) == 0.0


GOOD = Outcome(bound=6.805, advert=2, resolution=0.1, takeover_s=5.6, traffic_back_s=5.7, pings_sent=133, pings_lost=26,
               ping_gap_s=5.6, tcp_lines=66, tcp_survived=True, tcp_gap_s=7.0, dead_unknown_s=1.7,
               table_active_s=5.6, dual_active_s=0.0, returned_standby=True)


def test_the_demo_fails_when_the_router_does_not_come_back_or_two_actives_last() -> None:
    assert GOOD.ok and GOOD.dead_shown_in_time()
    assert not dataclasses.replace(GOOD, takeover_s=None).ok
    assert not dataclasses.replace(GOOD, traffic_back_s=None).ok
    assert not dataclasses.replace(GOOD, dual_active_s=7.0).ok
    assert dataclasses.replace(GOOD, dead_unknown_s=2.08).dead_shown_in_time()  # the next read's worth late
    assert not dataclasses.replace(GOOD, dead_unknown_s=2.15).dead_shown_in_time()
    assert not dataclasses.replace(GOOD, dead_unknown_s=None).dead_shown_in_time()
    line = GOOD.result_line()
    assert line.startswith("RESULT takeover_s=5.60 traffic_back_s=5.70 bound_s=6.805 pings_lost=26/133")
    assert "tcp_survived=yes" in line and "dead_in_advert=yes" in line and "returned_standby=True" in line
    assert "takeover_s=none" in dataclasses.replace(GOOD, takeover_s=None).result_line()
