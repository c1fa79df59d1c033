"""`hakeeper status` as an operator reads it: a lost node with and without fencing, a node leaving."""

from __future__ import annotations

import pytest

from hakeeper.agent import state as st
from hakeeper.agent.operator import status_view
from hakeeper.placement import schedule
from hakeeper.spec import parse_spec

SPEC = """\
cluster: {{stonith-enabled: {stonith}}}
nodes: [{{name: n1}}, {{name: n2}}]
resources:
  primitives:
    - {{id: d1, agent: "ocf:heartbeat:Dummy"}}
"""


@pytest.mark.parametrize("stonith", [True, False])
def test_lost_node_is_described_by_whether_it_will_be_fenced(stonith: bool) -> None:
    spec = parse_spec(SPEC.format(stonith=str(stonith).lower()), "c.yaml")
    keys = st.Keys("t")
    values = {
        keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        keys.member("n2"): st.dumps({"probed": True}),
        # n1 is gone (no member key) but its last report says d1 ran there; n2 has started it since.
        keys.status_of("n1", "d1"): st.dumps({"role": "Started"}),
        keys.status_of("n2", "d1"): st.dumps({"role": "Started"}),
    }
    view = status_view(values, keys, now=100.0)
    if stonith:
        assert view["nodes"]["n1"] == "UNCLEAN (lost, awaiting fencing)"
        assert view["resources"]["d1"]["running_on"] == ["n1", "n2"]
    else:
        assert view["nodes"]["n1"].startswith("OFFLINE (lost")
        assert view["resources"]["d1"]["running_on"] == ["n2"]
    assert view["nodes"]["n2"] == "online"


def test_a_node_shutting_down_says_so_and_the_scheduler_moves_its_resources() -> None:
    spec = parse_spec(SPEC.format(stonith="false"), "c.yaml")
    keys = st.Keys("t")
    values = {
        keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        keys.member("n1"): st.dumps({"probed": True, "shutdown": True}),
        keys.member("n2"): st.dumps({"probed": True}),
        keys.status_of("n1", "d1"): st.dumps({"role": "Started"}),
    }
    view = status_view(values, keys, now=100.0)
    assert view["nodes"]["n1"].startswith("shutting down")
    state = st.cluster_state(spec, values, keys, now=100.0)
    assert state.nodes["n1"].shutdown and not state.nodes["n2"].shutdown
    plan = schedule(spec, state)
    assert {(a.task, a.resource, a.node) for a in plan.actions if not a.pseudo} >= {
        ("stop", "d1", "n1"),
        ("start", "d1", "n2"),
    }
