"""Three real RabbitMQ brokers under hakeeper agents (the native rabbitmq class as a clone), with a
quorum queue; an independent checker publishes with confirms and consumes with manual acks.

One cluster for the module (brokers start once); the tests run in order and each leaves it whole
(but the last): formation, the demo's scenario (the quorum queue leader's broker SIGKILLed: it comes
back with its data; then every broker SIGKILLed at once: the cluster comes back by itself with the
messages), a 2|1
partition (the minority stops serving, rejoins with its data once healed), the operator commands
`hakeeper rabbitmq status` and `forget` (its refusals), a full outage whose last node to stop is
gone for good (the others force-boot), and last that node forgotten.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import needs_binary, needs_root
from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.demo import QUEUE as DEMO_QUEUE
from hakeeper.rabbitmq.demo import data_marker, run_scenario
from hakeeper.rabbitmq.lab import POLICY, VHOST, RabbitLab, rabbitmq_spec

QUEUE = "hk-check"
# Messages per second per publisher: enough to see every fault, modest on a shared 2-core host.
RATE = 200


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
        cluster.wait_cluster(3, 900)  # formation: ~40 s on a quiet host, 4-10 minutes at load average 70
        cluster.setup_openstack_vhost(cluster.names[0])
        yield cluster
    finally:
        cluster.close()


def _hosts_of(lab: RabbitLab, names: list[str]) -> list[str]:
    return [lab.addr[n] for n in names]


def _hosts(lab: RabbitLab, first: str | None = None) -> list[str]:
    return [lab.addr[n] for n in sorted(lab.names, key=lambda n: n != first)]


def _run(lab: RabbitLab, tag: str, first: str | None = None) -> tuple[checker.Publisher, checker.Consumer]:
    pub = checker.Publisher(_hosts(lab, first), vhost=VHOST, queue=QUEUE, tag=tag, rate=RATE)
    con = checker.Consumer(_hosts(lab), vhost=VHOST, queue=QUEUE)
    pub.start()
    con.start()
    return pub, con


def _until_confirmed(pub: checker.Publisher, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(pub.confirmed_ids()) < count:
        assert time.monotonic() < deadline, f"only {len(pub.confirmed_ids())} confirmed in {timeout:g}s"
        time.sleep(0.2)


@pytest.mark.timeout(1200)  # with the module's setup (the cluster's formation)
def test_the_cluster_forms_under_hakeeper_with_a_quorum_queue(lab: RabbitLab) -> None:
    views = lab.running_nodes()
    assert sorted(views) == lab.names
    assert all(v == [f"rabbit@{n}" for n in lab.names] for v in views.values()), views
    checker.declare(lab.addr[lab.names[0]], vhost=VHOST, queue=QUEUE)
    assert lab.queue_info(lab.leader_of(QUEUE), QUEUE) == ("quorum", POLICY)
    assert sorted(lab.quorum_members(QUEUE)) == lab.names
    pub, con = _run(lab, "form")
    _until_confirmed(pub, 100)
    verdict = checker.verdict(pub, con)
    assert verdict.ok and verdict.confirmed > 50, verdict.describe()
    status = lab.hk("status").stdout
    assert "rabbitmq" in status


@pytest.mark.timeout(1300)
def test_leader_killed_then_every_broker_killed_nothing_lost_and_each_node_keeps_its_data(lab: RabbitLab) -> None:
    """What `hakeeper demo rabbitmq` shows, on this module's cluster. The quorum queue leader's
    broker is SIGKILLed: publishing resumes through another broker, and hakeeper restarts the dead
    one, which rejoins with its own data (the inodes of its mnesia schema and quorum directories
    hold: not wiped, not reset). Then, the consumer paused so confirmed messages wait in the queue,
    every broker is SIGKILLed at once: the cluster comes back by itself with the messages."""
    said: list[str] = []
    outcome = run_scenario(lab, said.append, tick=5.0)
    print("\n" + "\n".join(said) + "\n" + outcome.result_line())
    assert outcome.checked and outcome.missing == 0 and outcome.confirmed > 100, outcome.verdict
    # A publisher of the killed broker reconnects at once, but its new channel is nacked for a
    # while (7-20 s at load average 15-30, more beyond: docs/rabbitmq.md, Figures).
    assert outcome.kill_resume_s is not None, said
    assert outcome.outage_back_s is not None, said
    assert outcome.data_kept, "a node's data directory was recreated"
    assert outcome.ok
    # Every replica is a member again, caught up from its own log (not rebuilt: the inodes held).
    deadline = time.monotonic() + 60
    while sorted(s for s in lab.quorum_members(DEMO_QUEUE).values()) != ["follower", "follower", "leader"]:
        assert time.monotonic() < deadline, lab.quorum_members(DEMO_QUEUE)
        time.sleep(1)


def _serving(lab: RabbitLab, name: str) -> bool:
    return lab.ctl(name, "-q", "check_running", tool="rabbitmq-diagnostics", timeout=20).returncode == 0


@pytest.mark.timeout(700)
def test_partition_2_1_the_minority_stops_serving_and_rejoins_with_its_data(lab: RabbitLab) -> None:
    """The last node is cut off from the other two (packets dropped both ways). Publishing with
    confirms goes on through the majority; the minority stops serving (RabbitMQ's pause_minority
    pauses it, or its hakeeper agent, without store quorum, stops it: whichever comes first), and
    hakeeper shows the node offline. Healed, it rejoins with its data; nothing confirmed is lost."""
    needs_binary("nft", "nftables")
    *majority, minority = lab.names
    before = data_marker(lab, minority)
    pub = checker.Publisher(_hosts_of(lab, majority), vhost=VHOST, queue=QUEUE, tag="part", rate=RATE)
    con = checker.Consumer(_hosts_of(lab, majority), vhost=VHOST, queue=QUEUE)
    pub.start()
    con.start()
    try:
        deadline = time.monotonic() + 30
        while pub.first_confirm_after(0) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pub.first_confirm_after(0) is not None, "no confirm before the partition"
        lab.partition(minority)
        cut = time.monotonic()
        deadline = cut + 60
        while pub.first_confirm_after(cut + 1) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pub.first_confirm_after(cut + 1) is not None, "the majority confirmed nothing after the cut"
        deadline = cut + 150
        while _serving(lab, minority):
            assert time.monotonic() < deadline, "the minority's broker still serves 150 s into the partition"
            time.sleep(1)
        alive = "its Erlang VM alive (paused or stopping)" if lab.broker_pids(minority) else "its VM gone"
        print(f"minority {minority} stopped serving {time.monotonic() - cut:.1f}s after the cut ({alive})")
        deadline = time.monotonic() + 60
        while True:
            view = json.loads(lab.hk_in(majority[0], "status", "--json").stdout)
            if view["nodes"].get(minority, "").startswith("OFFLINE"):
                break
            assert time.monotonic() < deadline, f"hakeeper still shows {minority}: {view['nodes']}"
            time.sleep(1)
        confirmed_in_partition = len(pub.confirmed_ids())
        lab.heal(minority)
        lab.wait_cluster(3, 400)
    finally:
        lab.heal(minority)
        verdict = checker.verdict(pub, con)
    assert verdict.ok and verdict.confirmed >= confirmed_in_partition > 0, verdict.describe()
    assert data_marker(lab, minority) == before, "the healed node's data directory was recreated"


@pytest.mark.timeout(300)
def test_rabbitmq_status_shows_each_brokers_cluster(lab: RabbitLab) -> None:
    names = [f"rabbit@{n}" for n in lab.names]
    deadline = time.monotonic() + 120
    while True:  # after the partition, until every broker answers with the whole cluster running
        out = lab.hk_in(lab.names[0], "rabbitmq", "status", "--json")
        assert out.returncode == 0, out.stderr
        brokers = json.loads(out.stdout)["brokers"]
        if all(b["answered"] and b["running"] == names for b in brokers):
            break
        assert time.monotonic() < deadline, brokers
        time.sleep(2)
    assert [b["node"] for b in brokers] == lab.names
    for b in brokers:
        assert b["members"] == names and b["alarms"] == [] and b["partitions"] == [], b
        assert b["agent_online"] and b["boot"]["has_data"], b
    text = lab.hk_in(lab.names[1], "rabbitmq", "status")
    assert text.returncode == 0 and "rabbit@r3" in text.stdout and "partitions: none" in text.stdout, text
    assert lab.cookie not in text.stdout + out.stdout


@pytest.mark.timeout(300)
def test_forget_refuses_a_running_node_and_an_unknown_one(lab: RabbitLab) -> None:
    for node, why in ((lab.names[1], "still runs"), ("r9", "unknown node")):
        out = lab.hk_in(lab.names[0], "rabbitmq", "forget", node)
        assert out.returncode == 2 and why in out.stderr and "Traceback" not in out.stderr, out
    assert lab.running_nodes()[lab.names[0]] == [f"rabbit@{n}" for n in lab.names]


@pytest.mark.timeout(600)
def test_full_outage_the_last_node_to_stop_is_gone_for_good_the_others_force_boot(lab: RabbitLab) -> None:
    """r1, then r2, then r3 go down (hosts powered off, their processes killed before the links go
    dark, so each survivor notes the loss at once); r3, the last to stop, never comes back. r1 and
    r2 return: each waits for r3 (it ran when they stopped), and after `force_boot_after` (30 s)
    the one that stopped last among them, r2 (nodes_running_at_shutdown [r2, r3] against r1's three
    nodes), runs `force_boot`: the pure decision reads each node's own file through the boot
    reports the store carries. r1 syncs from it.

    The checker counts every id the publisher had confirmed before the outage, the ones confirmed
    while only r2 and r3 ran included. A confirm of a quorum queue means a majority of its three
    replicas had the message; r3 alone could confirm nothing (no majority, and pause_minority), so
    every confirmed message was on r1 or r2, and the Raft election between the two keeps the
    longest log: all of them must be delivered, and none is (none lost; duplicates counted apart)."""
    first, second, last = lab.names
    before = {n: data_marker(lab, n) for n in (first, second)}
    pub = checker.Publisher(_hosts(lab, second), vhost=VHOST, queue=QUEUE, tag="lastgone", rate=RATE)
    pub.start()
    try:
        _until_confirmed(pub, 100)
        lab.power_off(first, kill_first=True)
        gone = time.monotonic()
        deadline = gone + 120  # confirms that only r2 and r3 hold
        while pub.first_confirm_after(gone + 1) is None:
            assert time.monotonic() < deadline, "nothing confirmed by r2 and r3 after r1 went"
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while lab.running_at_shutdown(last) != [f"rabbit@{second}", f"rabbit@{last}"]:
            assert time.monotonic() < deadline, lab.running_at_shutdown(last)
            time.sleep(0.5)
        lab.power_off(second, kill_first=True)
        deadline = time.monotonic() + 60
        while lab.running_at_shutdown(last) != [f"rabbit@{last}"]:  # it saw r2 go: it is the last
            assert time.monotonic() < deadline, lab.running_at_shutdown(last)
            time.sleep(0.5)
        lab.power_off(last, kill_first=True)  # for good
    finally:
        pub.stop()
    assert lab.running_at_shutdown(second) == [f"rabbit@{second}", f"rabbit@{last}"]
    back = time.monotonic()
    for n in (first, second):
        lab.power_on(n)
    lab.wait_cluster(2, 400, names=[first, second])
    print(f"r1 and r2 back: a cluster of two running {time.monotonic() - back:.1f}s after power-on "
          f"(force_boot_after 30 s)")
    con = checker.Consumer(_hosts_of(lab, [first, second]), vhost=VHOST, queue=QUEUE)
    con.start()
    again = checker.Publisher(_hosts_of(lab, [first, second]), vhost=VHOST, queue=QUEUE, tag="forced", rate=RATE)
    again.start()
    _until_confirmed(again, 20)
    after = checker.verdict(again, con)
    outage = checker.judge(pub, con)
    print(f"before the outage: {outage.describe()}; after: {after.describe()}")
    assert outage.ok and outage.confirmed > 100, outage.describe()
    assert after.ok and after.confirmed > 0, after.describe()
    assert {n: data_marker(lab, n) for n in (first, second)} == before, "a returning node's data was recreated"
    # Each start's boot decision (the agents' state went with the power-off: these are new).
    decided = {n: Path(lab.workdir, "state", n, "rabbitmq.decision").read_text() for n in (first, second)}
    assert decided[second].startswith("force-boot:") and "stopped last among the online nodes" in decided[second], \
        decided
    assert decided[first].startswith("boot:") and f"rabbit@{second} force-boots" in decided[first], decided


@pytest.mark.timeout(300)
def test_forget_a_node_removed_for_good(lab: RabbitLab) -> None:
    """Last: the node the outage left gone for good is forgotten by the operator."""
    *rest, gone = lab.names
    out = lab.hk_in(rest[0], "rabbitmq", "forget", gone, "--dry-run")
    assert out.returncode == 0, out
    out = lab.hk_in(rest[0], "rabbitmq", "forget", gone)
    assert out.returncode == 0 and f"forget rabbit@{gone}" in out.stdout, out
    status = lab.cluster_status(rest[0]) or {}
    assert sorted(status.get("disk_nodes", [])) == [f"rabbit@{n}" for n in rest], status
    pub = checker.Publisher(_hosts_of(lab, rest), vhost=VHOST, queue=QUEUE, tag="forgot", rate=RATE)
    con = checker.Consumer(_hosts_of(lab, rest), vhost=VHOST, queue=QUEUE)
    pub.start()
    con.start()
    _until_confirmed(pub, 20)
    verdict = checker.verdict(pub, con)
    assert verdict.ok and verdict.confirmed > 0, verdict.describe()
