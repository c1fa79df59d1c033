"""The scheduler's semantics, one small cluster at a time (Pacemaker 2.1.5 behaviour)."""

from __future__ import annotations

from placement_helpers import running, spec

from hakeeper.placement import schedule
from hakeeper.spec.model import ClusterState


def placed(plan_spec, state=None):  # type: ignore[no-untyped-def]
    return schedule(plan_spec, state).placement


def test_equal_scores_go_to_the_lowest_name_then_to_the_emptier_node() -> None:
    s = spec(["b", "a"], ["r1", "r2", "r3"])
    # r1: tie → lowest name (a); r2: a has one resource, b none → b; r3: tie again → a.
    assert placed(s) == {"r1": ["a"], "r2": ["b"], "r3": ["a"]}


def test_location_preference_and_ban() -> None:
    s = spec(3, ["r"], location=[{"id": "l1", "resource": "r", "node": "node2", "score": 50},
                                 {"id": "l2", "resource": "r", "node": "node2",
                                  "score": "-INFINITY"},
                                 {"id": "l3", "resource": "r", "node": "node3", "score": 10}])
    assert placed(s) == {"r": ["node3"]}


def test_opt_in_cluster_needs_a_positive_location() -> None:
    s = spec(2, ["r", "q"], cluster={"symmetric-cluster": False},
             location=[{"id": "l1", "resource": "r", "node": "node2", "score": 5}])
    assert placed(s) == {"r": ["node2"]}


def test_stickiness_keeps_a_resource_against_a_weaker_preference() -> None:
    loc = [{"id": "l", "resource": "r", "node": "node2", "score": 50}]
    state = running(("r", "node1"))
    assert placed(spec(2, ["r"], location=loc, cluster={"resource-stickiness": 100}), state) \
        == {"r": ["node1"]}
    assert placed(spec(2, ["r"], location=loc, cluster={"resource-stickiness": 10}), state) \
        == {"r": ["node2"]}
    # The resource's own meta wins over the cluster default.
    s = spec(2, ["r"], location=loc, cluster={"resource-stickiness": 10},
             meta={"r": {"resource-stickiness": 1000}})
    assert placed(s, state) == {"r": ["node1"]}


def test_an_equal_node_keeps_the_resource_where_it_runs() -> None:
    assert placed(spec(2, ["r"]), running(("r", "node2"))) == {"r": ["node2"]}


def test_group_members_share_a_node_and_are_ordered() -> None:
    s = spec(2, ["a", "b", "c"], groups=[{"id": "g", "members": ["a", "b", "c"]}],
             location=[{"id": "l", "resource": "g", "node": "node2", "score": 10}])
    plan = schedule(s)
    assert plan.placement == {"a": ["node2"], "b": ["node2"], "c": ["node2"]}
    sa, sb, sc = (plan.find("start", r) for r in "abc")
    assert sa and sb and sc and plan.before(sa, sb) and plan.before(sb, sc)


def test_a_group_member_that_cannot_run_stops_the_members_after_it() -> None:
    s = spec(1, ["a", "b", "c"], groups=[{"id": "g", "members": ["a", "b", "c"]}],
             location=[{"id": "l", "resource": "b", "node": "node1", "score": "-INFINITY"}])
    state = running(("a", "node1"), ("b", "node1"), ("c", "node1"))
    plan = schedule(s, state)
    assert plan.placement == {"a": ["node1"]}
    stop_c, stop_b = plan.find("stop", "c"), plan.find("stop", "b")
    assert stop_c and stop_b and plan.before(stop_c, stop_b)


def test_group_stickiness_is_the_sum_of_its_running_members() -> None:
    # Each member has stickiness 30; together (90) they outweigh a preference of 60.
    s = spec(2, ["a", "b", "c"], groups=[{"id": "g", "members": ["a", "b", "c"]}],
             cluster={"resource-stickiness": 30},
             location=[{"id": "l", "resource": "a", "node": "node2", "score": 60}])
    state = running(("a", "node1"), ("b", "node1"), ("c", "node1"))
    assert {n for v in placed(s, state).values() for n in v} == {"node1"}


