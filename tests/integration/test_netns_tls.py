"""The namespace cluster of issue 4 with etcd as production runs it: TLS on every client
connection, client certificates, and RBAC giving the agents' user the cluster's prefix only.
Three nodes, a fenced group; a node dies, the group comes back elsewhere after fencing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import needs_binary, needs_root
from hakeeper.agent.nscluster import NsCluster

pytestmark = [pytest.mark.slow, pytest.mark.root]


def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return got


@pytest.fixture(scope="module")
def cl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsCluster]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("etcdctl", "etcd-client")
    needs_binary("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents")
    c = NsCluster(str(tmp_path_factory.mktemp("hks")), tag="s", subnet=24, tls=True)
    try:
        c.start()
        c.apply(c.spec())
        until(lambda: c.group_on() and c.answers(), 90, "the group to start")
        yield c
    finally:
        c.close()


def test_node_death_over_tls_and_rbac(cl: NsCluster) -> None:
    node = cl.healthy(60)
    cl.kill_node(node)
    until(lambda: cl.answers(0.2), 45, "the VIP to answer again")
    new = until(lambda: cl.group_on(), 15, "the group placed")
    assert new != node
    assert any(e["kind"] == "fenced" and node in e["message"] for e in cl.events())


def test_the_cluster_refuses_plain_text_and_other_prefixes(cl: NsCluster) -> None:
    env = {k: v for k, v in cl.env.items() if k not in ("HAKEEPER_CACERT", "HAKEEPER_CERT", "HAKEEPER_KEY")}
    plain = subprocess.run(
        [sys.executable, "-m", "hakeeper", "status", "--etcd", cl.endpoints()],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert plain.returncode == 3 and "did not answer in plain text" in plain.stderr, plain
    other = subprocess.run(
        [sys.executable, "-m", "hakeeper", "status", "--etcd", cl.endpoints(), "--cluster", "another"],
        env=cl.env, capture_output=True, text=True, timeout=60,
    )
    assert other.returncode == 3 and "denied" in other.stderr, other
