"""CIB rules with dates: in location constraints (kept, evaluated by placement at the state's `now`)
and in name/value sets (resolved at import, at `now`), and their located errors."""

from __future__ import annotations

import io

import pytest

from hakeeper.conformance.cibxml import render_cib
from hakeeper.errors import InputError
from hakeeper.importers.cib import read_cib
from hakeeper.placement import schedule
from hakeeper.spec.dates import parse_time
from hakeeper.spec.loader import dump_spec, parse_spec
from hakeeper.spec.model import ClusterSpec, DateExpression

WINDOW = ('<rule id="w" score="INFINITY">\n'
          '<date_expression id="wd" operation="in_range" start="2019-09-23 18:00:00 -05:00" '
          'end="2019-09-23 21:00:00 -05:00"/>\n</rule>')
INSIDE = parse_time("2019-09-23 19:00:00 -05:00").timestamp()
OUTSIDE = parse_time("2019-09-23 22:00:00 -05:00").timestamp()


def _cib(crm_config: str = "", nodes: str = "", resources: str = "", constraints: str = "",
         extra: str = "", status: str = "") -> str:
    return (f'<cib>\n<configuration>\n<crm_config>{crm_config}</crm_config>\n'
            f'<nodes>\n<node id="1" uname="n1"/>\n<node id="2" uname="n2"/>\n{nodes}</nodes>\n'
            f'<resources>{resources}</resources>\n<constraints>{constraints}</constraints>\n{extra}'
            f'</configuration>\n<status>{status}</status>\n</cib>')


def _read(text: str, now: float | None) -> ClusterSpec:
    return read_cib(io.BytesIO(text.encode()), file="t.xml", now=now)


UP = "".join(f'<node_state id="{i}" uname="n{i}" in_ccm="true" crmd="online" join="member" '
             f'expected="member"/>' for i in (1, 2))


def test_location_date_rule_is_kept_and_placement_evaluates_it_at_now() -> None:
    text = _cib(crm_config='<cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" '
                           'value="false"/></cluster_property_set>',
                resources='<primitive id="d" class="ocf" provider="pacemaker" type="Dummy"/>',
                constraints=('<rsc_location id="l" rsc="d">\n<rule id="r" score="INFINITY" boolean-op="and">\n'
                             '<expression id="e" attribute="#uname" operation="eq" value="n2"/>\n'
                             + WINDOW + '\n</rule></rsc_location>'),
                status=UP)
    for now, node in ((INSIDE, "n2"), (OUTSIDE, "n1")):
        spec = _read(text, now)
        inner = spec.constraints.location[0].rules[0].expressions[1]
        assert isinstance(inner.expressions[0], DateExpression)  # type: ignore[union-attr]
        assert spec.state is not None and spec.state.now == now
        plan = schedule(spec)
        assert [(a.task, a.node) for a in plan.actions if a.resource == "d" and a.task == "start"] \
            == [("start", node)], plan.summary


def test_cluster_option_window_resolved_at_import() -> None:
    sets = (f'<cluster_property_set id="win" score="100"><nvpair id="m" name="maintenance-mode" value="true"/>'
            f'{WINDOW}</cluster_property_set>'
            '<cluster_property_set id="cib-bootstrap-options"><nvpair id="s" name="stonith-enabled" '
            'value="false"/></cluster_property_set>'
            '<cluster_property_set id="low" score="1"><nvpair id="m2" name="maintenance-mode" '
            'value="false"/></cluster_property_set>')
    assert _read(_cib(crm_config=sets), INSIDE).cluster.maintenance_mode is True
    assert _read(_cib(crm_config=sets), OUTSIDE).cluster.maintenance_mode is False
    assert _read(_cib(crm_config=sets), None).cluster.maintenance_mode is False  # no time: no window


