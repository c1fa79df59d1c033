"""Three real RabbitMQ brokers under hakeeper agents (the native rabbitmq class as a clone), with a
quorum queue; an independent checker publishes with confirms and consumes with manual acks.

One cluster for the module (brokers start once); the tests run in order and each leaves it whole:
formation, the quorum queue leader's broker SIGKILLed (it comes back with its data), every broker
SIGKILLed at once (the cluster comes back by itself with the messages).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator

import pytest

from conftest import needs_binary, needs_root
from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.lab import POLICY, VHOST, RabbitLab, rabbitmq_spec

QUEUE = "hk-check"


@pytest.fixture(scope="module")
def lab() -> Iterator[RabbitLab]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("rabbitmq-server", "rabbitmq-server")
    workdir = tempfile.mkdtemp(prefix="hkr-", dir="/tmp")
    cluster = RabbitLab(workdir)
    try:
        cluster.start()
        cluster.apply(rabbitmq_spec(cluster))
        cluster.wait_cluster(3, 180)
        cluster.setup_openstack_vhost(cluster.names[0])
        yield cluster
    finally:
        cluster.close()


def _hosts(lab: RabbitLab, first: str | None = None) -> list[str]:
    return [lab.addr[n] for n in sorted(lab.names, key=lambda n: n != first)]


def _run(lab: RabbitLab, tag: str, first: str | None = None) -> tuple[checker.Publisher, checker.Consumer]:
    pub = checker.Publisher(_hosts(lab, first), vhost=VHOST, queue=QUEUE, tag=tag)
    con = checker.Consumer(_hosts(lab), vhost=VHOST, queue=QUEUE)
    pub.start()
    con.start()
    return pub, con


def _marker(lab: RabbitLab, name: str) -> tuple[int, int]:
    """What a wiped data directory would lose: the inode of the node's mnesia schema and of its
    quorum-queue (Ra) directory."""
    d = lab.mnesia_dir(name)
    return os.stat(os.path.join(d, "schema.DAT")).st_ino, os.stat(os.path.join(d, "quorum")).st_ino


@pytest.mark.timeout(400)
def test_the_cluster_forms_under_hakeeper_with_a_quorum_queue(lab: RabbitLab) -> None:
    views = lab.running_nodes()
    assert sorted(views) == lab.names
    assert all(v == [f"rabbit@{n}" for n in lab.names] for v in views.values()), views
    checker.declare(lab.addr[lab.names[0]], vhost=VHOST, queue=QUEUE)
    assert lab.queue_info(lab.leader_of(QUEUE), QUEUE) == ("quorum", POLICY)
    assert sorted(lab.quorum_members(QUEUE)) == lab.names
    pub, con = _run(lab, "form")
    time.sleep(3)
    verdict = checker.verdict(pub, con)
    assert verdict.ok and verdict.confirmed > 50, verdict.describe()
    status = lab.hk("status").stdout
    assert "rabbitmq" in status


@pytest.mark.timeout(400)
def test_leader_broker_killed_publishing_resumes_elsewhere_and_it_rejoins_with_its_data(lab: RabbitLab) -> None:
    victim = lab.leader_of(QUEUE)
    before = _marker(lab, victim)
    pub, con = _run(lab, "kill1", first=victim)
    try:
        time.sleep(2)
        killed = time.monotonic()
        lab.kill_broker(victim)
        deadline = time.monotonic() + 30
        while pub.first_confirm_after(killed, lab.addr[victim]) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.first_confirm_after(killed, lab.addr[victim]) is not None, "no confirm through another broker"
        lab.wait_cluster(3, 180)  # hakeeper restarted it; it rejoined
        time.sleep(2)
    finally:
        verdict = checker.verdict(pub, con)
    assert verdict.ok and verdict.confirmed > 0, verdict.describe()
    assert _marker(lab, victim) == before, "the rejoined node's data directory was recreated"
    # Its replica is a member again, caught up from its own log (not rebuilt: the inodes held).
    deadline = time.monotonic() + 60
    while sorted(s for s in lab.quorum_members(QUEUE).values()) != ["follower", "follower", "leader"]:
        assert time.monotonic() < deadline, lab.quorum_members(QUEUE)
        time.sleep(1)


@pytest.mark.timeout(500)
def test_full_outage_the_cluster_comes_back_by_itself_with_the_messages(lab: RabbitLab) -> None:
    before = {n: _marker(lab, n) for n in lab.names}
    pub = checker.Publisher(_hosts(lab), vhost=VHOST, queue=QUEUE, tag="outage")
    pub.start()
    time.sleep(3)
    for n in lab.names:
        lab.kill_broker(n)
    pub.stop()  # what was confirmed before the outage must all be there after it
    lab.wait_cluster(3, 300)
    con = checker.Consumer(_hosts(lab), vhost=VHOST, queue=QUEUE)
    con.start()
    again = checker.Publisher(_hosts(lab), vhost=VHOST, queue=QUEUE, tag="after")
    again.start()
    time.sleep(2)
    after = checker.verdict(again, con)
    outage = checker.judge(pub, con)
    assert outage.ok and outage.confirmed > 50, outage.describe()
    assert after.ok and after.confirmed > 0, after.describe()
    assert {n: _marker(lab, n) for n in lab.names} == before
