"""Reading crm_simulate's XML answer into a placement (pure; the answers here are written by hand)."""

from __future__ import annotations

import pytest

from hakeeper.conformance.crmsim import Action, CrmSimulateError, apply_actions, placement_from_result

CURRENT = b"""<pacemaker-result api-version="2.25" request="crm_simulate">
  <cluster_status>
    <nodes/>
    <resources>
      <resource id="a" role="Started" active="true"><node name="n1" id="1"/></resource>
      <resource id="b" role="Stopped" active="false"/>
      <group id="g" number_resources="2">
        <resource id="g1" role="Started" active="true"><node name="n2" id="2"/></resource>
        <resource id="g2" role="Started" active="true" failed="true"><node name="n2" id="2"/></resource>
      </group>
      <clone id="c">
        <resource id="c1" role="Started" active="true"><node name="n1" id="1"/></resource>
        <resource id="c1" role="Started" active="true"><node name="n3" id="3"/></resource>
        <resource id="c1" role="Stopped" active="false"/>
      </clone>
    </resources>
  </cluster_status>
  <actions>
    <node_action task="Fence (reboot)" node="n3" reason="peer is no longer part of the cluster"/>
    <rsc_action action="move" resource="a" source="n1" dest="n2"/>
    <rsc_action action="start" resource="b" node="n1"/>
    <rsc_action action="recover" resource="g2" node="n2"/>
    <rsc_action action="restart" resource="g1" node="n2"/>
    <rsc_action action="stop" resource="c1:1" node="n3" reason="node availability"/>
    <rsc_action action="start" resource="c1:2" node="n2"/>
    <rsc_action action="start" resource="x" node="n2" blocked="true" reason="no quorum"/>
  </actions>
  <status code="0" message="OK"/>
</pacemaker-result>
"""


def test_decisions_are_applied_to_the_current_placement() -> None:
    result = placement_from_result(CURRENT, primitives=["a", "b", "g1", "g2", "c1", "x", "y"])
    assert result.placement == {"a": ["n2"], "b": ["n1"], "g1": ["n2"], "g2": ["n2"], "c1": ["n1", "n2"],
                                "x": [], "y": []}
    assert result.fenced == ["n3"]
    assert Action("start", "x", node="n2", blocked=True, reason="no quorum") in result.actions


def test_a_revised_status_is_read_as_it_is() -> None:
    revised = CURRENT.replace(b"<status code", b"""<revised_cluster_status><nodes/><resources>
      <resource id="a" role="Started" active="true"><node name="n3" id="3"/></resource>
      <clone id="c"><resource id="c1" role="Started" active="true"><node name="n2" id="2"/></resource>
      <resource id="c1" role="Started" active="true"><node name="n2" id="2"/></resource></clone>
      </resources></revised_cluster_status><status code""")
    assert placement_from_result(revised, ["b"]).placement == {"a": ["n3"], "b": [], "c1": ["n2"]}


def test_a_recovery_elsewhere_moves_and_a_stop_must_match_the_current_node() -> None:
    assert apply_actions({"r": ["n1"]}, [Action("recover", "r", source="n1", dest="n2")]) == {"r": ["n2"]}
    with pytest.raises(CrmSimulateError, match="not active on n9"):
        apply_actions({"r": ["n1"]}, [Action("stop", "r", node="n9")])


def test_failures_are_reported() -> None:
    with pytest.raises(CrmSimulateError, match="no XML"):
        placement_from_result(b"Segmentation fault")
    failed = b'<pacemaker-result><status code="103" message="Invalid CIB"/></pacemaker-result>'
    with pytest.raises(CrmSimulateError, match="Invalid CIB"):
        placement_from_result(failed)