def test_set_scores_order_the_sets_and_bootstrap_options_come_first() -> None:
    sets = ('<cluster_property_set id="a" score="1"><nvpair id="a1" name="no-quorum-policy" value="stop"/>'
            '<nvpair id="a2" name="stonith-enabled" value="true"/></cluster_property_set>'
            '<cluster_property_set id="b" score="INFINITY"><nvpair id="b1" name="no-quorum-policy" '
            'value="freeze"/></cluster_property_set>'
            '<cluster_property_set id="cib-bootstrap-options"><nvpair id="c1" name="stonith-enabled" '
            'value="false"/></cluster_property_set>')
    cluster = _read(_cib(crm_config=sets), None).cluster
    assert cluster.no_quorum_policy == "freeze" and cluster.stonith_enabled is False


def test_node_attribute_sets_with_date_rules() -> None:
    nodes = ('<node id="3" uname="n3"><instance_attributes id="s1" score="10"><nvpair id="s1a" name="standby" '
             f'value="on"/>{WINDOW}</instance_attributes><instance_attributes id="s2"><nvpair id="s2a" '
             'name="standby" value="off"/><nvpair id="s2b" name="rack" value="r1"/></instance_attributes>'
             '</node>\n')
    at = {n.name: n.attributes for n in _read(_cib(nodes=nodes), INSIDE).nodes}
    assert at["n3"] == {"standby": "on", "rack": "r1"}
    at = {n.name: n.attributes for n in _read(_cib(nodes=nodes), OUTSIDE).nodes}
    assert at["n3"] == {"standby": "off", "rack": "r1"}


def test_defaults_set_with_a_date_rule() -> None:
    extra = ('<rsc_defaults><meta_attributes id="d1" score="10"><nvpair id="d1a" name="is-managed" value="false"/>'
             f'{WINDOW}</meta_attributes></rsc_defaults>\n')
    resources = '<primitive id="d" class="ocf" provider="pacemaker" type="Dummy"/>'
    inside = _read(_cib(resources=resources, extra=extra), INSIDE)
    outside = _read(_cib(resources=resources, extra=extra), OUTSIDE)
    assert inside.resources.primitives[0].meta.is_managed is False
    assert outside.resources.primitives[0].meta.is_managed is None


def test_meta_rule_with_node_expression_sees_no_node() -> None:
    # Pacemaker 2.1 unpacks resource meta without a node: an expression on #uname never holds.
    resources = ('<primitive id="d" class="ocf" provider="pacemaker" type="Dummy">'
                 '<meta_attributes id="m"><nvpair id="m1" name="target-role" value="Stopped"/>'
                 '<rule id="r" score="0"><expression id="e" attribute="#uname" operation="eq" value="n1"/></rule>'
                 '</meta_attributes></primitive>')
    assert _read(_cib(resources=resources), INSIDE).resources.primitives[0].meta.target_role is None


@pytest.mark.parametrize(("fragment", "line", "field"), [
    ('<rsc_location id="l" rsc="d">\n<rule id="r" score="1">\n'
     '<date_expression id="bad" operation="gt" start="next tuesday"/>\n</rule></rsc_location>', 11, "bad.start"),
    ('<rsc_location id="l" rsc="d">\n<rule id="r" score="1">\n'
     '<date_expression id="bad" operation="lt"/>\n</rule></rsc_location>', 11, "bad"),
    ('<rsc_location id="l" rsc="d">\n<rule id="r" score="1">\n'
     '<date_expression id="bad" operation="date_spec">\n<date_spec id="ds" hours="late"/>'
     '</date_expression></rule></rsc_location>', 12, "ds.hours"),
    ('<rsc_location id="l" rsc="d">\n<rule id="r" score="1">\n'
     '<date_expression id="bad" operation="gt" start="2005-001" when="now"/>\n</rule></rsc_location>', 11, "when"),
])
def test_bad_date_expressions_are_located(fragment: str, line: int, field: str) -> None:
    resources = '<primitive id="d" class="ocf" provider="pacemaker" type="Dummy"/>'
    with pytest.raises(InputError) as err:
        _read(_cib(resources=resources, constraints=fragment), INSIDE)
    problem = err.value.problems[0]
    assert (problem.file, problem.line) == ("t.xml", line), problem
    assert problem.field is not None and problem.field.startswith(field), problem


