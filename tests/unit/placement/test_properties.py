"""Properties of the scheduler over random small clusters (hypothesis)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.placement import schedule
from hakeeper.spec.model import ClusterSpec

SCORES = st.sampled_from([-1_000_000, -100, -1, 0, 1, 10, 100, 1_000_000])


@st.composite
def clusters(draw: Any) -> ClusterSpec:
    nodes = [f"n{i}" for i in range(draw(st.integers(1, 4)))]
    count = draw(st.integers(1, 7))
    prims = [f"r{i}" for i in range(count)]
    # Split a prefix of the primitives into groups of two or three.
    groups, i = [], 0
    while i < count - 1 and draw(st.booleans()):
        size = draw(st.integers(2, 3))
        groups.append({"id": f"g{len(groups)}", "members": prims[i:i + size]})
        i += size
    in_group = {m for g in groups for m in g["members"]}
    singles = [p for p in prims if p not in in_group]
    clones: list[dict[str, Any]] = []
    if singles and draw(st.booleans()):
        child = singles.pop()
        clones.append({"id": "cl", "child": child,
                       "meta": {"clone-max": draw(st.integers(1, 5)),
                                "clone-node-max": draw(st.integers(1, 2))}})
    tops = [g["id"] for g in groups] + singles
    locations = [{"id": f"l{k}", "resource": draw(st.sampled_from(prims + tops)),
                  "node": draw(st.sampled_from(nodes)), "score": draw(SCORES)}
                 for k in range(draw(st.integers(0, 5)))]
    colocations = []
    if len(tops) > 1:
        # A dependent always comes later than its primary: no colocation cycles, which
        # Pacemaker (and hakeeper) can only break arbitrarily.
        pairs = sorted({(a, b) for a in range(len(tops)) for b in range(a)})
        chosen = draw(st.lists(st.sampled_from(pairs), max_size=3, unique=True))
        for k, (a, b) in enumerate(chosen):
            colocations.append({"id": f"c{k}", "resource": tops[a], "with": tops[b],
                                "score": draw(st.sampled_from([1_000_000, -1_000_000, 50]))})
    node_state: dict[str, dict[str, bool]] = {}
    for n in nodes:
        online = draw(st.booleans()) or n == nodes[0]
        node_state[n] = {"online": online,
                         "standby": draw(st.booleans()) and draw(st.booleans()),
                         # A lost node is unclean: fenced first when fencing is enabled.
                         "unclean": not online and draw(st.booleans())}
    running = [{"resource": p, "node": draw(st.sampled_from(nodes))}
               for p in prims if p not in {c["child"] for c in clones} and draw(st.booleans())]
    return ClusterSpec.model_validate({
        "cluster": {"stonith-enabled": draw(st.booleans()),
                    "resource-stickiness": draw(st.sampled_from([0, 1, 100]))},
        "nodes": [{"name": n} for n in nodes],
        "resources": {"primitives": [{"id": p, "agent": "ocf:pacemaker:Dummy"} for p in prims],
                      "groups": groups, "clones": clones},
        "constraints": {"location": locations, "colocation": colocations},
        "state": {"nodes": node_state, "resources": running},
    })


def _members(spec: ClusterSpec, rid: str) -> list[str]:
    for g in spec.resources.groups:
        if g.id == rid:
            return g.members
    return [rid]


def _nodes_of(plan_placement: dict[str, list[str]], rid: str) -> set[str]:
    return {n for k, v in plan_placement.items() if k == rid or k.split(":")[0] == rid for n in v}


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters())
def test_deterministic(spec: ClusterSpec) -> None:
    a, b = schedule(spec), schedule(spec)
    assert a.placement == b.placement and a.summary == b.summary and a.edges == b.edges


@SETTINGS
@given(clusters())
def test_safety(spec: ClusterSpec) -> None:
    plan = schedule(spec)
    state = spec.state
    assert state is not None
    # No resource on an offline or standby node.
    for rid, nodes in plan.placement.items():
        for node in nodes:
            ns = state.nodes[node]
            assert ns.online and not ns.standby, (rid, node)
    # -INFINITY locations are never violated.
    for loc in spec.constraints.location:
        if loc.score is not None and loc.score <= -1_000_000 and loc.resource:
            for member in _members(spec, loc.resource):
                assert loc.node not in _nodes_of(plan.placement, member), loc.id
    # Every member of a group on one node; a member runs only if the one before it runs.
    for g in spec.resources.groups:
        where = [tuple(plan.placement.get(m, [])) for m in g.members]
        placed = [w for w in where if w]
        assert len(set(placed)) <= 1, (g.id, where)
        for before, after in itertools.pairwise(where):
            assert before or not after, (g.id, where)
    # Mandatory colocations hold for every dependent that runs; anti-colocations too.
    for c in spec.constraints.colocation:
        assert c.resource is not None and c.with_resource is not None
        dep = next(_nodes_of(plan.placement, m) for m in _members(spec, c.resource))
        prim = set().union(*[_nodes_of(plan.placement, m) for m in _members(spec, c.with_resource)])
        if c.score >= 1_000_000 and dep:
            assert dep <= prim, (c.id, dep, prim)
        if c.score <= -1_000_000 and dep:
            assert not dep & prim, (c.id, dep, prim)
    # clone-node-max and clone-max are honoured.
    for clone in spec.resources.clones:
        counts: dict[str, int] = {}
        instances = [k for k in plan.placement if k.split(":")[0] == clone.child]
        for k in instances:
            for node in plan.placement[k]:
                counts[node] = counts.get(node, 0) + 1
        assert all(v <= (clone.meta.clone_node_max or 1) for v in counts.values()), counts
        assert len(instances) <= (clone.meta.clone_max or len(spec.nodes))


@SETTINGS
@given(clusters())
def test_actions_are_consistent_with_the_placement(spec: ClusterSpec) -> None:
    plan = schedule(spec)
    for action in plan.actions:
        if action.task == "start":
            assert plan.placement.get(action.resource or "") == [action.node], action
    for a, b in plan.edges:
        assert a != b


@SETTINGS
@given(clusters())
def test_nothing_that_ran_on_a_fenced_node_starts_before_the_fence(spec: ClusterSpec) -> None:
    plan = schedule(spec)
    fences = {a.node: a for a in plan.actions if a.task == "fence"}
    for action in plan.actions:
        if action.task != "start" or action.resource is None:
            continue
        for node in plan.current.get(action.resource, []):
            if node in fences:
                assert plan.before(fences[node], action), (action, fences[node])
    state = spec.state
    assert state is not None
    if spec.cluster.stonith_enabled:
        unclean = {n for n, ns in state.nodes.items() if ns.unclean}
        assert set(fences) == unclean
