"""`hakeeper status` as an operator reads it: a lost node with and without fencing."""

from __future__ import annotations

import pytest

from hakeeper.agent import state as st
from hakeeper.agent.operator import status_view
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
