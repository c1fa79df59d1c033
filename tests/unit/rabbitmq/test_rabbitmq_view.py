"""`hakeeper rabbitmq status|forget`'s pure parts: a broker's row from its cluster_status, the
boot report, the rendering, and forget's refusals (a running node, an unknown one, nothing running)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.rabbitmq.view import (
    BootReport,
    Broker,
    broker_from_status,
    membership_summary,
    parse_boot_report,
    plan_forget,
    render,
)

ALL = ["rabbit@r1", "rabbit@r2", "rabbit@r3"]


def status(running: list[str], members: list[str] = ALL, **extra: object) -> dict[str, object]:
    return {"disk_nodes": members, "ram_nodes": [], "running_nodes": running, "alarms": [], "partitions": {},
            **extra}


def up(node: str, running: list[str] = ALL, members: list[str] = ALL) -> Broker:
    return broker_from_status(node, True, BootReport(True, ()), status(running, members))


def down(node: str) -> Broker:
    return broker_from_status(node, False, None, None, "unable to connect to node")


def test_a_row_from_cluster_status_with_alarms_and_partitions() -> None:
    doc = status(ALL[:2], alarms=[{"node": "rabbit@r1", "resource": "disk", "type": "resource_alarm"}],
                 partitions={"rabbit@r1": ["rabbit@r3"], "rabbit@r2": []})
    b = broker_from_status("r1", True, None, doc)
    assert b.answered and b.running_here and b.members == tuple(ALL) and b.running == tuple(ALL[:2])
    assert b.alarms == ("rabbit@r1: disk",)
    assert b.partitions == ("rabbit@r1 sees rabbit@r3 partitioned",)
    text = render("rabbitmq", [b, down("r3")])
    assert "rabbit@r1: disk" in text and "rabbit@r3" in text and "does not answer: unable to connect" in text


def test_a_paused_node_answers_but_does_not_run() -> None:
    b = up("r3", running=["rabbit@r1", "rabbit@r2"])
    assert b.answered and not b.running_here
    assert "not running" in render("rabbitmq", [b])


@pytest.mark.parametrize("raw, want", [
    ('{"data": true, "running_at_shutdown": ["rabbit@r2", "rabbit@r1"]}', BootReport(True, ("rabbit@r1", "rabbit@r2"))),
    ('{"data": false, "running_at_shutdown": []}', BootReport(False, ())),
    (None, None), ("", None), ("not json", None), ("[1]", None), ('{"other": 1}', None),
])
def test_boot_reports(raw: str | None, want: BootReport | None) -> None:
    assert parse_boot_report(raw) == want


def test_forget_a_stopped_member_through_a_running_one() -> None:
    plan = plan_forget("r3", [up("r1", ALL[:2]), up("r2", ALL[:2]), down("r3")], ["r1", "r2", "r3"])
    assert (plan.node, plan.via) == ("rabbit@r3", "rabbit@r1")
    assert plan_forget("rabbit@r3", [down("r1"), up("r2", ALL[:2]), down("r3")], ["r1", "r2", "r3"]).via == "rabbit@r2"


@pytest.mark.parametrize("node, brokers, words", [
    ("r2", [up("r1"), up("r2"), up("r3")], "still runs"),
    ("r3", [up("r1"), up("r2"), up("r3", ["rabbit@r1", "rabbit@r2"])], "still runs"),  # paused: its VM answers
    ("r3", [up("r1"), up("r2"), down("r3")], "is running, as rabbit@r1, rabbit@r2 report"),
    ("r9", [up("r1"), up("r2"), down("r3")], "unknown node rabbit@r9"),
    ("r3", [down("r1"), down("r2"), down("r3")], "no broker of the cluster is running"),
    ("r3", [up("r1", ALL[:2], ALL[:2]), up("r2", ALL[:2], ALL[:2]), down("r3")], "not a member"),
])
def test_forget_refusals(node: str, brokers: list[Broker], words: str) -> None:
    with pytest.raises(InputError) as info:
        plan_forget(node, brokers, ["r1", "r2", "r3"])
    assert words in str(info.value) and "NODE" in str(info.value)


names = st.sampled_from(["r1", "r2", "r3", "r4"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, st.booleans(), st.sets(names), st.sets(names)), max_size=4, unique_by=lambda t: t[0]),
       names)
def test_forget_never_targets_a_node_any_broker_sees_running(rows: list[tuple[str, bool, set[str], set[str]]],
                                                             node: str) -> None:
    brokers = []
    for n, answered, members, running in rows:
        doc = status(sorted(f"rabbit@{r}" for r in running | members), sorted(f"rabbit@{m}" for m in members))
        brokers.append(broker_from_status(n, True, None, doc if answered else None))
    try:
        plan = plan_forget(node, brokers, ["r1", "r2", "r3"])
    except InputError:
        return
    assert all(plan.node not in b.running for b in brokers)
    assert not any(b.broker == plan.node and b.answered for b in brokers)
    via = next(b for b in brokers if b.broker == plan.via)
    assert via.running_here and plan.node in via.members


def test_membership_summary_names_stopped_members_alarms_and_partitions() -> None:
    assert membership_summary(status(ALL)) == (
        "running rabbit@r1,rabbit@r2,rabbit@r3; not running -; alarms none; partitions none")
    doc = status(ALL[:2], alarms=[{"node": "rabbit@r1", "resource": "disk"}],
                 partitions={"rabbit@r1": ["rabbit@r3"]})
    assert membership_summary(doc) == ("running rabbit@r1,rabbit@r2; not running rabbit@r3; "
                                       "alarms rabbit@r1: disk; partitions rabbit@r1 sees rabbit@r3 partitioned")
    assert membership_summary(None) == "cluster_status: no answer"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(ALL), unique=True))
def test_membership_summary_is_the_same_for_the_same_state_in_any_order(running: list[str]) -> None:
    assert membership_summary(status(running)) == membership_summary(status(list(reversed(running)),
                                                                            list(reversed(ALL))))
