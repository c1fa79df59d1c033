"""Ticket constraints (Pacemaker's rsc_ticket): granted, revoked, standby, each loss-policy."""

from __future__ import annotations

from typing import Any

import pytest

from hakeeper.placement import schedule
from hakeeper.placement.plan import Plan
from hakeeper.spec.loader import dump_spec, parse_spec
from hakeeper.spec.model import ClusterSpec


def _spec(ticket: dict[str, Any], *, tickets: dict[str, Any] | None = None,
          running: list[tuple[str, str, str]] | None = None, stonith: bool = False,
          promotable: bool = False, group: bool = False) -> ClusterSpec:
    """Two nodes, primitive `r` (or clone `ms` of `r`, or group `g` of `a`, `b`), one constraint."""
    prims = ["a", "b"] if group else ["r"]
    data: dict[str, Any] = {
        "cluster": {"stonith-enabled": stonith},
        "nodes": [{"name": "node1"}, {"name": "node2"}],
        "resources": {"primitives": [{"id": p, "agent": "ocf:pacemaker:Stateful"} for p in prims],
                      "groups": [{"id": "g", "members": ["a", "b"]}] if group else [],
                      "clones": [{"id": "ms", "child": "r", "meta": {"promotable": True}}]
                      if promotable else []},
        "constraints": {"ticket": [{"id": "t", "ticket": "T", **ticket}]},
        "state": {"tickets": tickets or {},
                  "resources": [{"resource": r, "node": n, "role": role}
                                for r, n, role in (running or [])],
                  # node1's promotion score: an instance there is the one to promote.
                  "nodes": {"node1": {"attributes": {"master-r": "10"}}, "node2": {}}},
    }
    return ClusterSpec.model_validate(data)


def _keys(plan: Plan) -> set[str]:
    return {a.key for a in plan.actions if not a.pseudo}


GRANTED = {"T": {"granted": True}}
REVOKED = {"T": {"granted": False}}
STANDBY = {"T": {"granted": True, "standby": True}}


def test_a_granted_ticket_changes_nothing() -> None:
    plan = schedule(_spec({"resource": "r"}, tickets=GRANTED))
    assert plan.placement == {"r": ["node1"]}
    assert _keys(plan) == {"start r on node1"}


@pytest.mark.parametrize("tickets", [None, REVOKED, STANDBY])
def test_without_the_ticket_nothing_starts(tickets: dict[str, Any] | None) -> None:
    """A ticket with no state is not granted; standby keeps resources away too."""
    plan = schedule(_spec({"resource": "r"}, tickets=tickets), explain=True)
    assert plan.placement == {} and _keys(plan) == set()
    words = [c.why for c in plan.contributions["r"]]
    assert any("ticket T is" in w for w in words), words


def test_loss_policy_stop_stops_what_runs() -> None:
    plan = schedule(_spec({"resource": "r", "loss-policy": "stop"}, tickets=REVOKED,
                          running=[("r", "node1", "Started")]), explain=True)
    assert _keys(plan) == {"stop r on node1"} and plan.placement == {}
    assert any("ticket T is not granted" in c.why and "loss-policy stop" in c.why
               for c in plan.contributions["r"])


def test_loss_policy_fence_fences_the_nodes_it_runs_on() -> None:
    plan = schedule(_spec({"resource": "r", "loss-policy": "fence"}, tickets=REVOKED, stonith=True,
                          running=[("r", "node2", "Started")]))
    fence = plan.find("fence", None, "node2")
    assert fence is not None and fence.reason == "deadman ticket was lost"
    assert plan.placement == {}
    assert "start r on node1" not in _keys(plan)


def test_loss_policy_fence_without_stonith_is_stop() -> None:
    plan = schedule(_spec({"resource": "r", "loss-policy": "fence"}, tickets=REVOKED,
                          running=[("r", "node2", "Started")]))
    assert _keys(plan) == {"stop r on node2"}


def test_a_standby_ticket_stops_without_fencing() -> None:
    plan = schedule(_spec({"resource": "r", "loss-policy": "fence"}, tickets=STANDBY, stonith=True,
                          running=[("r", "node2", "Started")]))
    assert _keys(plan) == {"stop r on node2"}