def test_parameters_chosen_per_node() -> None:
    resources = ('<primitive id="d" class="ocf" provider="pacemaker" type="Dummy">\n'
                 '<instance_attributes id="p1"><nvpair id="p1a" name="interface" value="eth1"/>\n'
                 '<rule id="r1" score="0"><expression id="e1" attribute="#uname" operation="eq" value="n1"/>'
                 '</rule></instance_attributes>'
                 '<instance_attributes id="p2"><nvpair id="p2a" name="interface" value="eth2"/>\n'
                 '<rule id="r2" score="0"><expression id="e2" attribute="rack" operation="eq" value="r2"/>'
                 '</rule></instance_attributes>'
                 '<instance_attributes id="p3"><nvpair id="p3a" name="interface" value="lo"/>'
                 '<nvpair id="p3b" name="mtu" value="1500"/></instance_attributes></primitive>')
    # n2's rack comes from the status (a transient attribute), so it is resolved after the status.
    status = ('<node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">'
              '<transient_attributes id="t2"><instance_attributes id="t2i"><nvpair id="t2r" name="rack" '
              'value="r2"/></instance_attributes></transient_attributes></node_state>')
    spec = _read(_cib(resources=resources, status=status), INSIDE)
    prim = spec.resources.primitives[0]
    assert prim.params == {"interface": "lo", "mtu": "1500"}  # where no node rule holds
    assert prim.node_params == {"n1": {"interface": "eth1"}, "n2": {"interface": "eth2"}}
    assert parse_spec(dump_spec(spec)) == spec


def test_bad_rule_in_parameters_is_located() -> None:
    resources = ('<primitive id="d" class="ocf" provider="pacemaker" type="Dummy">\n'
                 '<instance_attributes id="p"><nvpair id="p1" name="interface" value="eth1"/>\n'
                 '<rule id="r" score="0"><expression id="e" attribute="#uname" operation="matches" value="n1"/>'
                 '</rule></instance_attributes></primitive>')
    with pytest.raises(InputError) as err:
        _read(_cib(resources=resources), INSIDE)
    assert err.value.problems[0].line == 10


def test_date_rules_and_node_params_survive_a_rendered_cib() -> None:
    text = _cib(resources=('<primitive id="d" class="ocf" provider="pacemaker" type="Dummy">'
                           '<instance_attributes id="p1"><nvpair id="p1a" name="interface" value="eth1"/>'
                           '<rule id="r1" score="0"><expression id="e1" attribute="#uname" operation="eq" '
                           'value="n1"/></rule></instance_attributes></primitive>'),
                constraints=('<rsc_location id="l" rsc="d">\n<rule id="r" score="100">\n'
                             '<date_expression id="de" operation="in_range" start="2005-001">'
                             '<duration id="du" months="2"/></date_expression>\n'
                             '<date_expression id="ds" operation="date_spec"><date_spec id="dss" hours="9-16"/>'
                             '</date_expression></rule></rsc_location>'))
    spec = _read(text, INSIDE)
    again = read_cib(io.BytesIO(render_cib(spec)), file="rendered.xml", now=INSIDE)
    assert again.resources.primitives[0].node_params == {"n1": {"interface": "eth1"}}
    assert again.constraints.location[0].rules[0].expressions == spec.constraints.location[0].rules[0].expressions


@pytest.mark.parametrize(("operation", "applied"), [("eq", False), ("not_defined", True)])
def test_defaults_rule_on_node_attributes_sees_no_node(operation: str, applied: bool) -> None:
    extra = ('<rsc_defaults><meta_attributes id="d1"><nvpair id="d1a" name="is-managed" value="false"/>'
             f'<rule id="r" score="0"><expression id="e" attribute="#uname" operation="{operation}" value="n1"/>'
             '</rule></meta_attributes></rsc_defaults>\n')
    resources = '<primitive id="d" class="ocf" provider="pacemaker" type="Dummy"/>'
    meta = _read(_cib(resources=resources, extra=extra), INSIDE).resources.primitives[0].meta
    assert meta.is_managed is (False if applied else None)
