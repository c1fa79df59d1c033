"""The MySQL VIP as the seeds deploy it, for real: a VIP and haproxy (one group, on one node) in
front of three MariaDB Galera nodes run by Pacemaker's unmodified galera agent under hakeeper,
haproxy's health check asking hakeeper's clustercheck on every node, one writer at a time.

A client writes through the VIP only; the database of the node haproxy writes to is SIGKILLed;
writes go on through another node; the independent checker then finds every acknowledged row on
every node. `hakeeper galera status` shows each node's wsrep state and the VIP's writer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql  # type: ignore[import-untyped]
import pytest

from conftest import needs_binary, needs_ocf_agent, needs_root
from hakeeper.galera import checker, live
from hakeeper.galera.lab import CHECK_PASSWORD, CHECK_USER, GaleraLab, galera_spec


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GaleraLab]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("mariadbd", "mariadb-server")
    needs_binary("haproxy", "haproxy")
    needs_ocf_agent("heartbeat/galera", "resource-agents")
    cluster = GaleraLab(str(tmp_path_factory.mktemp("hkgv")), tag="gv", subnet=3)
    try:
        cluster.form(galera_spec(cluster, front=True))
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def client_cnf(lab: GaleraLab) -> str:
    path = Path(lab.workdir, "client.cnf")
    path.write_text(f"[client]\nuser = {CHECK_USER}\npassword = {CHECK_PASSWORD}\n")
    path.chmod(0o600)
    return str(path)


def _writer_of_vip(lab: GaleraLab, cnf: str, timeout: float) -> str:
    """The node a new client of the VIP lands on, once the VIP answers."""
    deadline = time.monotonic() + timeout
    while True:
        node, why = live.vip_writer(lab.vip, cnf)
        if node is not None:
            return node
        if time.monotonic() > deadline:
            raise TimeoutError(f"the VIP {lab.vip} took no client after {timeout:g}s: {why}")
        time.sleep(0.3)


def _landings(lab: GaleraLab, cnf: str, count: int) -> set[str]:
    return {_writer_of_vip(lab, cnf, 30) for _ in range(count)}


@pytest.mark.timeout(900)
def test_the_vip_writer_dies_writes_go_on_through_another_node_and_nothing_is_lost(
    lab: GaleraLab, client_cnf: str
) -> None:
    first = _writer_of_vip(lab, client_cnf, 120)
    # One writer at a time: every new client lands on the same node.
    assert _landings(lab, client_cnf, 8) == {first}
    writer = checker.Writer([lab.vip], CHECK_USER, CHECK_PASSWORD, interval=0.05)
    writer.start()
    try:
        started = time.monotonic()
        while writer.first_ack_after(started) is None and time.monotonic() < started + 30:
            time.sleep(0.1)
        assert writer.first_ack_after(started) is not None, f"no write through the VIP: {writer.errors[-3:]}"
        killed = time.monotonic()
        lab.kill_database(first)
        deadline = killed + 60
        while writer.first_ack_after(killed + 0.5) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        resumed = writer.first_ack_after(killed + 0.5)
        assert resumed is not None, f"no write through the VIP after the kill: {writer.errors[-3:]}"
        second = _writer_of_vip(lab, client_cnf, 30)
        assert second != first
        print(f"\nVIP writer {first} killed: first write acknowledged through the VIP (via {second}) "
              f"{resumed - killed:.2f}s later; longest stall {writer.longest_gap(killed - 1, resumed + 1):.2f}s")
        time.sleep(2)
    finally:
        writer.stop()
    survivors = {n: a for n, a in lab.addr.items() if n != first}
    verdict = checker.verify(survivors, writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    print(f"checker, survivors: {verdict.describe()}")
    assert verdict.ok, verdict.describe()
    # hakeeper brings the killed database back through the agent; it rejoins (the real agent's
    # promote of a joiner can fail while the machine is loaded; hakeeper retries it).
    lab.wait_quiet(480)
    # Still one writer once every node is back: the returned node does not take clients back
    # (the writer may have moved once more if it was the donor of the rejoin, as it should).
    assert len(_landings(lab, client_cnf, 8)) == 1
    verdict = checker.verify(lab.addr, writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    print(f"checker, every node: {verdict.describe()}")
    assert verdict.ok, verdict.describe()
    assert verdict.acknowledged > 0


@pytest.mark.timeout(300)
def test_galera_status_shows_each_nodes_wsrep_state_and_the_vip_writer(lab: GaleraLab, client_cnf: str) -> None:
    writer = _writer_of_vip(lab, client_cnf, 60)
    doc = json.loads(lab.hk("galera", "status", "--json", "--vip", lab.vip, "--defaults-file", client_cnf).stdout)
    nodes = {n["node"]: n for n in doc["nodes"]}
    assert sorted(nodes) == lab.names
    uuids = set()
    for name, n in nodes.items():
        assert n["live"]["code"] == 200, n["live"]
        wsrep = n["live"]["wsrep"]
        assert wsrep["state_comment"] == "Synced" and wsrep["cluster_size"] == 3 and wsrep["node_name"] == name
        assert wsrep["last_committed"] > 0
        uuids.add(wsrep["cluster_uuid"])
    assert len(uuids) == 1
    assert [n for n, v in nodes.items() if v["vip_writer"]] == [writer] and doc["vip"]["writer"] == writer
    text = lab.hk("galera", "status", "--vip", lab.vip, "--defaults-file", client_cnf).stdout
    print(f"\n{text}")
    assert f"{writer}" in text and "<- VIP writer" in text and CHECK_PASSWORD not in text
    # A read-only node answers 503: haproxy stops sending it clients.
    victim = next(n for n in lab.names if n != writer)
    conn = pymysql.connect(host=lab.addr[victim], user=CHECK_USER, password=CHECK_PASSWORD, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL read_only = ON")
        probe = live.probe_one(victim, lab.addr[victim], 9200, 2.0)
        assert (probe.code, probe.reason) == (503, "read-only")
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL read_only = OFF")
        conn.close()


@pytest.mark.timeout(1500)
def test_the_demo_scenario_a_kill_then_a_full_outage_loses_nothing(lab: GaleraLab) -> None:
    """What `hakeeper demo galera` shows, on this module's cluster: the VIP writer's database
    killed, then every node powered off and on; the cluster comes back by itself, and the
    checker finds every acknowledged row on every node."""
    from hakeeper.galera.demo import run_scenario

    said: list[str] = []
    outcome = run_scenario(lab, said.append, tick=5.0)
    print("\n" + "\n".join(said) + "\n" + outcome.result_line())
    assert outcome.checked and outcome.missing == 0 and outcome.acknowledged > 0, outcome.verdict
    assert outcome.kill_resume_s is not None and outcome.outage_writable_s is not None, said
    assert outcome.ok