def test_loss_policy_freeze_leaves_it_where_it_is() -> None:
    plan = schedule(_spec({"resource": "r", "loss-policy": "freeze"}, tickets=REVOKED,
                          running=[("r", "node2", "Started")]))
    assert _keys(plan) == set() and plan.placement == {"r": ["node2"]}
    # Standby is not a loss: the resource stops.
    plan = schedule(_spec({"resource": "r", "loss-policy": "freeze"}, tickets=STANDBY,
                          running=[("r", "node2", "Started")]))
    assert _keys(plan) == {"stop r on node2"}


def test_a_ticket_on_a_group_acts_on_every_member() -> None:
    plan = schedule(_spec({"resource": "g"}, tickets=REVOKED, group=True,
                          running=[("a", "node1", "Started"), ("b", "node1", "Started")]))
    assert _keys(plan) == {"stop a on node1", "stop b on node1"}


PROMOTED_NOW = [("r:0", "node1", "Promoted"), ("r:1", "node2", "Unpromoted")]


def test_promotable_clone_promotes_only_with_its_ticket() -> None:
    granted = schedule(_spec({"resource": "ms", "role": "Promoted"}, tickets=GRANTED, promotable=True))
    assert sorted(granted.roles.values()) == ["Promoted", "Unpromoted"]
    revoked = schedule(_spec({"resource": "ms", "role": "Promoted"}, tickets=REVOKED, promotable=True))
    assert sorted(revoked.roles.values()) == ["Unpromoted", "Unpromoted"]


@pytest.mark.parametrize("tickets", [REVOKED, STANDBY])
def test_role_promoted_defaults_to_demote(tickets: dict[str, Any]) -> None:
    plan = schedule(_spec({"resource": "ms", "role": "Promoted"}, tickets=tickets, promotable=True,
                          running=PROMOTED_NOW))
    assert _keys(plan) == {"demote r:0 on node1"}
    assert plan.placement == {"r:0": ["node1"], "r:1": ["node2"]}


def test_role_promoted_with_loss_policy_stop_stops_every_instance() -> None:
    plan = schedule(_spec({"resource": "ms", "role": "Promoted", "loss-policy": "stop"},
                          tickets=REVOKED, promotable=True, running=PROMOTED_NOW))
    assert _keys(plan) >= {"stop r:0 on node1", "stop r:1 on node2"}
    assert plan.placement == {}


def test_fence_applies_only_to_instances_in_the_filtered_role() -> None:
    plan = schedule(_spec({"resource": "ms", "role": "Promoted", "loss-policy": "fence"},
                          tickets=REVOKED, promotable=True, running=PROMOTED_NOW, stonith=True))
    assert plan.find("fence", None, "node1") is not None
    assert plan.find("fence", None, "node2") is None
    assert plan.roles == {"r:1": "Unpromoted"}


def test_freeze_applies_only_to_instances_in_the_filtered_role() -> None:
    plan = schedule(_spec({"resource": "ms", "role": "Unpromoted", "loss-policy": "freeze"},
                          tickets=REVOKED, promotable=True, running=PROMOTED_NOW))
    # The unpromoted instance is frozen; the promoted one is not filtered in and, as an active
    # instance under freeze, is left to its other constraints (it stays promoted).
    assert _keys(plan) == set()
    assert plan.roles == {"r:0": "Promoted", "r:1": "Unpromoted"}


def test_yaml_spec_round_trip_and_unknown_resource_error() -> None:
    spec = _spec({"sets": [{"resources": ["r"], "role": "Promoted"}], "loss-policy": "demote"},
                 tickets=STANDBY, promotable=True)
    assert parse_spec(dump_spec(spec)) == spec
    text = dump_spec(_spec({"resource": "r"})).replace("resource: r", "resource: ghost")
    from hakeeper.errors import InputError
    with pytest.raises(InputError) as err:
        parse_spec(text, "spec.yaml")
    problem = err.value.problems[0]
    assert "unknown resource 'ghost'" in problem.message and problem.line is not None
    assert problem.field == "constraints.ticket.0.resource"
