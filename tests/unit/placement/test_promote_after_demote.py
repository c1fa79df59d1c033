"""A promotable clone is never promoted on two nodes within one transition: every promote waits
for every demote of the clone and for the fence of a node where an instance was promoted (as
Pacemaker orders the clone's `demoted` before its `promote`). Found by the cluster simulation
(tests/sim): without the order, the agents ran both at once."""

from __future__ import annotations

from placement_helpers import spec

from hakeeper.placement import schedule
from hakeeper.placement.plan import Plan
from hakeeper.spec.model import ClusterState


def _promotable(nodes: int, prefer: str, stonith: bool = False):  # type: ignore[no-untyped-def]
    return spec(nodes, ["db"], cluster={"stonith-enabled": stonith},
                clones=[{"id": "ms", "child": "db", "meta": {"promotable": True, "promoted-max": 1}}],
                location=[{"id": "lp", "resource": "ms", "role": "Promoted",
                           "rules": [{"score": 1000, "expressions": [
                               {"attribute": "#uname", "operation": "eq", "value": prefer}]}]}])


def _before(plan: Plan, first: int, then: int) -> bool:
    """`first` precedes `then` in the plan's order (through any chain of edges)."""
    after: dict[int, set[int]] = {}
    for a, b in plan.edges:
        after.setdefault(a, set()).add(b)
    seen, todo = set(), [first]
    while todo:
        for nxt in after.get(todo.pop(), ()):
            if nxt == then:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_the_promotion_moving_to_another_instance_waits_for_the_demote() -> None:
    state = ClusterState.model_validate({"resources": [
        {"resource": "db:0", "node": "node1", "role": "Promoted"},
        {"resource": "db:1", "node": "node3", "role": "Unpromoted"},
        {"resource": "db:2", "node": "node2", "role": "Unpromoted"},
    ]})
    plan = schedule(_promotable(3, "node3"), state)
    demotes = [a for a in plan.actions if a.task == "demote"]
    promotes = [a for a in plan.actions if a.task == "promote"]
    assert [a.node for a in demotes] == ["node1"] and [a.node for a in promotes] == ["node3"]
    assert _before(plan, demotes[0].index, promotes[0].index)


def test_a_promote_waits_for_the_fence_of_a_lost_node_that_ran_the_promoted_instance() -> None:
    state = ClusterState.model_validate({
        "nodes": {"node1": {"online": False, "unclean": True}},
        "resources": [
            {"resource": "db:0", "node": "node1", "role": "Promoted"},
            {"resource": "db:1", "node": "node2", "role": "Unpromoted"},
            {"resource": "db:2", "node": "node3", "role": "Unpromoted"},
        ]})
    plan = schedule(_promotable(3, "node2", stonith=True), state)
    fences = [a for a in plan.actions if a.task == "fence" and a.node == "node1"]
    promotes = [a for a in plan.actions if a.task == "promote"]
    assert fences and promotes
    assert all(_before(plan, fences[0].index, p.index) for p in promotes)
