"""`hakeeper demo rabbitmq`: three real RabbitMQ brokers under hakeeper, live (root).

The message tier through the two faults operators dread, in network namespaces: a publisher with
confirms and a consumer with manual acks on a quorum queue; the queue leader's broker is SIGKILLed
and publishing goes on through another broker while hakeeper restarts the dead one, which rejoins
with its own data (no wipe, no reset); then every broker is SIGKILLed at once and hakeeper brings
the cluster back by itself. At the end the checker compares every confirmed message with what the
consumer received, and each node's data directory with what it was: the demo fails if one
confirmed message is missing or a node's data was recreated.

`run_scenario` is the demo without its setup, so a test can run it on a cluster it already has.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from hakeeper.netlab.livedemo import Closable, Say, first_within, run_lab_demo, seconds, ticker
from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.lab import VHOST, RabbitLab, rabbitmq_spec

TAG, SUBNET = "rd", 9  # namespaces of the demo's own nodes rd1..rd3, addresses 10.96.9.0/24
QUEUE = "hk-demo"
RATE = 200  # messages a second: enough to see every fault, modest on a small machine
NEEDED = ("etcd", "rabbitmq-server", "rabbitmqctl")


@dataclass(frozen=True)
class Outcome:
    """What the demo measured; None where the step did not get that far."""

    kill_resume_s: float | None  # leader's broker killed -> first confirm through another broker
    outage_back_s: float | None  # every broker killed -> first confirm on a new connection
    confirmed: int
    delivered: int
    missing: int  # confirmed but never delivered: must be 0
    duplicates: int  # delivered more than once (allowed: at-least-once)
    data_kept: bool  # every node's mnesia schema and quorum-queue directories are the same files
    checked: bool
    verdict: str

    @property
    def ok(self) -> bool:
        resumed = None not in (self.kill_resume_s, self.outage_back_s)
        return self.checked and self.missing == 0 and self.confirmed > 0 and self.data_kept and resumed

    def result_line(self) -> str:
        return (f"RESULT kill_resume_s={seconds(self.kill_resume_s)} outage_back_s={seconds(self.outage_back_s)} "
                f"confirmed={self.confirmed} delivered={self.delivered} missing={self.missing} "
                f"duplicates={self.duplicates} data_kept={str(self.data_kept).lower()}")


def data_marker(lab: RabbitLab, name: str) -> tuple[int, int]:
    """What a wiped data directory would lose: the inodes of the node's mnesia schema and of its
    quorum-queue (Ra) directory."""
    d = lab.mnesia_dir(name)
    return os.stat(os.path.join(d, "schema.DAT")).st_ino, os.stat(os.path.join(d, "quorum")).st_ino


def broker_roles(lab: RabbitLab) -> dict[str, str]:
    """hakeeper's view of the broker clone: node -> Started / FAILED (absent: stopped)."""
    view = json.loads(lab.hk("status", "--json", timeout=30).stdout)
    roles: dict[str, str] = {}
    for rsc, entry in view["resources"].items():
        if rsc.partition(":")[0] == "rabbitmq":
            roles.update(dict.fromkeys(entry["running_on"], "Started"))
            roles.update(dict.fromkeys(entry["failed_on"], "FAILED"))
    return roles


def cluster_line(lab: RabbitLab, publisher: checker.Publisher, consumer: checker.Consumer) -> str:
    try:
        roles = broker_roles(lab)
    except Exception:  # the store may be down with the nodes; say so and go on
        roles = {}
    nodes = "  ".join(f"{n} {roles.get(n, 'Stopped')}" for n in lab.names)
    return (f"{nodes} | {len(publisher.confirmed_ids())} confirmed, {len(consumer.delivered())} delivered, "
            f"{publisher.retries} publishes retried")


def _since(at: float | None, start: float) -> float | None:
    return None if at is None else at - start


