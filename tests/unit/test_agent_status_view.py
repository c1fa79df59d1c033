"""`hakeeper status` as an operator reads it: a lost node with and without fencing, a node leaving."""

from __future__ import annotations

import pytest

from hakeeper.agent import state as st
from hakeeper.agent.operator import render_status, status_view
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


CLONES = """\
cluster: {stonith-enabled: false}
nodes: [{name: n1}, {name: n2}, {name: n3}, {name: n4}]
resources:
  primitives:
    - {id: ping, agent: "ocf:pacemaker:ping"}
    - {id: db, agent: "ocf:pacemaker:Stateful"}
    - {id: web, agent: process, params: {command: "sleep 100"}}
    - {id: vip, agent: vip, params: {ip: 10.0.0.1}}
    - {id: tok, agent: "ocf:heartbeat:Dummy"}
  groups: [{id: front, members: [vip, web]}]
  clones:
    - {id: ping-clone, child: ping}
    - {id: db-clone, child: db, meta: {promotable: true}}
    - {id: tok-set, child: tok, meta: {globally-unique: true, clone-max: 3}}
"""


def _view(reports: dict[tuple[str, str], dict[str, object]]) -> dict[str, object]:
    spec = parse_spec(CLONES, "c.yaml")
    keys = st.Keys("t")
    values = {keys.config: st.dumps({"version": 3, "spec": spec.model_dump(mode="json", by_alias=True)})}
    values |= {keys.member(n): st.dumps({"probed": True}) for n in ("n1", "n2", "n3", "n4")}
    values |= {keys.status_of(n, r): st.dumps(doc) for (n, r), doc in reports.items()}
    return status_view(values, keys, now=100.0)


def test_a_healthy_clone_is_a_clone_set_not_multiply_active() -> None:
    started = {"role": "Started"}
    view = _view({
        **{(n, "ping"): started for n in ("n1", "n2", "n3")},
        ("n1", "db"): {"role": "Promoted"},
        ("n2", "db"): {"role": "Unpromoted"},
        ("n3", "db"): {"role": "Unpromoted"},
        ("n2", "vip"): started,
        ("n2", "web"): started,
    })
    text = render_status(view)
    assert "MULTIPLE ACTIVE" not in text, text
    lines = text.splitlines()
    at = lines.index("  * Clone Set: ping-clone [ping]:")
    assert lines[at + 1 : at + 3] == ["    * Started: [ n1 n2 n3 ]", "    * Stopped: [ n4 ]"]
    at = lines.index("  * Clone Set: db-clone [db] (promotable):")
    assert lines[at + 1 : at + 4] == ["    * Promoted: [ n1 ]", "    * Unpromoted: [ n2 n3 ]", "    * Stopped: [ n4 ]"]
    at = lines.index("  * Resource Group: front:")
    assert lines[at + 1 : at + 3] == ["    * vip\t(vip):\t Started n2", "    * web\t(process):\t Started n2"]


def test_multiply_active_only_when_it_is() -> None:
    view = _view({
        ("n1", "web"): {"role": "Started"},
        ("n3", "web"): {"role": "Started"},
        ("n1", "tok:0"): {"role": "Started"},
        ("n1", "tok:1"): {"role": "Started"},  # two unique instances on n1: clone-node-max is 1
        ("n2", "tok:2"): {"role": "Started"},
        ("n1", "gone"): {"role": "Started"},  # no longer configured
    })
    text = render_status(view)
    assert "    * web\t(process):\t MULTIPLE ACTIVE n1, n3" in text, text
    assert "    * MULTIPLE ACTIVE: tok on n1 (2 instances, clone-node-max 1)" in text, text
    assert "    * tok:2\t(ocf:heartbeat:Dummy):\t Started n2" in text, text
    assert "  * gone\t(orphan):\t ORPHANED Started n1" in text, text
    assert text.count("MULTIPLE ACTIVE") == 2


def test_a_cloned_group_partly_up_on_a_node_lists_its_members_there() -> None:
    spec_text = CLONES.replace("    - {id: ping-clone, child: ping}", "    - {id: front-clone, child: front}")
    spec = parse_spec(spec_text, "c.yaml")
    keys = st.Keys("t")
    values = {keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)})}
    values |= {keys.member(n): st.dumps({"probed": True}) for n in ("n1", "n2", "n3", "n4")}
    for n, r in [("n1", "vip"), ("n1", "web"), ("n2", "vip")]:
        values[keys.status_of(n, r)] = st.dumps({"role": "Started"})
    text = render_status(status_view(values, keys, now=1.0))
    assert "    * Started: [ n1 ]" in text
    assert "    * vip\t(vip):\t Started n2 (group incomplete)" in text
    assert "    * Stopped: [ n3 n4 ]" in text


