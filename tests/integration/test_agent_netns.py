"""Three nodes in network namespaces, each with an etcd member and an agent, running a group
(VIP, HTTP service, OCF Dummy) fenced by the namespace device. The scenarios of issue 4."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import needs_binary, needs_root, until
from hakeeper.agent.nscluster import NsCluster

pytestmark = [pytest.mark.slow, pytest.mark.root]




@pytest.fixture(scope="module")
def cl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsCluster]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents")
    c = NsCluster(str(tmp_path_factory.mktemp("hka")), tag="t", subnet=20)
    try:
        c.start()
        c.apply(c.spec())
        until(lambda: c.group_on() and c.answers(), 60, "the group to start")
        yield c
    finally:
        c.close()


def healthy(c: NsCluster) -> str:
    """All three nodes online, the group on one node answering: its node."""
    return c.healthy(60)


def fence_events(c: NsCluster) -> list[dict[str, Any]]:
    return [e for e in c.events() if e["kind"] in ("fenced", "fence-failed")]


def test_node_death_fenced_then_recovered_elsewhere_and_stickiness(cl: NsCluster) -> None:
    node = healthy(cl)
    before = len(fence_events(cl))
    t0 = time.time()
    cl.kill_node(node)
    until(lambda: cl.answers(0.2), 30, "the VIP to answer again")
    took = time.time() - t0
    new = until(lambda: cl.group_on(), 10, "the group placed")
    assert new != node
    events = cl.events()
    fenced = [e for e in events if e["kind"] == "fenced" and node in e["message"]]
    assert len(fence_events(cl)) > before and fenced, events[-20:]
    starts = [e for e in events if e["kind"] == "start" and e["node"] == new and e["at"] >= t0]
    assert starts and min(s["at"] for s in starts) >= fenced[-1]["at"], "started before fencing"
    assert took < 30
    # The node comes back: stickiness keeps the group where it is now.
    cl.revive_node(node)
    until(lambda: cl.status()["nodes"][node] == "online", 60, f"{node} online again")
    time.sleep(3)
    assert cl.group_on() == new and cl.answers()


def test_etcd_member_death_moves_nothing(cl: NsCluster) -> None:
    node = healthy(cl)
    # The raft leader's member when it is not the group's node: the hard case, an election stalls
    # every lease refresh for about a second.
    raft = cl.raft_leader()
    victim = raft if raft not in (None, node) else next(n for n in cl.names if n != node)
    before = len(fence_events(cl))
    logs = [Path(cl.workdir, f"{n}.agent.log") for n in cl.names]
    cut_off = [log.read_text().count("cut off from the store") for log in logs]
    cl.members[victim].stop()
    try:
        time.sleep(6)  # three lease TTLs
        view = cl.status()
        assert cl.group_on(view) == node and cl.answers()
        assert all(w == "online" for w in view["nodes"].values()), view["nodes"]
        assert len(fence_events(cl)) == before
        # No agent took the election for a lost store (a new etcd leader renews every lease).
        assert [log.read_text().count("cut off from the store") for log in logs] == cut_off
    finally:
        cl.start_member(victim)  # the next tests need all three members, whatever happened here


def test_leader_agent_death_new_leader_nothing_moves(cl: NsCluster) -> None:
    node = healthy(cl)
    leader = cl.status()["leader"]
    if leader == node:
        # Keep the group off the leader's node for this scenario (a dead agent on the group's
        # node would rightly be fenced).
        other = next(n for n in cl.names if n != leader)
        cl.hk("resource", "move", "svc", other)
        until(lambda: cl.group_on() == other and cl.answers(), 30, "the move")
        cl.hk("resource", "clear", "svc")
        node = other
    before = len(fence_events(cl))
    cl.kill_agent(leader)
    new_leader = until(lambda: (lead := cl.status()["leader"]) not in (None, leader) and lead, 30, "a new leader")
    assert new_leader != leader
    time.sleep(3)
    assert cl.group_on() == node and cl.answers()
    assert len(fence_events(cl)) == before
    cl.start_agent(leader)
    until(lambda: cl.status()["nodes"][leader] == "online", 30, "the agent back")


def web_pid(cl: NsCluster, node: str) -> int:
    return int(Path(cl.workdir, "state", node, "web.pid").read_text().split()[0])


def test_failing_monitor_restarts_then_moves(cl: NsCluster) -> None:
    node = healthy(cl)
    cl.hk("resource", "cleanup", "web")
    os.kill(web_pid(cl, node), signal.SIGKILL)
    until(lambda: any(f["node"] == node and f["count"] == 1 for f in cl.status()["failures"]), 20, "fail count 1")
    until(lambda: cl.group_on() == node and cl.answers(), 30, "a restart in place")
    os.kill(web_pid(cl, node), signal.SIGKILL)
    until(lambda: cl.group_on() not in (None, node) and cl.answers(), 30, "a move after migration-threshold")
    cl.hk("resource", "cleanup", "web")


def test_partitioned_minority_stops_its_resources(cl: NsCluster) -> None:
    # The majority notices the silent node (heartbeat) about as soon as the node notices it lost
    # the store; a fence delay (pcmk_delay_base) lets the minority's own stop be seen first.
    cl.apply(cl.spec(fence_delay="6s"))
    try:
        node = healthy(cl)
        log = Path(cl.workdir, f"{node}.agent.log")
        cl.partition(node)  # cut off, processes alive
        until(lambda: "no quorum: stopped" in log.read_text(), 20, "the minority to stop its resources")
        until(lambda: cl.group_on() not in (None, node) and cl.answers(0.2), 30, "recovery elsewhere")
        text = log.read_text()
        assert "no quorum: stopped web" in text and "no quorum: stopped vip" in text
        cl.kill_node(node)
        cl.revive_node(node)
    finally:
        cl.apply(cl.spec())
    healthy(cl)


def test_leader_node_death_new_leader_fences_and_recovers(cl: NsCluster) -> None:
    """The node that dies is the agents' leader and runs the group: a follower takes the lead
    (its heartbeat stopped, or its lease expired), fences it, and the group starts elsewhere."""
    node = healthy(cl)
    leader = cl.status()["leader"]
    if leader != node:
        cl.hk("resource", "move", "svc", leader)
        until(lambda: cl.group_on() == leader and cl.answers(), 30, "the move to the leader")
        cl.hk("resource", "clear", "svc")
    t0 = time.time()
    cl.kill_node(leader)
    until(lambda: cl.answers(0.2), 30, "the VIP to answer again")
    view = cl.status()
    assert view["leader"] not in (None, leader)
    assert cl.group_on(view) not in (None, leader)
    events = [e for e in cl.events() if e["at"] >= t0]
    assert any(e["kind"] == "fenced" and e.get("victim") == leader for e in events), events[-20:]
    cl.revive_node(leader)
    until(lambda: cl.status()["nodes"][leader] == "online", 60, f"{leader} online again")