def run_scenario(lab: RabbitLab, say: Say, *, tick: float = 3.0, settle: float = 500) -> Outcome:
    """On a formed cluster of every node: the quorum queue leader's broker killed, then every broker."""
    checker.declare(lab.addr[lab.names[0]], vhost=VHOST, queue=QUEUE)
    before = {n: data_marker(lab, n) for n in lab.names}
    victim = lab.leader_of(QUEUE)
    hosts = [lab.addr[n] for n in sorted(lab.names, key=lambda n: n != victim)]
    publisher = checker.Publisher(hosts, vhost=VHOST, queue=QUEUE, tag="demo", rate=RATE)
    consumer = checker.Consumer([lab.addr[n] for n in lab.names], vhost=VHOST, queue=QUEUE)
    publisher.start()
    consumer.start()
    earlier: list[checker.Consumer] = []
    kill_resume = outage_back = None
    try:
        with ticker(say, lambda: cluster_line(lab, publisher, consumer), tick):
            say(f"publishing {RATE} messages a second with confirms to the quorum queue {QUEUE} "
                f"(its leader is on {victim}), consuming with manual acks")
            time.sleep(tick)
            killed = time.monotonic()
            say(f"SIGKILL of {victim}'s broker (the queue's leader)")
            lab.kill_broker(victim)
            got = first_within(lambda: (c := publisher.first_confirm_after(killed, lab.addr[victim])) and c[0], 120)
            kill_resume = _since(got, killed)
            say(f"confirms again through another broker {kill_resume:.2f}s after the kill" if kill_resume is not None
                else "no confirm through another broker within 120 s")
            say(f"hakeeper restarts {victim}'s broker; it rejoins with its own data (no reset)")
            lab.wait_cluster(3, settle)
            # From here on nothing is consumed until the cluster is back: what was confirmed
            # before the outage has to survive it in the queue.
            consumer.stop()
            earlier.append(consumer)
            time.sleep(tick)
            waiting = len(publisher.confirmed_ids() - set(consumer.delivered()))
            say(f"three brokers running again; the consumer pauses ({waiting} confirmed messages wait in the "
                "queue); now every broker is SIGKILLed at once")
            outage = time.monotonic()
            for name in lab.names:
                lab.kill_broker(name)
            back = first_within(lambda: publisher.first_confirm_on_a_new_connection(outage), settle)
            outage_back = _since(back, outage)
            say(f"confirms again {outage_back:.2f}s after the outage: hakeeper restarted the brokers in the order "
                "RabbitMQ needs" if outage_back is not None else f"no confirm within {settle:g}s of the outage")
            lab.wait_cluster(3, settle)
            consumer = checker.Consumer([lab.addr[n] for n in lab.names], vhost=VHOST, queue=QUEUE)
            consumer.start()
            say("three brokers running again; the consumer drains the queue")
    finally:
        verdict = checker.verdict(publisher, consumer, earlier=[c for c in earlier if c is not consumer])
    after = {n: data_marker(lab, n) for n in lab.names}
    kept = after == before
    say(f"checker: {verdict.describe()}; every node's data directory kept: {kept}")
    return Outcome(kill_resume, outage_back, verdict.confirmed, verdict.delivered, len(verdict.missing),
                   verdict.duplicates, kept, verdict.ok, verdict.describe())


def run_demo(*, workdir: str | None = None, say: Say = print) -> int:
    def body(base: str, timed: Say, labs: list[Closable]) -> Outcome:
        timed("building three nodes in network namespaces (etcd, a hakeeper agent and RabbitMQ on each); "
              "about a minute")
        lab = RabbitLab(base, tag=TAG, subnet=SUBNET)
        labs.append(lab)
        lab.start()
        lab.apply(rabbitmq_spec(lab))
        lab.wait_cluster(3, 900)
        lab.setup_openstack_vhost(lab.names[0])
        timed("three brokers form one cluster under hakeeper's native rabbitmq class")
        return run_scenario(lab, timed)

    return run_lab_demo("rabbitmq", list(NEEDED), body, workdir=workdir, say=say)
