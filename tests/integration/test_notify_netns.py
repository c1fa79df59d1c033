"""Clone notifications end to end: three nodes in network namespaces (etcd member and agent each)
run a notify=true clone of a test OCF agent (tests/integration/ocf_notifylog) that writes down
every action and the notify environment it got. One node goes to standby: its instance stops,
and the pre- and post-stop notifications must reach the right nodes, with Pacemaker's lists, in
the right order. Then every notification fails and the node comes back: its instance starts all
the same, and nothing counts the failures against the resource."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import needs_binary, needs_root
from conftest import until as _until
from hakeeper.agent.nscluster import NsCluster

pytestmark = [pytest.mark.slow, pytest.mark.root]

AGENT = Path(__file__).with_name("ocf_notifylog")




def spec(c: NsCluster, logdir: str) -> str:
    names = ", ".join(f"{{name: {n}}}" for n in c.names)
    return f"""\
cluster: {{name: {c.tag}, stonith-enabled: false, no-quorum-policy: stop}}
nodes: [{names}]
resources:
  primitives:
    - id: told
      agent: ocf:hktest:notifylog
      params: {{dir: "{logdir}"}}
      operations: [{{name: monitor, interval: 2s, timeout: 10s}}]
  clones:
    - {{id: told-clone, child: told, meta: {{notify: true}}}}
