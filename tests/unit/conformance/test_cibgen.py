"""The random cluster generator and its CIB rendering (pure: no crm_simulate here)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hakeeper.conformance.cibgen import Knobs, generate
from hakeeper.conformance.cibxml import op_digest, render_cib
from hakeeper.spec.checks import find_problems

seeds = st.integers(min_value=0, max_value=2**32)


def test_the_same_seed_gives_the_same_cluster_and_cib() -> None:
    assert generate(7).model_dump() == generate(7).model_dump()
    assert render_cib(generate(7)) == render_cib(generate(7))
    assert render_cib(generate(7)) != render_cib(generate(8))


def test_digests_are_pacemakers_for_parameterless_resources() -> None:
    # The two values Pacemaker 2.1.5 writes for a Dummy without parameters.
    assert op_digest({}, 0, 20000) == hashlib.md5(b" <parameters/>\n").hexdigest()
    assert op_digest({}, 10000, 20000) == hashlib.md5(b' <parameters CRM_meta_timeout="20000"/>\n').hexdigest()
    # Parameters are sorted by name and escaped as XML attributes.
    assert op_digest({"b": "1", "a": "<&"}, 0, 1) == hashlib.md5(b' <parameters a="&lt;&amp;" b="1"/>\n').hexdigest()


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_generated_specs_pass_the_spec_checks(seed: int) -> None:
    spec = generate(seed)
    assert find_problems(spec) == []
    assert spec.state is not None and any(ns.online for ns in spec.state.nodes.values())


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_the_current_placement_is_coherent(seed: int) -> None:
    """A primitive runs on at most one node; a group's running members are a prefix, on one node."""
    spec = generate(seed)
    assert spec.state is not None
    in_clone = {c.child for c in spec.resources.clones}
    cloned = {m for g in spec.resources.groups if g.id in in_clone for m in g.members} | in_clone
    where: dict[str, set[str]] = defaultdict(set)
    for rs in spec.state.resources:
        if rs.role != "Stopped":
            where[rs.resource].add(rs.node)
            assert spec.state.nodes[rs.node].online or spec.state.nodes[rs.node].unclean
    for rid, nodes in where.items():
        if rid not in cloned:
            assert len(nodes) == 1, (rid, nodes)
    for group in spec.resources.groups:
        for node in {n for m in group.members for n in where.get(m, set())}:
            running = [node in where.get(m, set()) for m in group.members]
            assert running == sorted(running, reverse=True), (group.id, node, running)


@settings(max_examples=40, deadline=None)
@given(seeds)
def test_the_cib_carries_every_resource_node_and_history_entry(seed: int) -> None:
    spec = generate(seed)
    assert spec.state is not None
    cib = etree.fromstring(render_cib(spec))
    assert cib.get("validate-with", "").startswith("pacemaker-3.")
    assert cib.get("have-quorum") == ("1" if spec.state.have_quorum else "0")
    primitives = {p.get("id") for p in cib.iter("primitive")}
    assert primitives == {p.id for p in spec.resources.primitives}
    unames = [n.get("uname") for n in cib.find("configuration/nodes")]
    assert unames == [n.name for n in spec.nodes]
    states = {ns.get("uname"): ns for ns in cib.iter("node_state")}
    for name, ns in spec.state.nodes.items():
        flags = states[name].attrib
        assert (flags["in_ccm"], flags["crmd"]) == (("true", "online") if ns.online else ("false", "offline"))
        assert flags["expected"] == ("member" if ns.online or ns.unclean else "down")
    for rs in spec.state.resources:
        ops = states[rs.node].findall(f"lrm/lrm_resources/lrm_resource[@id='{rs.resource}']/lrm_rsc_op")
        assert ops, (rs.resource, rs.node)
        last = next(op for op in ops if op.get("id", "").endswith("_last_0"))
        if rs.role == "Stopped":
            assert (last.get("operation"), last.get("rc-code")) == ("monitor", "7")
        else:
            assert last.get("operation") == "start"
            assert last.get("rc-code") == ("1" if rs.failed and rs.failed_op == "start" else "0")
        if rs.failed:
            assert any(op.get("rc-code") == "1" for op in ops)
            attrs = {nv.get("name") for nv in states[rs.node].iter("nvpair")}
            assert any(a.startswith(f"fail-count-{rs.resource}#") for a in attrs)
        call_ids = [int(op.get("call-id", "0")) for op in states[rs.node].iter("lrm_rsc_op")]
        assert len(call_ids) == len(set(call_ids))


def test_knobs_shape_the_cluster() -> None:
    quiet = Knobs(nodes=(3, 3), top_level=(5, 5), group_share=0, clone_share=0, locations=0, colocations=0,
                  orders=0, running=1.0, failed_monitor=0, failed_start=0, probes=0, standby=0, offline=0,
                  lost=0, stonith=0, no_quorum=0, target_stopped=0, asymmetric=0)
    spec = generate(3, quiet)
    assert len(spec.nodes) == 3 and len(spec.resources.primitives) == 5
    assert not spec.constraints.location and not spec.resources.groups
    assert spec.state is not None
    assert sorted(rs.resource for rs in spec.state.resources) == sorted(p.id for p in spec.resources.primitives)
    assert all(not rs.failed for rs in spec.state.resources)
