"""The newcomer's walkthrough in docs/agent.md, run exactly as written.

The shell blocks between the walkthrough markers run in one bash process, as a reader pasting them
into one root shell would; the teardown block runs afterwards whatever happened. The checks here
are the ones the text asks the reader to make: curl answers through the VIP before and after the
plug is pulled, n1 is fenced before the group starts elsewhere, and after n1 comes back the group
stays where it is (stickiness) while the clone runs on all three nodes again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import needs_binary, needs_ocf_agent, needs_root
from hakeeper.netlab.lab import namespaces as netns_list

DOC = Path(__file__).resolve().parents[2] / "docs" / "agent.md"
ETCD = "10.93.0.1:2379,10.93.0.2:2379,10.93.0.3:2379"

pytestmark = [pytest.mark.root, pytest.mark.slow]


def shell_blocks(text: str, marker: str) -> list[str]:
    """The ```sh blocks between `<!-- MARKER:start -->` and `<!-- MARKER:end -->`."""
    section = re.search(rf"<!-- {marker}:start -->(.*?)<!-- {marker}:end -->", text, re.S)
    assert section is not None, f"docs/agent.md has no {marker} section"
    return re.findall(r"```sh\n(.*?)```", section.group(1), re.S)


def test_the_blocks_are_found() -> None:
    text = DOC.read_text()
    assert len(shell_blocks(text, "walkthrough")) == 4
    assert len(shell_blocks(text, "walkthrough-teardown")) == 1


def test_a_newcomer_gets_a_cluster_that_fails_over() -> None:
    needs_root()
    for tool, package in (("etcd", "etcd-server"), ("curl", "curl"), ("hakeeper", "hakeeper: ./scripts/setup")):
        needs_binary(tool, package)
    needs_ocf_agent("heartbeat/Dummy", "resource-agents")
    text = DOC.read_text()
    steps = shell_blocks(text, "walkthrough")
    teardown = "\n".join(shell_blocks(text, "walkthrough-teardown"))
    if any(ns.startswith("hkw-") for ns in netns_list()) or os.path.exists("/tmp/hkw"):
        pytest.fail("a walkthrough is already running here (hkw-* namespaces or /tmp/hkw): tear it down first")
    # One shell for every step, as the reader has; a marker line after each step tells the steps'
    # output apart. `set -e` makes any failing command (a timeout in a wait loop) fail the run.
    script = "set -euo pipefail\n" + "".join(f"{step}\necho '@@step {i}'\n" for i, step in enumerate(steps, 1))
    try:
        run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240)
        outputs = dict(_split_steps(run.stdout))
        assert run.returncode == 0, f"the walkthrough failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        assert "hello" in outputs[2], "curl did not reach the web service through the VIP"
        assert "hello" in outputs[3], "curl did not reach the web service after n1 lost power"
        assert re.search(r"fenced: n1 fenced", outputs[3]), outputs[3]
        view = _status()
        assert all(word == "online" for word in view["nodes"].values()), view["nodes"]
        running = {rsc: entry["running_on"] for rsc, entry in view["resources"].items()}
        # The group stayed where it went after the failure: stickiness beats n1's preference.
        assert running["vip"] == running["web"] and running["vip"][0] in ("n2", "n3"), running
        assert sorted(running["ping"]) == ["n1", "n2", "n3"], running
        # What the observer sees, not what hakeeper says: the VIP is on exactly one node.
        holders = [n for n in ("n1", "n2", "n3") if "10.93.0.100/" in _addresses(f"hkw-{n}")]
        assert holders == running["vip"], (holders, running["vip"])
    finally:
        subprocess.run(["bash", "-c", teardown], capture_output=True, timeout=60)
    assert not any(ns.startswith("hkw-") for ns in netns_list()), "the teardown left namespaces behind"
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert "hkw-" not in links, "the teardown left links behind"
    assert not os.path.exists("/tmp/hkw")


def _split_steps(stdout: str) -> list[tuple[int, str]]:
    steps, current = [], []
    for line in stdout.splitlines():
        found = re.fullmatch(r"@@step (\d+)", line)
        if found:
            steps.append((int(found.group(1)), "\n".join(current)))
            current = []
        else:
            current.append(line)
    return steps


def _status() -> dict[str, object]:
    out = subprocess.run(
        ["hakeeper", "status", "--json"], capture_output=True, text=True, timeout=30,
        env={**os.environ, "HAKEEPER_ETCD": ETCD},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _addresses(ns: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-o", "addr", "show"], capture_output=True, text=True).stdout