"""


class Logs:
    """What the test agent wrote on each node: one JSON line per action."""

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir

    def of(self, node: str) -> list[dict[str, Any]]:
        path = os.path.join(self.logdir, f"{node}.jsonl")
        if not os.path.exists(path):
            return []
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]

    def notes(self, node: str, kind: str, op: str, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.of(node) if e["action"] == "notify" and e["at"] >= since
                and e["env"].get("type") == kind and e["env"].get("operation") == op]

    def actions(self, node: str, action: str, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.of(node) if e["action"] == action and e["at"] >= since]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NsCluster, Logs]]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    work = tmp_path_factory.mktemp("hkn")
    # The test agent in an OCF tree of its own; agents and commands find it through the
    # environment the cluster's processes inherit.
    provider = work / "ocf" / "resource.d" / "hktest"
    provider.mkdir(parents=True)
    shutil.copy(AGENT, provider / "notifylog")
    (provider / "notifylog").chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)
    logdir = work / "told"
    logdir.mkdir()
    saved = os.environ.get("HAKEEPER_OCF_ROOT")
    os.environ["HAKEEPER_OCF_ROOT"] = str(work / "ocf")
    c = NsCluster(str(work / "c"), tag="n", subnet=42, tls=False)
    try:
        c.start()
        until_(lambda: all(s == "online" for s in c.status()["nodes"].values()), 90, "three nodes online")
        c.apply(spec(c, str(logdir)))
        yield c, Logs(str(logdir))
    finally:
        c.close()
        if saved is None:
            os.environ.pop("HAKEEPER_OCF_ROOT", None)
        else:
            os.environ["HAKEEPER_OCF_ROOT"] = saved


def test_a_stopped_instance_is_announced_before_and_after_to_the_right_nodes(
        cluster: tuple[NsCluster, Logs]) -> None:
    c, logs = cluster
    c1, c2, c3 = c.names
    # Started everywhere, and every node heard of the starts after them (a start changes
    # nothing for an instance that is not active yet: no node is told before its own start).
    until_(lambda: all(logs.actions(n, "start") for n in c.names), 90, "the clone started on every node")
    until_(lambda: all(logs.notes(n, "post", "start") for n in c.names), 60, "post-start notifications")
    for n in c.names:
        note = logs.notes(n, "post", "start")[-1]
        assert note["clone_notify"] == "true"
        assert logs.actions(n, "start")[0]["at"] <= note["at"]
        assert n in note["env"]["start_uname"].split() + note["env"]["active_uname"].split()
    until_(lambda: not c.status().get("plan", {}).get("outstanding"), 60, "a settled cluster")
    time.sleep(1)  # nothing more is on its way

    t0 = time.time()
    c.hk("node", "standby", c3)
    until_(lambda: logs.actions(c3, "stop", t0), 60, f"the instance on {c3} to stop")
    until_(lambda: all(logs.notes(n, "post", "stop", t0) for n in (c1, c2)), 60, "post-stop notifications")
    stop = logs.actions(c3, "stop", t0)[0]

    # Before the stop: every node with an active instance, the stopping one included.
    for n in (c1, c2, c3):
        pre = logs.notes(n, "pre", "stop", t0)
        assert len(pre) == 1, (n, logs.of(n))
        assert pre[0]["at"] <= stop["at"]
    # After it: the two that still run one, and not the node that stopped.
    for n in (c1, c2):
        post = logs.notes(n, "post", "stop", t0)
        assert len(post) == 1 and post[0]["at"] >= stop["at"], (n, logs.of(n))
    time.sleep(2)  # a stray notification would have arrived by now
    assert logs.notes(c3, "post", "stop", t0) == []
    assert not any(logs.notes(n, kind, "start", t0) for n in c.names for kind in ("pre", "post"))

    # Pacemaker's lists: the transition's stops, and who was active before it.
    env = logs.notes(c1, "post", "stop", t0)[0]["env"]
    assert env["stop_uname"] == c3 and env["stop_resource"].startswith("told:")
    assert sorted(env["active_uname"].split()) == sorted(c.names)
    assert len(env["active_resource"].split()) == 3
    assert env["start_uname"] == " " and env["start_resource"] == " "  # Pacemaker's empty list
    assert env["key_operation"] == "stopped" and env["key_type"] == "post"
    assert env["all_uname"].split() == sorted(c.names)
    assert logs.notes(c3, "pre", "stop", t0)[0]["env"]["stop_uname"] == c3
    # The agent reported them as notifications, none as a failure.
    kinds = [e["kind"] for e in c.events() if e.get("at", 0) >= t0 - 1]
    assert kinds.count("notify") >= 5 and "notify-failed" not in kinds


def test_failed_notifications_do_not_fail_the_resource(cluster: tuple[NsCluster, Logs]) -> None:
    c, logs = cluster
    c1, c2, c3 = c.names
    Path(logs.logdir, "fail-notify").touch()
    t0 = time.time()
    c.hk("node", "online", c3)
    until_(lambda: logs.actions(c3, "start", t0), 60, f"the instance on {c3} to start again")
    until_(lambda: all(logs.notes(n, "post", "start", t0) for n in c.names), 60, "post-start notifications")
    start = logs.actions(c3, "start", t0)[0]
    # Told before the start (the two active instances) and after it (all three), though every
    # notification failed: a failed notify does not hold up the transition.
    assert sorted(n for n in c.names if logs.notes(n, "pre", "start", t0)) == [c1, c2]
    assert all(logs.notes(n, "pre", "start", t0)[0]["at"] <= start["at"] for n in (c1, c2))
    assert all(logs.notes(n, "post", "start", t0)[0]["at"] >= start["at"] for n in c.names)
    assert logs.notes(c1, "post", "start", t0)[0]["env"]["start_uname"] == c3

    def settled() -> bool:
        view = c.status()
        return sorted(view["resources"]["told"]["running_on"]) == sorted(c.names) and not view["plan"]["outstanding"]

    until_(settled, 30, "the clone running everywhere")
    time.sleep(2)  # a replan caused by the failures would show by now
    view = c.status()
    assert view["failures"] == [] and view["resources"]["told"]["failed_on"] == []
    assert logs.actions(c3, "start", t0) == [start] and not any(logs.actions(n, "stop", t0) for n in c.names)
    kinds = [e["kind"] for e in c.events() if e.get("at", 0) >= t0]
    assert kinds.count("notify-failed") >= 5 and "notify" not in kinds
    assert not any(k.endswith("-failed") and k != "notify-failed" for k in kinds)


def until_(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    return _until(cond, timeout, what, every=0.2)
