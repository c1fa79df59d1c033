"""The pure boot decision of a RabbitMQ node, and the reading of RabbitMQ's node-list files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from hakeeper.errors import InputError
from hakeeper.rabbitmq.decide import Action, Local, Peer, decide, parse_node_list

A, B, C = "rabbit@r1", "rabbit@r2", "rabbit@r3"
ALL = frozenset({A, B, C})
FRESH = Local(has_data=False)


def up(members: frozenset[str] = ALL, data: bool = True) -> Peer:
    """A peer whose broker runs in a cluster of `members`."""
    return Peer(True, running=True, starting=True, members=members, has_data=data)


def test_the_first_empty_node_being_started_founds_and_the_others_wait_then_join() -> None:
    starting = {B: Peer(True, starting=True, has_data=False), C: Peer(True, starting=True, has_data=False)}
    assert decide(A, FRESH, starting).action is Action.BOOT
    d = decide(B, FRESH, {A: Peer(True, starting=True, has_data=False), C: Peer(True, has_data=False)})
    assert d.action is Action.WAIT and d.waiting_for == (A,)
    # A lower node that is not being started (a later transition) does not hold the start up.
    assert decide(C, FRESH, {A: Peer(True, has_data=False), B: Peer(True, has_data=False)}).action is Action.BOOT
    d = decide(B, FRESH, {A: up(frozenset({A})), C: Peer(True, has_data=False)})
    assert d.action is Action.JOIN and d.target == A


def test_an_empty_node_waits_for_peers_with_data_and_for_unreported_peers() -> None:
    d = decide(A, FRESH, {B: Peer(True, has_data=True, running_at_shutdown=ALL), C: Peer(False)})
    assert d.action is Action.WAIT and B in d.waiting_for
    assert decide(A, FRESH, {B: Peer(True), C: Peer(False)}).action is Action.WAIT
    # Offline peers do not hold up the founding (their reports went with their lease).
    assert decide(B, FRESH, {A: Peer(False), C: Peer(True, has_data=False)}).action is Action.BOOT


def test_a_node_with_data_never_joins_and_rejoins_by_booting() -> None:
    local = Local(True, ALL, ALL)
    d = decide(A, local, {B: up(), C: Peer(False)})
    assert d.action is Action.BOOT


def test_a_forgotten_node_or_another_clusters_data_is_refused_not_wiped() -> None:
    forgotten = decide(A, Local(True, ALL, ALL), {B: up(frozenset({B, C})), C: Peer(True)})
    assert forgotten.action is Action.REFUSE and "does not list" in forgotten.reason
    other = Local(True, frozenset({A, "rabbit@x1", "rabbit@x2"}), frozenset({A}))
    d = decide(A, other, {B: Peer(True, has_data=False), C: Peer(True, has_data=False)})
    assert d.action is Action.REFUSE and "another cluster" in d.reason
    # An empty node the running cluster still lists: the operator forgets the old one first.
    d = decide(A, FRESH, {B: up(), C: up()})
    assert d.action is Action.REFUSE and "forget_cluster_node" in d.reason


def test_an_interrupted_join_is_joined_again() -> None:
    half = Local(True, frozenset({A}), frozenset({A}), joining=True)
    d = decide(A, half, {B: up(frozenset({B, C})), C: Peer(True)})
    assert d.action is Action.JOIN and d.target == B


def test_full_outage_last_to_stop_boots_first_and_the_others_boot_waiting() -> None:
    last = Local(True, ALL, frozenset({C}))
    assert decide(C, last, {A: Peer(True), B: Peer(True)}).action is Action.BOOT
    # All killed at once: everyone lists everyone; all online -> all boot (RabbitMQ sorts it out).
    peers = {n: Peer(True, has_data=True, running_at_shutdown=ALL) for n in (B, C)}
    assert decide(A, Local(True, ALL, ALL), peers).action is Action.BOOT


def test_full_outage_with_the_last_node_gone_force_boots_exactly_one_after_the_grace() -> None:
    rats = {A: ALL, B: frozenset({B, C}), C: frozenset({C})}  # C stopped last, then is gone for good
    def peers_of(me: str) -> dict[str, Peer]:
        return {
            n: Peer(n != C, has_data=True if n != C else None, running_at_shutdown=rats[n] if n != C else frozenset())
            for n in (A, B, C) if n != me
        }
    early = decide(B, Local(True, ALL, rats[B]), peers_of(B), waited=1, force_boot_after=30)
    assert early.action is Action.WAIT and C in early.waiting_for
    a = decide(A, Local(True, ALL, rats[A]), peers_of(A), waited=31, force_boot_after=30)
    b = decide(B, Local(True, ALL, rats[B]), peers_of(B), waited=31, force_boot_after=30)
    assert (a.action, b.action) == (Action.BOOT, Action.FORCE_BOOT)


names = hs.sampled_from([A, B, C])
node_sets = hs.frozensets(names)


@hs.composite
def worlds(draw: hs.DrawFn) -> tuple[dict[str, Local], dict[str, Peer]]:
    """A consistent cluster state: every node's data, online flag and broker state."""
    locals_: dict[str, Local] = {}
    views: dict[str, Peer] = {}
    running_cluster = draw(node_sets)
    for n in (A, B, C):
        data = draw(hs.booleans()) or n in running_cluster
        rats = draw(node_sets) | {n} if data else frozenset()
        locals_[n] = Local(data, ALL if data else frozenset(), rats, joining=False)
        online = draw(hs.booleans()) or n in running_cluster
        up = n in running_cluster
        views[n] = Peer(online, up, up or (online and draw(hs.booleans())), running_cluster if up else frozenset(),
                        data if online else None, rats if online else frozenset())
    return locals_, views


