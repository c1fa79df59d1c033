"""The plan as typed data: the same JSON as before, and a corrupt document rejected by name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stt

from hakeeper.agent import plan as pl
from hakeeper.agent import state as st
from hakeeper.placement import Action, Plan, schedule
from hakeeper.spec import ClusterSpec, ClusterState, NodeState

SPEC = ClusterSpec.model_validate(
    {
        "nodes": [{"name": "a"}, {"name": "b"}],
        "resources": {"primitives": [{"id": "web", "agent": "ocf:heartbeat:Dummy"}]},
    }
)

names = stt.text("abcxyz:-0123", min_size=1, max_size=6)
actions = stt.builds(
    pl.PlanAction,
    id=stt.integers(0, 1000),
    task=stt.sampled_from(pl.TASKS),
    node=names,
    resource=stt.none() | names,
    reason=stt.none() | stt.text(max_size=20),
    pseudo=stt.booleans(),
)
# Generation, not the code under test, is what a loaded machine slows down.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
docs = stt.builds(
    pl.PlanDoc,
    epoch=stt.integers(0, 10**9),
    leader=names,
    created=stt.floats(0, 2e9, allow_nan=False),
    actions=stt.lists(actions, max_size=8, unique_by=lambda a: a.id).map(tuple),
    edges=stt.lists(stt.tuples(stt.integers(0, 1000), stt.integers(0, 1000)), max_size=8).map(tuple),
    placement=stt.dictionaries(names, stt.lists(names, max_size=3), max_size=3),
    current=stt.dictionaries(names, stt.lists(names, max_size=3), max_size=3),
    roles=stt.dictionaries(names, stt.sampled_from(pl.ROLES), max_size=3),
    summary=stt.lists(stt.text(max_size=20), max_size=3).map(tuple),
)


@RELAXED
@given(docs)
def test_a_plan_survives_the_store(doc: pl.PlanDoc) -> None:
    assert pl.parse(pl.encode(doc)) == doc


@RELAXED
@given(docs)
def test_the_encoding_is_the_one_every_store_document_uses(doc: pl.PlanDoc) -> None:
    assert pl.encode(doc) == st.dumps(doc.to_json())


def test_the_published_document_has_the_shape_it_always_had() -> None:
    state = ClusterState(nodes={"a": NodeState(online=True), "b": NodeState(online=True)}, resources=[])
    plan = schedule(SPEC, state)
    doc = pl.PlanDoc.of(plan, 4, "a", 12.5)
    before = st.plan_doc(plan, 4, "a", 12.5)  # what the leader wrote before the typed plan
    assert doc.to_json() == before
    assert [a.work for a in doc.actions] == [("start", "web", a.node) for a in plan.actions]


def test_a_fence_plan_with_pseudo_stops_round_trips() -> None:
    plan = Plan(
        actions=[
            Action(0, "fence", "a", reason="its lease expired while it ran resources"),
            Action(1, "stop", "a", "web", pseudo=True),
            Action(2, "start", "b", "web"),
        ],
        edges=[(0, 1), (1, 2)],
        roles={"web": "Started"},
    )
    doc = pl.PlanDoc.of(plan, 1, "b", 0.0)
    again = pl.parse(pl.encode(doc))
    assert again == doc
    assert again.ready({}, "b") == []
    assert [a.id for a in again.ready({0: True}, "b")] == [2]
    assert again.ready({0: False}, "b") == []  # a failed fence blocks the start
    assert [a.id for a in again.fences({})] == [0] and again.fences({0: True}) == []
    assert again.remaining({0: True}) == {("start", "web", "b")}


def test_very_old_plans_called_the_orderings_edges() -> None:
    doc = pl.from_json({"actions": [{"id": 0, "task": "start", "node": "n", "resource": "r"}], "edges": [[0, 0]]})
    assert doc.edges == ((0, 0),) and doc.epoch == 0


CORRUPT: list[tuple[Any, str]] = [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "document"),
    ({"epoch": "7"}, "epoch"),
    ({"epoch": -1}, "epoch"),
    ({"epoch": True}, "epoch"),
    ({"actions": {"0": {}}}, "actions"),
    ({"actions": [{"id": 0, "task": "reboot", "node": "a"}]}, "actions[0].task"),
    ({"actions": [{"id": "0", "task": "start", "node": "a"}]}, "actions[0].id"),
    ({"actions": [{"id": 0, "task": "start"}]}, "actions[0].node"),
    ({"actions": [{"id": 0, "task": "start", "node": "a", "resource": 3}]}, "actions[0].resource"),
    ({"actions": [{"id": 0, "task": "start", "node": "a", "pseudo": "yes"}]}, "actions[0].pseudo"),
    ({"actions": [{"id": 0, "task": "start", "node": "a"}, {"id": 0, "task": "stop", "node": "b"}]}, "same id"),
    ({"orderings": [[0]]}, "orderings[0]"),
    ({"orderings": [[0, "1"]]}, "orderings[0][1]"),
    ({"roles": {"web": "Master"}}, "roles.web"),
    ({"placement": {"web": "a"}}, "placement.web"),
    ({"summary": "x"}, "summary"),
    ({"created": "now"}, "created"),
]


@pytest.mark.parametrize(("raw", "field"), CORRUPT)
def test_a_corrupt_plan_is_rejected_naming_the_field(raw: Any, field: str) -> None:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(pl.PlanError, match=r"^plan: ") as err:
        pl.parse(data)
    assert field in str(err.value)


json_keys = stt.sampled_from(["id", "task", "node", "actions", "epoch", "orderings", "roles", "created"])
json_values = stt.recursive(
    stt.none() | stt.booleans() | stt.integers() | stt.text(max_size=5),
    lambda inner: stt.lists(inner, max_size=3) | stt.dictionaries(json_keys, inner, max_size=4),
)


@RELAXED
@given(stt.binary(max_size=64) | json_values.map(lambda d: json.dumps(d).encode()))
def test_parsing_anything_either_gives_a_plan_or_says_why(raw: bytes) -> None:
    try:
        doc = pl.parse(raw)
    except pl.PlanError as exc:
        assert str(exc).startswith("plan: ")
    else:
        assert pl.parse(pl.encode(doc)) == doc
