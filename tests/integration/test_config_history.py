"""`hakeeper config apply|show|history|rollback` as real processes against the embedded store:
removals refused without --yes (and asked on a terminal), versions listed with who and what,
the crm rendering imported back, rollbacks through the same preview and confirmation."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.spec import load_spec

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "HAKEEPER_CLUSTER": "hist"}
ENV.pop("HAKEEPER_ETCD", None)

V1 = """\
cluster: {stonith-enabled: false, resource-stickiness: 100}
nodes: [{name: n1}, {name: n2}]
resources:
  primitives:
    - {id: web, agent: process, params: {command: "sleep 1000"}}
    - {id: db, agent: process, params: {command: "sleep 1001 # not a comment"}}
  clones: [{id: web-clone, child: web}]
constraints:
  order: [{id: db-then-web, first: db, then: web-clone}]
"""
V2 = V1.replace('    - {id: db, agent: process, params: {command: "sleep 1001 # not a comment"}}\n', "").replace(
    "constraints:\n  order: [{id: db-then-web, first: db, then: web-clone}]\n", ""
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    sock = str(tmp_path / "store.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket", sock],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield sock
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def hk(*args: str, store: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakeeper", *args, "--store", store],
        env={**ENV, "HAKEEPER_STORE": ""}, stdin=stdin, capture_output=True, text=True, timeout=60,
    )


def test_apply_history_show_and_rollback(store: str, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(V1)
    v2.write_text(V2)
    assert hk("config", "apply", str(v1), store=store).returncode == 0

    refused = hk("config", "apply", str(v2), store=store)
    assert refused.returncode == 2, refused
    line = refused.stderr.strip()
    assert "\n" not in line and "v2.yaml" in line and "resource db" in line and "--yes" in line, line
    assert "Traceback" not in refused.stderr
    shown = hk("config", "show", store=store)
    assert shown.returncode == 0 and "id: db" in shown.stdout  # nothing was applied

    applied = hk("config", "apply", str(v2), "--yes", store=store)
    assert applied.returncode == 0 and "version 2" in applied.stdout, applied
    assert "id: db" not in hk("config", "show", store=store).stdout

    history = hk("config", "history", store=store)
    assert history.returncode == 0, history
    rows = history.stdout.splitlines()
    assert rows[0].split() == ["VERSION", "WHEN", "BY", "CHANGES"]
    assert rows[1].startswith("1 ") and "+web" in rows[1] and "+db" in rows[1] and "+n1" in rows[1]
    assert rows[2].startswith("2 *") and "resources -db" in rows[2] and "constraints -db-then-web" in rows[2]
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    assert all(f"{user}@{os.uname().nodename}" in row for row in rows[1:]), rows

    # The crm rendering of version 1 imports back as version 1.
    crm = hk("config", "show", "--crm", "--version", "1", store=store)
    assert crm.returncode == 0 and "clone web-clone web" in crm.stdout, crm
    (tmp_path / "v1.crm").write_text(crm.stdout)
    imported = subprocess.run(
        [sys.executable, "-m", "hakeeper", "import", "crm", str(tmp_path / "v1.crm"), "-o",
         str(tmp_path / "back.yaml")],
        env=ENV, capture_output=True, text=True, timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert load_spec(tmp_path / "back.yaml") == load_spec(v1)

    # Back to version 1: it only adds, so no question; it becomes version 3.
    back = hk("config", "rollback", "1", store=store)
    assert back.returncode == 0 and "version 3" in back.stdout, back
    assert "id: db" in hk("config", "show", store=store).stdout
    assert "rollback to version 1" in hk("config", "history", store=store).stdout
    # Forward to version 2 again removes db: the same refusal as apply.
    again = hk("config", "rollback", "2", store=store)
    assert again.returncode == 2 and "resource db" in again.stderr and "--yes" in again.stderr, again
    missing = hk("config", "rollback", "99", store=store)
    assert missing.returncode == 2 and "known: 1, 2, 3" in missing.stderr, missing


def test_a_terminal_is_asked_before_anything_is_removed(store: str, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(V1)
    v2.write_text(V2)
    assert hk("config", "apply", str(v1), store=store).returncode == 0
    for answer, code, version in (("n", 1, "1"), ("y", 0, "2")):
        leader, follower = pty.openpty()
        try:
            os.write(leader, f"{answer}\n".encode())
            out = hk("config", "apply", str(v2), store=store, stdin=follower)
        finally:
            os.close(leader)
            os.close(follower)
        assert out.returncode == code, out
        assert "This removes resource db. Apply it? [y/N]" in out.stdout, out.stdout
        history = hk("config", "history", store=store).stdout.splitlines()
        assert history[-1].startswith(f"{version} *"), history


def test_applying_an_empty_file_says_what_it_removes(store: str, tmp_path: Path) -> None:
    v1, empty = tmp_path / "v1.yaml", tmp_path / "empty.yaml"
    v1.write_text(V1)
    empty.write_text("")
    assert hk("config", "apply", str(v1), store=store).returncode == 0
    out = hk("config", "apply", str(empty), store=store)
    assert out.returncode == 2 and "(no changes)" not in out.stdout, out
    assert "Remove node n1" in out.stdout and "Remove resource web" in out.stdout
    assert "removes resources db, web, web-clone and nodes n1, n2;" in out.stderr, out.stderr
