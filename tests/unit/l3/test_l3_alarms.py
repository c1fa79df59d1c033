"""The dual-active alarm (alarms.py): raised once per episode of two masters past the VRRP bound,
cleared when one master is left; the events file (events.py) holds one JSON line per event."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.l3.alarms import DualActiveWatch
from hakeeper.l3.events import Change, EventLog
from hakeeper.vrrp.machine import State

BOUND = 6.805


def test_two_masters_briefly_is_no_alarm_past_the_bound_is_one() -> None:
    w = DualActiveWatch(BOUND)
    assert w.observe({"r1": ("a", "b")}, 0.0) == []
    assert w.observe({"r1": ("a", "b")}, 6.0) == []  # a returning node's first adverts: normal
    assert w.observe({"r1": ("a",)}, 6.5) == []  # settled within the bound: nothing raised
    assert w.observe({"r1": ("b", "a")}, 10.0) == []
    alarm, = w.observe({"r1": ("b", "a")}, 17.0)
    assert (alarm.kind, alarm.router, alarm.nodes, alarm.lasted) == ("dual-active", "r1", ("a", "b"), 7.0)
    assert w.observe({"r1": ("a", "b")}, 30.0) == [] and w.count() == 1  # once per episode
    cleared, = w.observe({"r1": ("b",)}, 31.0)
    assert cleared.kind == "dual-active-cleared" and w.count() == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.booleans()), max_size=40))
def test_an_alarm_is_raised_iff_two_masters_lasted_past_the_bound(steps: list[tuple[float, bool]]) -> None:
    w = DualActiveWatch(BOUND)
    now, start, raised = 0.0, None, False
    for dt, dual in steps:
        now += dt
        alarms = w.observe({"r": ("a", "b") if dual else ("a",)}, now)
        kinds = [a.kind for a in alarms]
        if dual:
            start = now if start is None else start
            expect = not raised and now - start > BOUND
            assert kinds == (["dual-active"] if expect else [])
            raised = raised or expect
        else:
            assert kinds == (["dual-active-cleared"] if raised else [])
            start, raised = None, False
        assert w.count() == int(raised)


def test_events_file_has_a_line_per_transition_with_its_cause(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    ev = EventLog("network7", str(path))
    ev.transition(Change("r1", State.BACKUP, State.MASTER, "master-down", "no advert for Master_Down_Interval"))
    ev.emit("dual-active", "r1", detail="masters on a, b for 7.0 s")
    ev.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["kind"], e["router"], e["new"], e["cause"]) for e in lines] == [
        ("transition", "r1", "MASTER", "master-down"), ("dual-active", "r1", "", "")]
    assert all(e["node"] == "network7" for e in lines)
