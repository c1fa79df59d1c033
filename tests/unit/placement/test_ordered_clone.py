"""An ordered clone (meta `ordered: true`) starts its instances one after another and stops them
in the reverse order; without it, its instances start and stop in parallel."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as stt
from placement_helpers import spec
from test_promote_after_demote import _before

from hakeeper.placement import schedule
from hakeeper.spec.model import ClusterState


def _clone(nodes: int, ordered: bool, **meta: object):  # type: ignore[no-untyped-def]
    return spec(nodes, ["q"], clones=[{"id": "qs", "child": "q", "meta": {"ordered": ordered, **meta}}])


def _tasks(plan, task: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The indexes of `task` actions of the clone's instances, by instance number."""
    acts = sorted((a for a in plan.actions if a.task == task and a.resource and a.resource.startswith("q:")),
                  key=lambda a: int(a.resource.split(":")[1]))
    return [a.index for a in acts]


@settings(max_examples=30, deadline=None)
@given(stt.integers(min_value=2, max_value=6), stt.booleans())
def test_starts_follow_instance_order_only_when_ordered(nodes: int, ordered: bool) -> None:
    plan = schedule(_clone(nodes, ordered), ClusterState())
    starts = _tasks(plan, "start")
    assert len(starts) == nodes
    chained = all(_before(plan, a, b) for a, b in itertools.pairwise(starts))
    anything_ordered = any(_before(plan, a, b) or _before(plan, b, a) for a in starts for b in starts if a != b)
    assert chained == ordered and anything_ordered == ordered


def test_an_ordered_clone_stops_in_the_reverse_order() -> None:
    running = ClusterState.model_validate({"resources": [
        {"resource": f"q:{i}", "node": f"node{i + 1}", "role": "Started"} for i in range(3)]})
    plan = schedule(_clone(3, True, **{"target-role": "Stopped"}), running)
    stops = _tasks(plan, "stop")
    assert len(stops) == 3
    assert _before(plan, stops[2], stops[1]) and _before(plan, stops[1], stops[0])
    assert not _before(plan, stops[0], stops[2])
