"""Three real MariaDB Galera nodes under hakeeper agents running Pacemaker's unmodified
ocf:heartbeat:galera as a promotable clone; an independent checker counts every acknowledged row.

One cluster for the module (it takes about a minute to form); the tests run in order and each
leaves it whole again: formation, one database killed. (The full outage is not yet here: see
docs/galera.md.)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator

import pytest

from conftest import needs_binary, needs_ocf_agent, needs_root
from hakeeper.galera import checker
from hakeeper.galera.lab import CHECK_PASSWORD, CHECK_USER, GaleraLab, galera_spec


@pytest.fixture(scope="module")
def lab() -> Iterator[GaleraLab]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("mariadbd", "mariadb-server")
    needs_binary("mariadb-install-db", "mariadb-server")
    needs_ocf_agent("heartbeat/galera", "resource-agents")
    workdir = tempfile.mkdtemp(prefix="hkg-", dir="/tmp")
    cluster = GaleraLab(workdir)
    try:
        cluster.start()
        cluster.apply(galera_spec(cluster))
        first = cluster.wait_synced(1, 150)[0]
        cluster.create_check_user(first)
        checker.prepare(cluster.addr[first], CHECK_USER, CHECK_PASSWORD)
        cluster.wait_synced(3, 150)
        yield cluster
    finally:
        cluster.close()


def _verify(lab: GaleraLab, writer: checker.Writer) -> checker.Verdict:
    verdict = checker.verify(lab.addr, writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    assert verdict.ok, verdict.describe()
    assert verdict.acknowledged > 0
    return verdict


@pytest.mark.timeout(400)
def test_the_real_agent_forms_the_cluster_and_every_row_is_everywhere(lab: GaleraLab) -> None:
    assert sorted(lab.synced()) == lab.names
    writer = checker.Writer([lab.addr[n] for n in lab.names], CHECK_USER, CHECK_PASSWORD)
    writer.start()
    time.sleep(2)
    writer.stop()
    _verify(lab, writer)
    # The bootstrap left no stale marker behind: a new incarnation would start a second cluster.
    text = lab.hk("status").stdout
    assert "galera-bootstrap" not in text


@pytest.mark.timeout(400)
def test_one_database_killed_writes_continue_and_it_rejoins(lab: GaleraLab) -> None:
    victim, *others = lab.names
    writer = checker.Writer([lab.addr[n] for n in others], CHECK_USER, CHECK_PASSWORD)
    writer.start()
    try:
        time.sleep(1)
        killed = time.monotonic()
        lab.kill_database(victim)
        deadline = time.monotonic() + 30
        while writer.first_ack_after(killed + 0.5) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert writer.first_ack_after(killed + 0.5) is not None, "no write acknowledged after the kill"
        lab.wait_synced(3, 120)  # hakeeper restarted it through the agent; it rejoined
        time.sleep(1)
    finally:
        writer.stop()
    _verify(lab, writer)
