"""Seed 002's active/passive broker under hakeeper: one rabbitmq-server (`rabbitmq:single`, node
rabbit@hkrmq whichever host runs it) with its data on a directory every node mounts, in a group
with its VIP, fencing on. The holder's link goes dead (the host is lost, its processes live on):
hakeeper fences it (the namespace fence kills its processes) before the group starts on another
node, which boots the same node on the same data; every message confirmed on a durable queue,
before and after the move, is delivered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator

import pika  # type: ignore[import-untyped]
import pytest

from conftest import needs_binary, needs_root
from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.lab import IFNAME, SINGLE_HOST, RabbitLab, single_spec

QUEUE = "hk-ap"
NODE = f"rabbit@{SINGLE_HOST}"


class SingleLab(RabbitLab):
    shared: str


@pytest.fixture(scope="module")
def lab() -> Iterator[SingleLab]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("rabbitmq-server", "rabbitmq-server")
    workdir = tempfile.mkdtemp(prefix="hkra-", dir="/tmp")
    cluster = SingleLab(workdir, tag="a", subnet=1)
    try:
        cluster.shared = os.path.join(workdir, "shared")  # stands in for CephFS or DRBD
        os.makedirs(cluster.shared)
        shutil.chown(cluster.shared, "rabbitmq", "rabbitmq")
        cluster.cli_home = cluster.shared  # the broker's cookie is there
        cluster.start()
        cluster.apply(single_spec(cluster, cluster.shared))
        yield cluster
    finally:
        cluster.close()


def _serving(lab: RabbitLab, timeout: float, not_on: str | None = None) -> tuple[str, float]:
    """Until one node other than `not_on` holds the VIP and its broker runs: (node, when)."""
    deadline = time.monotonic() + timeout
    while True:
        holders = [n for n in lab.holders(lab.vip) if n != not_on]
        if len(holders) == 1 and lab.ctl(holders[0], "-q", "check_running", tool="rabbitmq-diagnostics",
                                         node=NODE, timeout=20).returncode == 0:
            return holders[0], time.monotonic()
        assert time.monotonic() < deadline, f"no broker on the VIP within {timeout:g}s (holders: {holders})"
        time.sleep(1)


def _declare_durable_classic(host: str) -> None:
    params = pika.ConnectionParameters(host=host, credentials=pika.PlainCredentials("guest", "guest"),
                                       connection_attempts=10, retry_delay=1)
    conn = pika.BlockingConnection(params)
    try:
        conn.channel().queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "classic"})
    finally:
        conn.close()


def _events(lab: RabbitLab) -> list[dict[str, object]]:
    out = lab.hk("events", "--json", "--last", "500")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.timeout(600)
def test_the_broker_moves_with_its_vip_fenced_first_keeping_its_messages(lab: SingleLab) -> None:
    holder, _ = _serving(lab, 240)
    _declare_durable_classic(lab.vip)
    schema = os.path.join(lab.shared, "mnesia", NODE, "schema.DAT")
    before = os.stat(schema).st_ino
    pub = checker.Publisher([lab.vip], queue=QUEUE, tag="ap", rate=200)
    pub.start()
    try:
        deadline = time.monotonic() + 30
        while pub.first_confirm_after(0) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pub.first_confirm_after(0) is not None, "no confirm before the move"
        old_pids = lab.broker_pids(holder)
        assert old_pids
        lost = time.monotonic()
        lab.hosts[holder].ip("link", "set", IFNAME, "down")  # the host is lost; its broker lives on
        new_holder, up = _serving(lab, 300, not_on=holder)
        deadline = time.monotonic() + 60
        while pub.first_confirm_after(up) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        first = pub.first_confirm_after(up)
        assert first is not None, "no confirm through the moved broker"
        before_move = len([c for c in pub.confirmed.values() if c[0] < lost])
        time.sleep(2)
    finally:
        pub.stop()
    print(f"broker moved {holder} -> {new_holder}: VIP and broker up {up - lost:.1f}s after the link died, "
          f"first confirm after {first[0] - lost:.1f}s; {before_move} confirmed before the move")
    assert not any(os.path.exists(f"/proc/{pid}") for pid in old_pids), "the lost holder's broker still runs"
    deadline = time.monotonic() + 120
    while True:  # the start's event is written when the agent's start returns, after the broker runs
        events = _events(lab)
        fenced = [e for e in events if e.get("kind") == "fenced" and e.get("victim") == holder]
        started = [e for e in events if e.get("node") == new_holder and e.get("rsc") == "rabbitmq"
                   and e.get("kind") == "start"]
        if fenced and started:
            break
        assert time.monotonic() < deadline, [(e.get("node"), e.get("kind"), e.get("rsc")) for e in events][-40:]
        time.sleep(2)
    # The start's event is written when it ends; "... in 12.34s" says when it began.
    took = re.search(r" in ([0-9.]+)s", str(started[-1]["message"]))
    began = float(str(started[-1]["at"])) - (float(took.group(1)) if took else 0.0)
    assert float(str(fenced[0]["at"])) <= began, (fenced[0], started[-1])
    con = checker.Consumer([lab.vip], queue=QUEUE)
    con.start()
    verdict = checker.verdict(pub, con)
    assert verdict.ok and before_move > 0 and verdict.confirmed > before_move, verdict.describe()
    assert os.stat(schema).st_ino == before, "the broker's data was recreated on the new host"
