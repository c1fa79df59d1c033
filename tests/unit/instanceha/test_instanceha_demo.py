"""`hakeeper demo instances`: the verdict and the live line's parts (instanceha/demo.py); the
scenario itself runs against real Nova as the last test of test_evacuation.py."""

from __future__ import annotations

from hakeeper.instanceha.demo import Outcome, instances_on, recovery_progress


def outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = dict(instances=8, fenced_s=1.8, forced_down_s=3.0, active_s=20.0, misplaced=0,
                                     not_once=0, guest_violations=0)
    fields.update(changes)
    return Outcome(**fields)  # type: ignore[arg-type]


def test_ok_only_when_every_step_was_seen_and_the_check_found_nothing() -> None:
    assert outcome().ok
    assert "not_exactly_once=0" in outcome().result_line()
    for bad in ({"misplaced": 1}, {"not_once": 1}, {"guest_violations": 1}, {"instances": 0},
                {"fenced_s": None}, {"forced_down_s": None}, {"active_s": None}):
        assert not outcome(**bad).ok, bad
    assert "all_active_s=none" in outcome(active_s=None).result_line()


def test_instances_per_host_count_statuses() -> None:
    servers = [
        {"OS-EXT-SRV-ATTR:host": "compute-1", "status": "ACTIVE"},
        {"OS-EXT-SRV-ATTR:host": "compute-1", "status": "ACTIVE"},
        {"OS-EXT-SRV-ATTR:host": "compute-2", "status": "REBUILD"},
        {"OS-EXT-SRV-ATTR:host": "compute-2", "status": "ACTIVE"},
    ]
    assert instances_on(servers, "compute-1") == "2 ACTIVE"
    assert instances_on(servers, "compute-2") == "1 ACTIVE, 1 REBUILD"
    assert instances_on(servers, "compute-3") == "0"


def test_recovery_shown_is_the_last_since_the_demo_began() -> None:
    old = {"node": "compute-2", "fenced_at": 5.0, "phase": "done", "instances": []}
    new = {"node": "compute-1", "fenced_at": 20.0, "phase": "evacuating",
           "instances": [{"state": "evacuated"}, {"state": "issued"}, {"state": "evacuated"}]}
    assert recovery_progress([old], 10.0) == "none"
    assert recovery_progress([old, new], 10.0) == "compute-1 evacuating (2 evacuated, 1 issued)"
