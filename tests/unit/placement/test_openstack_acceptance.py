"""The acceptance scenario: the OpenStack cluster of Listing 2 loses alice.

Everything first runs where the initial placement puts it (alice, for the controller stack);
then alice dies. Fencing comes first; the stack moves together to one surviving node in the order
the constraints demand; nova-compute-host1 is recovered elsewhere while host2 and host3 stay put.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "openstack-pacemaker.yaml"
STACK = ["p_IP", "p_mysql", "p_rabbitmq", "p_keystone", "p_quantum-server",
         "p_quantum-agent-dhcp", "p_quantum-agent-l3", "p_glance-registry", "p_glance-api",
         "p_nova-api-ec2", "p_nova-scheduler", "p_cinder-volume", "p_cinder-api"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def simulate_fail_alice() -> dict[str, Any]:
    result = run("simulate", str(EXAMPLE), "--fail", "alice", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_alice_is_fenced_and_the_stack_moves_together_in_order() -> None:
    data = simulate_fail_alice()
    actions = {a["id"]: a for a in data["actions"]}
    succ: dict[int, set[int]] = {}
    for a, b in data["orderings"]:
        succ.setdefault(a, set()).add(b)

    def find(task: str, rsc: str | None, node: str | None = None) -> int:
        for a in actions.values():
            if a["task"] == task and a.get("resource") == rsc and (node is None
                                                                    or a["node"] == node):
                return int(a["id"])
        raise AssertionError(f"no {task} {rsc} {node} in {list(actions.values())}")

    def before(x: int, y: int) -> bool:
        seen, todo = set(), [x]
        while todo:
            for nxt in succ.get(todo.pop(), ()):
                if nxt == y:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    fence = find("fence", None, "alice")
    assert actions[fence]["reason"] == "peer is no longer part of the cluster"
    placement = data["placement"]
    survivor = placement["p_IP"][0]
    assert survivor in ("bob", "charlie")
    for rsc in STACK:
        assert data["current"][rsc] == ["alice"], rsc
        assert placement[rsc] == [survivor], rsc
        start = find("start", rsc, survivor)
        assert before(fence, start), f"{rsc} starts before alice is fenced"
    start = {r: find("start", r) for r in STACK}
    chain = [("p_IP", "p_mysql"), ("p_mysql", "p_rabbitmq"), ("p_rabbitmq", "p_keystone"),
             ("p_IP", "p_keystone"), ("p_keystone", "p_quantum-server"),
             ("p_quantum-agent-l3", "p_glance-registry"), ("p_glance-api", "p_nova-api-ec2"),
             ("p_keystone", "p_cinder-volume")]
    for first, then in chain:
        assert before(start[first], start[then]), f"{first} must start before {then}"
    # Compute: host1 comes back on a survivor; host2 and host3 do not move.
    assert data["current"]["p_nova-compute-host1"] == ["alice"]
    assert placement["p_nova-compute-host1"][0] in ("bob", "charlie")
    assert placement["p_nova-compute-host2"] == ["bob"]
    assert placement["p_nova-compute-host3"] == ["charlie"]
    for rsc in ("p_nova-compute-host2", "p_nova-compute-host3"):
        assert not [a for a in actions.values() if a.get("resource") == rsc]
    assert before(fence, find("start", "p_nova-compute-host1"))
    # Nothing is started on the lost node.
    assert not [a for a in actions.values() if a["task"] == "start" and a["node"] == "alice"]


def test_simulate_prints_pacemakers_transition_summary() -> None:
    result = run("simulate", str(EXAMPLE), "--fail", "alice")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("Current cluster status:") < out.index("Transition Summary:") \
        < out.index("Revised Cluster Status:")
    summary = out[out.index("Transition Summary:"):out.index("Revised Cluster Status:")]
    lines = [line for line in summary.splitlines() if line.startswith("  * ")]
    assert lines[0] == "  * Fence (reboot) alice 'peer is no longer part of the cluster'"
    moves = {line.split()[2]: line.split() for line in lines if line.split()[1] == "Move"}
    assert moves["p_IP"][3:7] == ["(", "alice", "->", moves["p_IP"][6]]
    assert "p_nova-compute-host2" not in summary


def test_explain_names_what_made_the_scores() -> None:
    result = run("explain", str(EXAMPLE), "p_nova-compute-host1")
    assert result.returncode == 0, result.stderr
    assert "placed on alice" in result.stdout
    assert "lo_host1_prefer_alice" in result.stdout
    data = json.loads(run("explain", str(EXAMPLE), "p_nova-compute-host1", "--json").stdout)
    assert data["p_nova-compute-host1"]["scores"]["alice"] == 10000


def test_bad_node_is_refused_with_status_2() -> None:
    result = run("simulate", str(EXAMPLE), "--fail", "dave")
    assert result.returncode == 2
    assert "unknown node 'dave'" in result.stderr and "Traceback" not in result.stderr
