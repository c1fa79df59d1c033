"""Pacemaker's `ocf:heartbeat:rabbitmq-cluster` agent, unchanged, under hakeeper: three real
brokers (namespaces q1-q3, 10.96.5.0/24, rabbitmq/ocflab.py), the agent run as a clone with
notify=true through hakeeper's OCF class and its Pacemaker CLI shims.

One cluster for the module: (1) the three nodes form one RabbitMQ cluster under the agent; (2) a
node is put in standby and back, with a quorum queue and an independent checker (publisher
confirms, consumer acks) running across it: what the agent does to that node's data is measured
and stated (its mnesia directory is removed and made anew, the node is forgotten by the others,
its quorum-queue replica is gone), and no confirmed message is lost; (3) another node's broker is
SIGKILLed: hakeeper recovers the instance and the agent's start removes that node's data as well.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import needs_binary, needs_ocf_agent, needs_root
from conftest import until as _until
from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.lab import VHOST
from hakeeper.rabbitmq.ocflab import OcfRabbitLab, ocf_spec

pytestmark = [pytest.mark.slow, pytest.mark.root]

QUEUE = "hk-ocf-check"
RATE = 200
ATTR = "rmq-node-attr-rabbitmq"  # what the agent publishes per running node (its OCF_RESOURCE_INSTANCE)




def _members(lab: OcfRabbitLab, name: str) -> list[str]:
    """The disc nodes of the cluster as node `name`'s broker knows them (members, running or not)."""
    st = lab.cluster_status(name) or {}
    return sorted(st.get("disk_nodes", []) + st.get("ram_nodes", []))


def _join_list(lab: OcfRabbitLab, name: str) -> list[str]:
    """What the agent's own join-list query answers on node `name`: its xpath over hakeeper's CIB
    (cibadmin -Q --xpath on the online nodes' transient attributes), as the agent pipes it."""
    views = glob.glob(os.path.join(lab.workdir, "state", name, "cluster-view.json"))
    assert views, "no cluster view written by the agent"
    xpath = f"//node_state[@crmd='online']//nvpair[@name='{ATTR}']"
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper.resources.crm_attribute", "cibadmin", "-Q", "--xpath", xpath],
        env={**lab.env, "HAKEEPER_CLUSTER_VIEW": views[0]}, capture_output=True, text=True, timeout=30,
    )
    return sorted(line.split('value="', 1)[1].split('"', 1)[0] for line in out.stdout.splitlines() if "value=" in line)


def _node_online(lab: OcfRabbitLab, name: str) -> None:
    lab.hk("node", "online", name)


@pytest.fixture(scope="module")
def lab() -> Iterator[OcfRabbitLab]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("rabbitmq-server", "rabbitmq-server")
    needs_binary("unshare", "util-linux")
    needs_ocf_agent("heartbeat/rabbitmq-cluster", "resource-agents")
    workdir = tempfile.mkdtemp(prefix="hkq-", dir="/tmp")
    cluster = OcfRabbitLab(workdir)
    try:
        cluster.start()
        q1 = cluster.names[0]
        # All three nodes at once, as Pacemaker deployments start this agent: the clone's
        # ordered=true starts the instances one after another. The agent's first start founds a
        # cluster of its own whenever no node has published its name, so without the order the
        # three starts would found three clusters (the first test checks there is one).
        t0 = time.monotonic()
        cluster.apply(ocf_spec(cluster))
        cluster.wait_cluster(3, 600)
        print(f"\nformed under rabbitmq-cluster in {time.monotonic() - t0:.1f}s")
        cluster.setup_openstack_vhost(q1)
        yield cluster
    finally:
        cluster.close()
        for data in glob.glob(os.path.join(workdir, "*.etcd")):  # ~120 MB each; the logs stay
            shutil.rmtree(data, ignore_errors=True)


@pytest.mark.timeout(1000)  # with the module's setup (formation)
def test_the_agent_forms_one_cluster_of_three(lab: OcfRabbitLab) -> None:
    views = lab.running_nodes()
    want = [f"rabbit@{n}" for n in lab.names]
    assert views == {n: want for n in lab.names}, views
    # The agent's own view of who runs: every node published its Erlang node name, and the
    # xpath it joins by finds all three.
    until_(lambda: all(_join_list(lab, n) == want for n in lab.names), 60, "the agent's join list on every node")


def _ls(path: str) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(os.listdir(path))
    return []


def _checked_queue(lab: OcfRabbitLab, queue: str, clients: list[str]) -> tuple[checker.Publisher, checker.Consumer]:
    """A quorum queue on all three nodes, and the checker's publisher and consumer on it through
    the `clients` nodes, running with some confirms already."""
    checker.declare(lab.addr[lab.names[0]], vhost=VHOST, queue=queue)
    until_(lambda: sorted(lab.quorum_members(queue)) == lab.names, 60, f"quorum queue {queue} on three members")
    hosts = [lab.addr[n] for n in clients]
    pub = checker.Publisher(hosts, vhost=VHOST, queue=queue, tag=queue, rate=RATE)
    con = checker.Consumer(hosts, vhost=VHOST, queue=queue)
    pub.start()
    con.start()
    until_(lambda: len(pub.confirmed_ids()) > 50, 60, f"confirms on {queue} before the fault")
    return pub, con