def test_mandatory_colocation_and_anti_colocation() -> None:
    s = spec(3, ["base", "dep", "anti"],
             location=[{"id": "l", "resource": "base", "node": "node3", "score": 100}],
             colocation=[{"id": "c1", "resource": "dep", "with": "base", "score": "INFINITY"},
                         {"id": "c2", "resource": "anti", "with": "base",
                          "score": "-INFINITY"}])
    p = placed(s)
    assert p["dep"] == ["node3"] and p["base"] == ["node3"] and p["anti"] != ["node3"]


def test_dependent_cannot_run_when_its_colocation_target_cannot() -> None:
    s = spec(2, ["base", "dep"], meta={"base": {"target-role": "Stopped"}},
             colocation=[{"id": "c1", "resource": "dep", "with": "base", "score": "INFINITY"}])
    assert placed(s) == {}


def test_target_role_stopped_and_unmanaged() -> None:
    s = spec(2, ["off", "frozen"], meta={"off": {"target-role": "Stopped"},
                                         "frozen": {"is-managed": False}},
             location=[{"id": "l", "resource": "frozen", "node": "node1",
                        "score": "-INFINITY"}])
    plan = schedule(s, running(("off", "node1"), ("frozen", "node1")))
    assert "off" not in plan.placement
    assert plan.placement["frozen"] == ["node1"]  # left where it is
    assert plan.actions_of("frozen") == []
    assert any("Stop" in line and "off" in line for line in plan.summary)


def test_standby_and_offline_nodes_run_nothing() -> None:
    s = spec(3, ["r1", "r2", "r3"])
    state = ClusterState.model_validate(
        {"nodes": {"node1": {"standby": True}, "node2": {"online": False}}})
    assert {n for v in placed(s, state).values() for n in v} == {"node3"}


def test_fail_count_reaching_migration_threshold_bans_the_node_until_it_expires() -> None:
    s = spec(2, ["r"], meta={"r": {"migration-threshold": 2, "failure-timeout": "60s"}},
             location=[{"id": "l", "resource": "r", "node": "node1", "score": 10}])
    failed = {"resources": [{"resource": "r", "node": "node1", "fail-count": 2,
                             "last-failure": 1000.0}]}
    assert placed(s, ClusterState.model_validate({**failed, "now": 1030.0})) == {"r": ["node2"]}
    assert placed(s, ClusterState.model_validate({**failed, "now": 1100.0})) == {"r": ["node1"]}
    once = {"resources": [{"resource": "r", "node": "node1", "fail-count": 1}]}
    assert placed(s, ClusterState.model_validate(once)) == {"r": ["node1"]}


def test_failed_resource_is_recovered_in_place() -> None:
    s = spec(2, ["r"])
    state = ClusterState.model_validate(
        {"resources": [{"resource": "r", "node": "node1", "failed": True, "fail-count": 1}]})
    plan = schedule(s, state)
    assert plan.placement == {"r": ["node1"]}
    stop, start = plan.find("stop", "r", "node1"), plan.find("start", "r", "node1")
    assert stop and start and plan.before(stop, start)
    assert [line.split()[1] for line in plan.summary] == ["Recover"]


def test_lost_node_is_fenced_before_its_resources_start_elsewhere() -> None:
    s = spec(2, ["r"], cluster={"stonith-enabled": True})
    state = ClusterState.model_validate({"nodes": {"node1": {"online": False, "unclean": True}},
                                         "resources": [{"resource": "r", "node": "node1"}]})
    plan = schedule(s, state)
    fence, start = plan.find("fence", None, "node1"), plan.find("start", "r", "node2")
    assert fence and start and plan.before(fence, start)
    assert plan.summary[0] == "  * Fence (reboot) node1 'peer is no longer part of the cluster'"
    assert plan.summary[1].split() == ["*", "Move", "r", "(", "node1", "->", "node2", ")"]


