"""`hakeeper simulate` and `explain` on small native specs: events, state files, CIB input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

SPEC = """\
cluster:
  stonith-enabled: false
  resource-stickiness: 100
nodes:
  - name: n1
  - name: n2
resources:
  primitives:
    - id: ip
      agent: vip
    - id: web
      agent: systemd:apache2
      meta: {migration-threshold: 1}
  groups:
    - id: g
      members: [ip, web]
constraints:
  location:
    - {id: prefer-n1, resource: g, node: n1, score: 50}
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def simulate(tmp_path: Path, *args: str) -> dict[str, Any]:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    result = run("simulate", str(path), "--json", *args)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_monitor_failure_at_the_threshold_moves_the_group(tmp_path: Path) -> None:
    data = simulate(tmp_path, "--op-fail", "web:n1")
    assert data["current"] == {"ip": ["n1"], "web": ["n1"]}
    assert data["placement"] == {"ip": ["n2"], "web": ["n2"]}
    assert [line.split()[1:3] for line in data["summary"]] == [["Move", "ip"], ["Recover", "web"]]


def test_standby_moves_everything_away(tmp_path: Path) -> None:
    data = simulate(tmp_path, "--standby", "n1")
    assert data["placement"] == {"ip": ["n2"], "web": ["n2"]}


def test_lost_node_without_fencing_restarts_elsewhere(tmp_path: Path) -> None:
    data = simulate(tmp_path, "--fail", "n1")
    assert not [a for a in data["actions"] if a["task"] == "fence"]
    assert data["placement"] == {"ip": ["n2"], "web": ["n2"]}


def test_state_file_is_the_current_status(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("resources:\n  - {resource: ip, node: n2}\n  - {resource: web, node: n2}\n")
    data = simulate(tmp_path, "--state", str(state))
    # Stickiness (2 x 100) outweighs the preference for n1 (50): nothing moves.
    assert data["actions"] == [] and data["placement"] == {"ip": ["n2"], "web": ["n2"]}


def test_explain_names_the_contributions(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    out = run("explain", str(path), "g")
    assert out.returncode == 0, out.stderr
    assert "ip: placed on n1" in out.stdout and "prefer-n1" in out.stdout
    assert "member 2 of group g" in out.stdout


def test_cib_input_is_read_by_the_importer() -> None:
    cib = Path("/work/shared/pacemaker-scheduler-2.1.5/xml/rec-node-2.xml")
    if not cib.is_file():
        return
    out = run("simulate", str(cib))
    assert out.returncode == 0, out.stderr
    assert "* Fence (reboot) node1 'node is unclean'" in out.stdout


TICKET_SPEC = SPEC + """\
  ticket:
    - {id: g-needs-site, ticket: site-a, resource: g}
"""


def _summary(out: str) -> list[str]:
    lines = out.split("Transition Summary:\n", 1)[1].split("\n\n", 1)[0]
    return [" ".join(line.split()) for line in lines.splitlines() if line.strip()]


def test_simulate_ticket_events(tmp_path: Path) -> None:
    spec = tmp_path / "site.yaml"
    spec.write_text(TICKET_SPEC)
    # Without a state the ticket is not granted: nothing guarded runs; granting starts it.
    granted = run("simulate", str(spec), "--ticket-grant", "site-a")
    assert granted.returncode == 0, granted.stderr
    assert _summary(granted.stdout) == ["* Start ip ( n1 )", "* Start web ( n1 )"]
    # Revoking presupposes it was granted: the group ran, and stops.
    revoked = run("simulate", str(spec), "--ticket-revoke", "site-a", "--json")
    assert revoked.returncode == 0, revoked.stderr
    data = json.loads(revoked.stdout)
    assert {(a["task"], a["resource"]) for a in data["actions"]} == {("stop", "ip"), ("stop", "web")}
    assert data["events"]["tickets"] == {"site-a": "revoke"}
    standby = run("simulate", str(spec), "--ticket-standby", "site-a")
    assert _summary(standby.stdout)[0].startswith("* Stop ip ( n1 )")
    both = run("simulate", str(spec), "--ticket-grant", "site-a", "--ticket-revoke", "site-a")
    assert both.returncode == 2 and "two events" in both.stderr and "Traceback" not in both.stderr