@pytest.mark.timeout(900)
def test_a_node_leaves_and_rejoins_its_data_is_wiped_and_no_confirmed_message_is_lost(lab: OcfRabbitLab) -> None:
    q1, q2, q3 = lab.names
    mnesia = lab.mnesia_dir(q3)
    pub, con = _checked_queue(lab, QUEUE, [q1, q2])  # clients on the two nodes that stay
    schema_before = os.stat(os.path.join(mnesia, "schema.DAT")).st_ino
    ra_before = _ls(os.path.join(mnesia, "quorum", f"rabbit@{q3}"))
    try:
        t0 = time.monotonic()
        lab.hk("node", "standby", q3)
        until_(lambda: not lab.broker_pids(q3), 180, f"{q3}'s broker to stop")
        # The others' post-stop notification made them forget q3: the cluster has two members.
        forgotten = until_(lambda: _members(lab, q1) == [f"rabbit@{q1}", f"rabbit@{q2}"] and _members(lab, q1),
                          120, f"{q3} forgotten by the others (post-stop notify)")
        print(f"\n{q3} stopped and forgotten {time.monotonic() - t0:.1f}s after its standby: members {forgotten}")
        replicas_while_out = lab.quorum_members(QUEUE)
        print(f"quorum queue replicas while {q3} is out: {replicas_while_out}")
        t1 = time.monotonic()
        _node_online(lab, q3)
        lab.wait_cluster(3, 300)
        print(f"{q3} back in the cluster {time.monotonic() - t1:.1f}s after leaving standby")
        time.sleep(2)
    finally:
        verdict = checker.verdict(pub, con)
    print(verdict.describe())
    assert verdict.ok and verdict.confirmed > 100, verdict.describe()
    schema_after = os.stat(os.path.join(mnesia, "schema.DAT")).st_ino
    ra_after = _ls(os.path.join(mnesia, "quorum", f"rabbit@{q3}"))
    replicas_after = lab.quorum_members(QUEUE)
    print(f"{q3} schema.DAT inode {schema_before} -> {schema_after}; Ra data {ra_before} -> {ra_after}; "
          f"queue replicas after the rejoin: {replicas_after}")
    # What the agent did to q3's data, plainly: the others forgot q3 when it stopped (their
    # post-stop notification runs `forget_cluster_node`), which took its replica out of the queue;
    # its start removed its mnesia directory (schema made anew) and joined as a new node; the
    # queue's Raft data on q3 is gone and q3 holds no replica of it: the queue runs on two
    # replicas until an operator runs `rabbitmq-queues grow`. (hakeeper's native rabbitmq:cluster
    # keeps both: test_rabbitmq_cluster.py checks the inodes and the replica catching up.)
    assert sorted(replicas_while_out) == [q1, q2], replicas_while_out
    assert schema_after != schema_before, "the agent kept the node's mnesia schema"
    assert ra_before and set(ra_before) - set(ra_after), f"the queue's Raft data on {q3} survived"
    assert sorted(replicas_after) == [q1, q2], f"{q3} holds a replica again: {replicas_after}"
    assert sorted(_members(lab, q1)) == [f"rabbit@{n}" for n in lab.names]


@pytest.mark.timeout(600)
def test_a_crashed_broker_comes_back_with_its_data_removed(lab: OcfRabbitLab) -> None:
    """q2's Erlang VM SIGKILLed: the agent's monitor fails, hakeeper recovers the instance (stop,
    start), and the start removes q2's data as for any join (resource-agents issue #1349): a queue
    that had a replica on q2 has none there after it. No confirmed message is lost (the checker on
    q1 and q3)."""
    q1, q2, q3 = lab.names
    queue = "hk-ocf-crash"
    mnesia = lab.mnesia_dir(q2)
    pub, con = _checked_queue(lab, queue, [q1, q3])
    schema_before = os.stat(os.path.join(mnesia, "schema.DAT")).st_ino
    try:
        t0 = time.monotonic()
        lab.kill_broker(q2)
        until_(lambda: not lab.broker_pids(q2), 30, f"{q2}'s broker gone")
        until_(lambda: lab.broker_pids(q2), 180, f"{q2}'s broker started again")
        lab.wait_cluster(3, 300)
        print(f"\n{q2} back in the cluster {time.monotonic() - t0:.1f}s after its broker was killed")
        time.sleep(2)
    finally:
        verdict = checker.verdict(pub, con)
    print(verdict.describe())
    assert verdict.ok and verdict.confirmed > 100, verdict.describe()
    replicas = lab.quorum_members(queue)
    schema_after = os.stat(os.path.join(mnesia, "schema.DAT")).st_ino
    print(f"{q2} schema.DAT inode {schema_before} -> {schema_after}; replicas after: {replicas}")
    assert schema_after != schema_before, "the agent kept the crashed node's mnesia"
    assert sorted(replicas) == [q1, q3], f"{q2} holds a replica again: {replicas}"


def until_(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    return _until(cond, timeout, what, every=0.5)