@settings(max_examples=300)
@given(worlds(), hs.floats(0, 100))
def test_never_a_join_with_data_never_two_founders_never_two_force_boots(
    world: tuple[dict[str, Local], dict[str, Peer]], waited: float
) -> None:
    locals_, views = world
    decisions = {}
    for me in (A, B, C):
        if not views[me].online or views[me].running:
            continue
        peers = {n: v for n, v in views.items() if n != me}
        decisions[me] = decide(me, locals_[me], peers, waited, 30)
    for me, d in decisions.items():
        if d.action is Action.JOIN:
            assert not locals_[me].has_data, "a node with data must never join (join_cluster resets it)"
            assert d.target is not None and views[d.target].running
    # Founders among the nodes being started: at most one (a node not being started decides nothing).
    founders = [n for n, d in decisions.items() if d.action is Action.BOOT and not locals_[n].has_data
                and views[n].starting]
    assert len(founders) <= 1
    if founders:
        assert not any(v.running for v in views.values())
        assert not any(views[n].online and locals_[n].has_data for n in (A, B, C))
    assert sum(d.action is Action.FORCE_BOOT for d in decisions.values()) <= 1
    if any(d.action is Action.FORCE_BOOT for d in decisions.values()):
        assert waited >= 30 and not any(v.running for v in views.values())


def test_node_list_files_are_read_and_corruption_named() -> None:
    assert parse_node_list("{[rabbit@r1,rabbit@r2],[rabbit@r1]}.", "cluster_nodes.config", "nodes") == [
        ["rabbit@r1", "rabbit@r2"], ["rabbit@r1"]]
    assert parse_node_list("['rabbit@r-1'].\n", "f", "x") == [["rabbit@r-1"]]
    assert parse_node_list("[].", "f", "x") == [[]]
    for bad in ("[rabbit@r1]", "garbage.", "[not_a_node].", "[rabbit@r1, {x}]."):
        with pytest.raises(InputError) as info:
            parse_node_list(bad, "/var/lib/rabbitmq/mnesia/rabbit@r1/nodes_running_at_shutdown", "running")
        assert "nodes_running_at_shutdown" in str(info.value)


def test_a_local_alarm_or_a_partition_fails_the_monitor() -> None:
    from hakeeper.rabbitmq.agent import judge_status
    from hakeeper.resources.result import Status

    ok = {"alarms": [], "partitions": {}, "running_nodes": [A, B]}
    assert judge_status(A, ok).status is Status.SUCCESS
    other = {**ok, "alarms": [{"node": B, "resource": "disk"}]}
    assert judge_status(A, other).status is Status.SUCCESS  # another node's alarm is its own monitor's
    local = {**ok, "alarms": [{"node": A, "resource": "memory"}]}
    assert judge_status(A, local).status is Status.ERROR
    split = {**ok, "partitions": {A: [C]}}
    assert judge_status(A, split).status is Status.ERROR
    assert judge_status(A, []).status is Status.ERROR


def test_bad_input_is_named_and_nothing_is_touched(tmp_path: object) -> None:
    import os
    from pathlib import Path

    from hakeeper.rabbitmq.agent import RabbitAgent
    from hakeeper.resources.base import AgentName

    base = Path(str(tmp_path))
    name = AgentName.parse("rabbitmq:cluster")
    no_cookie = RabbitAgent("rabbitmq", name, {"base_dir": str(base)}, str(base / "state"))
    reason = no_cookie.installed()
    assert reason is not None and ("cookie" in reason or "rabbitmq-server" in reason)
    agent = RabbitAgent("rabbitmq", name, {"base_dir": str(base), "cookie": "c"}, str(base / "state"))
    agent.meta["on_node"] = "r1"
    assert agent.local_state() == Local(has_data=False)
    mnesia = base / "mnesia" / "rabbit@r1"
    mnesia.mkdir(parents=True)
    (mnesia / "schema.DAT").write_bytes(b"x")
    (mnesia / "cluster_nodes.config").write_text("{[rabbit@r1,rabbit@r2],[rabbit@r1]}.")
    (mnesia / "nodes_running_at_shutdown").write_text("[rabbit@r1, garbage")
    with pytest.raises(InputError) as info:
        agent.local_state()
    assert "nodes_running_at_shutdown" in str(info.value)
    assert sorted(os.listdir(mnesia)) == ["cluster_nodes.config", "nodes_running_at_shutdown", "schema.DAT"]
    (mnesia / "nodes_running_at_shutdown").write_text("[rabbit@r2].")
    assert agent.local_state() == Local(True, frozenset({A, B}), frozenset({B}))