def test_without_fencing_a_lost_nodes_resources_count_as_stopped() -> None:
    s = spec(2, ["r"])
    state = ClusterState.model_validate({"nodes": {"node1": {"online": False, "unclean": True}},
                                         "resources": [{"resource": "r", "node": "node1"}]})
    plan = schedule(s, state)
    assert plan.find("fence", None) is None
    assert plan.summary == ["  * Start      r       ( node2 )"]


def test_no_quorum_policies() -> None:
    s = spec(2, ["a", "b"], cluster={"no-quorum-policy": "stop"})
    state = running(("a", "node1"), have_quorum=False)
    plan = schedule(s, state)
    assert plan.placement == {}
    assert plan.summary[0].split()[1:3] == ["Stop", "a"] and "no quorum" in plan.summary[0]
    assert "(blocked)" in plan.summary[1]
    frozen = spec(2, ["a", "b"], cluster={"no-quorum-policy": "freeze"})
    plan = schedule(frozen, state)
    assert plan.placement == {"a": ["node1"]}
    assert "quorum freeze (blocked)" in plan.summary[0]
    ignored = spec(2, ["a", "b"], cluster={"no-quorum-policy": "ignore"})
    assert schedule(ignored, state).placement == {"a": ["node1"], "b": ["node2"]}


def test_order_constraint_restarts_the_dependent_when_first_restarts() -> None:
    s = spec(2, ["a", "b"], order=[{"id": "o", "first": "a", "then": "b"}],
             colocation=[{"id": "c", "resource": "b", "with": "a", "score": "INFINITY"}])
    state = ClusterState.model_validate({"resources": [
        {"resource": "a", "node": "node1", "failed": True, "fail-count": 1},
        {"resource": "b", "node": "node1"}]})
    plan = schedule(s, state)
    assert any(line.split()[1:3] == ["Restart", "b"] and "due to required a start" in line
               for line in plan.summary)
    stop_b, stop_a = plan.find("stop", "b"), plan.find("stop", "a")
    start_a, start_b = plan.find("start", "a"), plan.find("start", "b")
    assert stop_b and stop_a and start_a and start_b
    assert plan.before(stop_b, stop_a) and plan.before(start_a, start_b)


def test_optional_order_does_not_restart() -> None:
    s = spec(2, ["a", "b"], order=[{"id": "o", "first": "a", "then": "b", "kind": "Optional"}])
    state = ClusterState.model_validate({"resources": [
        {"resource": "a", "node": "node1", "failed": True, "fail-count": 1},
        {"resource": "b", "node": "node2"}]})
    assert [line.split()[1] for line in schedule(s, state).summary] == ["Recover"]


def test_mandatory_order_blocks_the_then_side_when_first_cannot_start() -> None:
    s = spec(2, ["a", "b"], meta={"a": {"target-role": "Stopped"}},
             order=[{"id": "o", "first": "a", "then": "b"}])
    plan = schedule(s)
    assert plan.placement == {}
    assert "due to unrunnable a start (blocked)" in plan.summary[0]


def test_clone_instances_one_per_node_by_default() -> None:
    s = spec(3, ["d"], clones=[{"id": "cl", "child": "d"}])
    p = placed(s)
    assert sorted(p) == ["d:0", "d:1", "d:2"]
    assert sorted(n for v in p.values() for n in v) == ["node1", "node2", "node3"]


def test_clone_max_and_clone_node_max() -> None:
    s = spec(2, ["d"], clones=[{"id": "cl", "child": "d",
                                "meta": {"clone-max": 5, "clone-node-max": 2}}])
    p = placed(s)
    assert len(p) == 4  # two nodes, at most two each
    per_node: dict[str, int] = {}
    for nodes in p.values():
        per_node[nodes[0]] = per_node.get(nodes[0], 0) + 1
    assert per_node == {"node1": 2, "node2": 2}


def test_running_clone_instances_stay_put() -> None:
    s = spec(3, ["d"], clones=[{"id": "cl", "child": "d", "meta": {"clone-max": 2}}])
    p = placed(s, running(("d", "node3"), ("d", "node2")))
    assert sorted(n for v in p.values() for n in v) == ["node2", "node3"]
    assert schedule(s, running(("d", "node3"), ("d", "node2"))).summary == []