def test_a_fenced_node_is_offline_while_its_old_member_key_lingers() -> None:
    spec = parse_spec(SPEC.format(stonith="true"), "c.yaml")
    keys = st.Keys("t")
    values = {
        keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        # n1's member key is bound to a lease that outlives the fence by up to a TTL.
        keys.member("n1"): st.dumps({"probed": True, "started": 50.0}),
        keys.member("n2"): st.dumps({"probed": True, "started": 40.0}),
        f"{keys.fence}n1": st.dumps({"at": 90.0, "ok": True, "device": "fence"}),
    }
    assert status_view(values, keys, now=100.0)["nodes"]["n1"] == "OFFLINE (fenced)"
    # Once it comes back it is a new incarnation, started after the fence: online again.
    values[keys.member("n1")] = st.dumps({"probed": True, "started": 95.0})
    assert status_view(values, keys, now=100.0)["nodes"]["n1"] == "online"


def test_a_node_dropped_from_the_configuration_stays_in_view_while_it_runs_something() -> None:
    spec = parse_spec(SPEC.format(stonith="false"), "c.yaml")
    keys = st.Keys("t")
    values = {
        keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        keys.member("n1"): st.dumps({"probed": True}),
        keys.member("n3"): st.dumps({"probed": True}),
        keys.status_of("n4", "old"): st.dumps({"role": "Started"}),
    }
    nodes = status_view(values, keys, now=100.0)["nodes"]
    assert nodes["n3"] == "online, not in the configuration (nothing is placed here)"
    # n4 reports a resource but has no member key: lost, and without fencing what it ran is stopped.
    assert nodes["n4"].startswith("OFFLINE (lost")
    assert "n3" in render_status(status_view(values, keys, now=100.0))


def test_status_shows_what_resource_agents_wrote_with_crm_attribute() -> None:
    spec = parse_spec(SPEC.format(stonith="false"), "c.yaml")
    keys = st.Keys("t")
    values = {
        keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        keys.member("n1"): st.dumps({"probed": True}),
        keys.attr_of("n1", "rmq-cluster"): st.dumps("rabbit@n1 rabbit@n2"),
        keys.attr_of("n1", "master-galera"): st.dumps("100"),
        keys.attr_of("n2", "galera-last-committed"): st.dumps("42"),
    }
    view = status_view(values, keys, now=100.0)
    assert view["attributes"] == {
        "n1": {"master-galera": "100", "rmq-cluster": "rabbit@n1 rabbit@n2"},
        "n2": {"galera-last-committed": "42"},
    }
    text = render_status(view)
    assert (
        "Node attributes:\n  * n1: master-galera=100, rmq-cluster=rabbit@n1 rabbit@n2\n"
        "  * n2: galera-last-committed=42"
    ) in text
    assert view["instance_ha"] is None and "Recoveries:" not in text


def test_status_shows_instance_ha_when_an_evacuator_is_configured() -> None:
    from hakeeper.instanceha.model import InstanceRecord, InstanceState, Phase, Recovery

    spec = parse_spec(
        "cluster: {stonith-enabled: true}\n"
        "nodes: [{name: ctl}, {name: c1}]\n"
        "resources:\n  primitives:\n"
        "    - {id: evacuator, agent: 'instanceha:evacuator', params: {computes: c1, clouds_yaml: /x, cloud: x}}\n",
        "c.yaml",
    )
    keys = st.Keys("t")
    running = Recovery(node="c1", host="c1", failure=2, fenced_at=100.0, phase=Phase.EVACUATING,
                       instances=(InstanceRecord("a", "vm-a", state=InstanceState.EVACUATED, target="c9"),))
    values = {
        keys.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        keys.member("ctl"): st.dumps({"probed": True}),
        keys.prefix + "instanceha/recovery/c1/2": running.dumps(),
    }
    view = status_view(values, keys, now=200.0)
    assert [row["node"] for row in view["instance_ha"]["computes"]] == ["c1"]
    text = render_status(view)
    # Plain status does not ask Nova (it must answer when Nova does not).
    assert "  * c1: OFFLINE; Nova not asked; recovering: evacuating (failure 2): 1 of 1 evacuated" in text
    assert "Recoveries:\n  * c1 failure 2: evacuating" in text
