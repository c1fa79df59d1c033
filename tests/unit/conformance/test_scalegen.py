"""Benchmark clusters: exact sizes, coherent placement, one lost node, full probe history."""

from __future__ import annotations

from collections import Counter

import pytest
from lxml import etree

from hakeeper.conformance.cibxml import render_cib
from hakeeper.conformance.scalegen import scale_cluster
from hakeeper.spec.checks import find_problems


@pytest.mark.parametrize(("nodes", "prims"), [(3, 100), (16, 1000), (5, 7)])
def test_exact_size_and_valid(nodes: int, prims: int) -> None:
    spec = scale_cluster(nodes, prims, "node-failure")
    assert len(spec.nodes) == nodes
    assert len(spec.resources.primitives) == prims
    assert find_problems(spec) == []


def test_initial_has_no_history_and_everyone_up() -> None:
    spec = scale_cluster(4, 50, "initial")
    assert spec.state is not None and not spec.state.resources
    assert all(ns.online for ns in spec.state.nodes.values())


def test_node_failure_runs_everything_once_and_loses_one_node() -> None:
    spec = scale_cluster(8, 400, "node-failure")
    assert spec.state is not None
    lost = [name for name, ns in spec.state.nodes.items() if ns.unclean]
    assert lost == ["node1"]
    cloned = {c.child for c in spec.resources.clones}
    running = Counter(rs.resource for rs in spec.state.resources)
    for prim in spec.resources.primitives:
        assert running[prim.id] == (8 if prim.id in cloned else 1), prim.id
    group_nodes = {g.id: {rs.node for rs in spec.state.resources if rs.resource in g.members}
                   for g in spec.resources.groups}
    assert all(len(nodes) == 1 for nodes in group_nodes.values())


def test_full_history_probes_every_other_resource_on_every_member() -> None:
    spec = scale_cluster(3, 20, "node-failure")
    cib = etree.fromstring(render_cib(spec, probe_everywhere=True))
    for state in cib.iter("node_state"):
        rscs = [r.get("id") for r in state.iter("lrm_resource")]
        assert sorted(rscs) == sorted(p.id for p in spec.resources.primitives)
        probes = [op for op in state.iter("lrm_rsc_op") if op.get("operation_key", "").endswith("_monitor_0")]
        assert all(op.get("rc-code") == "7" for op in probes)


def test_unknown_situation_is_refused() -> None:
    with pytest.raises(ValueError, match="situation"):
        scale_cluster(3, 10, "meteor")