def test_promotable_clone_promotes_the_best_promotion_score() -> None:
    s = spec(3, ["db"], clones=[{"id": "ms", "child": "db",
                                 "meta": {"promotable": True, "promoted-max": 1}}],
             location=[{"id": "lp", "resource": "ms", "role": "Promoted",
                        "rules": [{"score": 100, "expressions": [
                            {"attribute": "#uname", "operation": "eq", "value": "node2"}]}]}])
    plan = schedule(s)
    promoted = [r for r, role in plan.roles.items() if role == "Promoted"]
    assert len(promoted) == 1 and plan.placement[promoted[0]] == ["node2"]
    assert any("Promote" in line for line in plan.summary)


def test_rule_with_node_attribute_and_score_attribute() -> None:
    s = spec(["a", "b"], ["r"], location=[{"id": "l", "resource": "r", "rules": [
        {"score-attribute": "weight", "expressions": [
            {"attribute": "weight", "operation": "defined"}]}]}])
    s.nodes[0].attributes["weight"] = "5"
    s.nodes[1].attributes["weight"] = "7"
    assert placed(s) == {"r": ["b"]}


def test_summary_columns_follow_crm_simulate() -> None:
    s = spec(2, ["rsc1", "a_much_longer_name"])
    assert schedule(s).summary == [
        "  * Start      rsc1    ( node1 )",
        "  * Start      a_much_longer_name     ( node2 )",
    ]


def test_a_clone_instance_never_stays_where_the_clone_scores_below_zero() -> None:
    # Seed 274's shape: stickiness INFINITY would keep d:0 on node2, but the clone itself
    # scores -50 there, so the instance moves to node3 and the second one has nowhere to go.
    s = spec(["node2", "node3"], ["d"], cluster={"resource-stickiness": "INFINITY"},
             clones=[{"id": "cl", "child": "d", "meta": {"clone-max": 2}}],
             location=[{"id": "l1", "resource": "cl", "node": "node2", "score": -50},
                       {"id": "l2", "resource": "cl", "node": "node3", "score": 50}])
    p = placed(s, running(("d", "node2")))
    assert sorted(n for v in p.values() for n in v) == ["node3"]


def test_migration_threshold_in_an_anonymous_cloned_group_bans_the_whole_clone() -> None:
    s = spec(2, ["a", "b"], groups=[{"id": "g", "members": ["a", "b"]}],
             clones=[{"id": "cl", "child": "g"}], meta={"b": {"migration-threshold": 1}})
    state = ClusterState.model_validate({"resources": [
        {"resource": "a", "node": "node1"}, {"resource": "b", "node": "node1", "fail_count": 1},
        {"resource": "a", "node": "node2"}, {"resource": "b", "node": "node2"}]})
    p = placed(s, state)
    # Not only b: every member of every instance is off node1.
    assert {n for v in p.values() for n in v} == {"node2"}


def test_target_role_stopped_still_lends_its_scores_to_what_is_colocated_with_it() -> None:
    # b (stopped by target-role) prefers node2 and wants to run with a: when a is placed, it
    # weighs b's scores (Pacemaker's merge of dependents), though b itself never runs.
    s = spec(2, ["a", "b"], meta={"b": {"target-role": "Stopped"}},
             location=[{"id": "l", "resource": "b", "node": "node2", "score": 100}],
             colocation=[{"id": "c", "resource": "b", "with": "a", "score": 500}])
    assert placed(s) == {"a": ["node2"]}


def test_without_quorum_a_member_node_can_still_be_fenced() -> None:
    s = spec(3, ["r"], cluster={"stonith-enabled": True, "no-quorum-policy": "stop"})
    state = ClusterState.model_validate({
        "have_quorum": False,
        "nodes": {"node1": {"online": True, "unclean": True, "fence_reason": "test"},
                  "node2": {"online": False, "unclean": True, "fence_reason": "test"}}})
    fenced = [a.node for a in schedule(s, state).actions if a.task == "fence"]
    assert fenced == ["node1"]  # node2 is out of our membership: no fencing without quorum
