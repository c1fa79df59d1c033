"""The operator commands and agents as real processes on one host, over the embedded store's
Unix socket: config apply (valid, invalid, missing agent), status --json, move, standby, cleanup,
events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "HAKEEPER_CLUSTER": "cli"}

SPEC = """\
cluster:
  name: cli
  stonith-enabled: false
  resource-stickiness: 100
nodes: [{name: n1}, {name: n2}]
resources:
  primitives:
    - id: web
      agent: process
      params: {command: "sleep 1000"}
      operations: [{name: monitor, interval: 1s, timeout: 10s}]
    - id: marker
      agent: ocf:heartbeat:Dummy
      operations: [{name: monitor, interval: 1s, timeout: 10s}]
  groups:
    - id: grp
      members: [web, marker]
"""


def hk(*args: str, store: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper", *args, "--store", store], env=ENV, capture_output=True, text=True, timeout=60
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    sock = str(tmp_path / "store.sock")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket", sock],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        for node in ("n1", "n2"):
            log = open(tmp_path / f"{node}.log", "wb")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "hakeeper",
                        "agent",
                        "--node",
                        node,
                        "--store",
                        sock,
                        "--state-dir",
                        str(tmp_path / "state"),
                    ],
                    env=ENV,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
        yield sock
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def status(sock: str) -> dict[str, Any]:
    return json.loads(hk("status", "--json", store=sock).stdout)  # type: ignore[no-any-return]


def wait_for(sock: str, cond: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = status(sock)
        if cond(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(json.dumps(view, indent=1))
        time.sleep(0.2)


def on(view: dict[str, Any], rsc: str) -> list[str]:
    return view["resources"].get(rsc, {}).get("running_on", [])  # type: ignore[no-any-return]


def test_operator_commands(cluster: str, tmp_path: Path) -> None:
    sock = cluster
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("ocf:heartbeat:Dummy", "ocf:heartbeat:NoSuchAgent"))
    out = hk("config", "apply", str(bad), store=sock, check=False)
    assert out.returncode == 2 and "NoSuchAgent" in out.stderr and "bad.yaml:13" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text(SPEC.replace("members: [web, marker]", "members: [web, mraker]"))
    out = hk("config", "apply", str(typo), store=sock, check=False)
    assert out.returncode == 2 and "typo.yaml" in out.stderr
    assert status(sock)["config_version"] is None  # nothing was applied

    good = tmp_path / "good.yaml"
    good.write_text(SPEC)
    out = hk("config", "apply", str(good), store=sock)
    assert "Start" in out.stdout and "version 1" in out.stdout
    view = wait_for(sock, lambda v: len(on(v, "web")) == 1 and on(v, "web") == on(v, "marker"))
    first = on(view, "web")[0]
    other = "n2" if first == "n1" else "n1"
    assert view["leader"] in ("n1", "n2")

    hk("resource", "move", "grp", other, store=sock)
    wait_for(sock, lambda v: on(v, "web") == [other] and on(v, "marker") == [other])
    hk("resource", "clear", "grp", store=sock)
    hk("node", "standby", other, store=sock)
    wait_for(sock, lambda v: on(v, "web") == [first] and on(v, "marker") == [first])
    hk("node", "online", other, store=sock)

    out = hk("resource", "move", "nosuch", "n1", store=sock, check=False)
    assert out.returncode == 2 and "nosuch" in out.stderr
    text = hk("status", store=sock).stdout
    assert "Leader:" in text and "web" in text
    events = hk("events", store=sock).stdout
    assert "start" in events and "plan" in events


def test_agent_with_unreachable_etcd_says_so_and_keeps_trying(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hakeeper",
                "agent",
                "--node",
                "n1",
                "--etcd",
                "127.0.0.1:9",
                "--state-dir",
                str(tmp_path / "state"),
                "--timeout",
                "0.5",
            ],
            env=ENV,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "store unreachable" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, log.read_text()  # alive, not crashed
        assert "store unreachable" in log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    out2 = subprocess.run(
        [sys.executable, "-m", "hakeeper", "status", "--etcd", "127.0.0.1:9", "--timeout", "0.5"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out2.returncode == 3 and "store unavailable" in out2.stderr and "Traceback" not in out2.stderr


def test_ticket_commands_start_and_stop_what_depends_on_the_ticket(cluster: str, tmp_path: Path) -> None:
    sock = cluster
    spec = tmp_path / "ticket.yaml"
    spec.write_text(
        SPEC
        + """constraints:
  ticket:
    - {id: grp-needs-site-a, ticket: site-a, resource: grp, loss-policy: stop}
"""
    )
    hk("config", "apply", str(spec), store=sock)
    wait_for(sock, lambda v: v["tickets"] == {"site-a": "revoked"} and v["leader"] is not None)
    time.sleep(2.0)  # the leader has had every chance to start the group
    view = status(sock)
    assert on(view, "web") == [] and on(view, "marker") == [], view  # nothing runs without the ticket
    out = hk("ticket", "grant", "site-b", store=sock, check=False)
    assert out.returncode == 2 and "site-b" in out.stderr and "Traceback" not in out.stderr

    hk("ticket", "grant", "site-a", store=sock)
    view = wait_for(sock, lambda v: len(on(v, "web")) == 1 and on(v, "web") == on(v, "marker"))
    assert view["tickets"] == {"site-a": "granted"}
    assert "site-a: granted" in hk("status", store=sock).stdout

    hk("ticket", "standby", "site-a", store=sock)  # granted but stepping down: the group stops
    wait_for(sock, lambda v: on(v, "web") == [] and on(v, "marker") == [] and v["tickets"]["site-a"] == "standby")
    hk("ticket", "activate", "site-a", store=sock)
    wait_for(sock, lambda v: len(on(v, "web")) == 1)
    hk("ticket", "revoke", "site-a", store=sock)  # loss-policy stop
    wait_for(sock, lambda v: on(v, "web") == [] and on(v, "marker") == [])


def test_removing_a_running_resource_previews_its_orphan_stop_and_needs_yes(cluster: str, tmp_path: Path) -> None:
    sock = cluster
    good = tmp_path / "good.yaml"
    good.write_text(SPEC)
    hk("config", "apply", str(good), store=sock)
    view = wait_for(sock, lambda v: len(on(v, "marker")) == 1)
    where = on(view, "marker")[0]
    smaller = tmp_path / "smaller.yaml"
    marker = (
        "    - id: marker\n      agent: ocf:heartbeat:Dummy\n"
        "      operations: [{name: monitor, interval: 1s, timeout: 10s}]\n"
    )
    assert marker in SPEC
    smaller.write_text(SPEC.replace(marker, "").replace("members: [web, marker]", "members: [web]"))
    out = hk("config", "apply", str(smaller), store=sock, check=False)
    assert out.returncode == 2 and "resource marker" in out.stderr and "--yes" in out.stderr, out
    stop = [line for line in out.stdout.splitlines() if "Stop" in line]
    assert len(stop) == 1 and "marker (orphan)" in stop[0] and where in stop[0], out.stdout
    assert status(sock)["config_version"] == 1  # nothing applied
    hk("config", "apply", str(smaller), "--yes", store=sock)
    wait_for(sock, lambda v: on(v, "marker") == [] and len(on(v, "web")) == 1)


def test_unknown_names_are_refused_with_the_known_ones(cluster: str, tmp_path: Path) -> None:
    sock = cluster
    good = tmp_path / "good.yaml"
    good.write_text(SPEC + "constraints:\n  ticket: [{id: t, ticket: site-a, resource: grp}]\n")
    hk("config", "apply", str(good), store=sock)
    cases = [
        (("node", "standby", "n9"), "no node 'n9'; known: n1, n2"),
        (("ticket", "grant", "site-b"), "no ticket 'site-b'; known: site-a"),
        (("resource", "cleanup", "nosuch"), "no resource 'nosuch'; known: grp, marker, web"),
        (("resource", "restart", "nosuch"), "no resource 'nosuch'; known: grp, marker, web"),
        (("resource", "clear", "nosuch"), "no resource 'nosuch'; known: grp, marker, web"),
        (("resource", "ban", "web", "n9"), "no node 'n9'; known: n1, n2"),
        (("resource", "move", "grp", "n9"), "no node 'n9'; known: n1, n2"),
        (("resource", "cleanup", "web", "n9"), "no node 'n9'; known: n1, n2"),
    ]
    for args, message in cases:
        out = hk(*args, store=sock, check=False)
        assert out.returncode == 2 and message in out.stderr, (args, out)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert status(sock)["config_version"] == 1  # none of them changed anything


def test_events_say_when_there_are_none_and_store_errors_say_what_to_do(tmp_path: Path) -> None:
    sock = str(tmp_path / "store.sock")
    server = subprocess.Popen(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket", sock],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        out = hk("events", store=sock)
        assert out.stdout == "" and out.stderr.strip() == "no events"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in ENV.items() if k not in ("HAKEEPER_ETCD", "HAKEEPER_STORE")}
        return subprocess.run([sys.executable, "-m", "hakeeper", *args], env={**clean, **env},
                              capture_output=True, text=True, timeout=60)

    out = run("status")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
    for hint in ("--etcd", "HAKEEPER_ETCD", "--store", "HAKEEPER_STORE", "hakeeper store serve --socket"):
        assert hint in out.stderr, out.stderr
    for endpoint, why in (("127.0.0.1", "no port"), ("127.0.0.1:99999", "1 to 65535"), ("127.0.0.1:0", "1 to 65535"),
                          ("etcd:abc", "1 to 65535")):
        out = run("status", "--etcd", endpoint)
        assert out.returncode == 2 and out.stderr.startswith("error: --etcd: ") and why in out.stderr, out
        out = run("node", "standby", "n1", HAKEEPER_ETCD=endpoint)
        assert out.returncode == 2 and out.stderr.startswith("error: HAKEEPER_ETCD: ") and why in out.stderr, out
        assert "Traceback" not in out.stderr
    out = run("status", "--store", str(tmp_path / "nothing.sock"), "--timeout", "0.5")
    assert out.returncode == 3 and "hakeeper store serve --socket" in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1
    out = run("status", "--etcd", "[::1]:9", "--timeout", "0.5")
    assert out.returncode == 3 and "store unavailable" in out.stderr and "[::1]:9" in out.stderr, out
