"""Resource classes against real agents: Debian's OCF scripts, processes, netlink in namespaces,
fence-agents' fence_dummy and the namespace fence device."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import needs_binary, needs_root
from hakeeper.netlab import Host, Lab
from hakeeper.resources.base import make_agent
from hakeeper.resources.fencing import FenceAgent, NamespaceFence
from hakeeper.resources.result import Result, Status
from hakeeper.resources.systemd import systemd_running

SRC = str(Path(__file__).resolve().parents[2] / "src")


def act(agent: str, action: str, state: Path, timeout: float = 20, **params: str) -> Status:
    ra = make_agent("r1", agent, params, str(state))
    return asyncio.run(ra.action(action, timeout)).status


def test_ocf_dummy_lifecycle(tmp_path: Path) -> None:
    needs_binary("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents")
    assert act("ocf:heartbeat:Dummy", "monitor", tmp_path) is Status.NOT_RUNNING
    assert act("ocf:heartbeat:Dummy", "start", tmp_path) is Status.SUCCESS
    assert act("ocf:heartbeat:Dummy", "monitor", tmp_path) is Status.SUCCESS
    # Another node's state directory does not see this node's instance.
    assert act("ocf:heartbeat:Dummy", "monitor", tmp_path / "other") is Status.NOT_RUNNING
    assert act("ocf:heartbeat:Dummy", "stop", tmp_path) is Status.SUCCESS
    assert act("ocf:heartbeat:Dummy", "monitor", tmp_path) is Status.NOT_RUNNING
    meta = asyncio.run(make_agent("r1", "ocf:heartbeat:Dummy", {}, str(tmp_path)).meta_data())
    assert '<resource-agent name="Dummy"' in meta


@pytest.fixture
def ocf_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ocf"
    (root / "resource.d" / "test").mkdir(parents=True)
    (root / "lib").symlink_to("/usr/lib/ocf/lib")
    for name, body in {
        "Hang": "sleep 60",
        "Weird": "exit 42",
        "Env": 'echo "$OCF_RESKEY_color $OCF_RESOURCE_INSTANCE"; exit 7',
    }.items():
        path = root / "resource.d" / "test" / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    monkeypatch.setenv("HAKEEPER_OCF_ROOT", str(root))
    return root


def test_ocf_timeout_undefined_code_and_environment(ocf_root: Path, tmp_path: Path) -> None:
    assert act("ocf:test:Hang", "monitor", tmp_path, timeout=0.5) is Status.TIMEOUT
    assert act("ocf:test:Weird", "monitor", tmp_path) is Status.UNDEFINED
    res = asyncio.run(make_agent("web", "ocf:test:Env", {"color": "blue"}, str(tmp_path)).monitor(5))
    assert res.status is Status.NOT_RUNNING and res.output.strip() == "blue web"
    assert act("ocf:test:Missing", "start", tmp_path) is Status.NOT_INSTALLED


def test_process_class_tracks_pid(tmp_path: Path) -> None:
    assert act("process", "start", tmp_path, command="sleep 300") is Status.SUCCESS
    assert act("process", "monitor", tmp_path, command="sleep 300") is Status.SUCCESS
    pid = int((tmp_path / "r1.pid").read_text().split()[0])
    os.kill(pid, 9)
    for _ in range(50):
        if act("process", "monitor", tmp_path, command="sleep 300") is Status.NOT_RUNNING:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert act("process", "monitor", tmp_path, command="sleep 300") is Status.NOT_RUNNING
    assert act("process", "start", tmp_path, command="sleep 300") is Status.SUCCESS
    assert act("process", "stop", tmp_path, command="sleep 300") is Status.SUCCESS
    assert act("process", "monitor", tmp_path, command="sleep 300") is Status.NOT_RUNNING
    assert act("process", "start", tmp_path, command="/nonexistent/bin") is Status.NOT_CONFIGURED


def _act_result(agent: str, action: str, timeout: float = 20) -> Result:
    return asyncio.run(make_agent("r1", agent, {}, "/tmp").action(action, timeout))


def test_systemd_class(tmp_path: Path) -> None:
    """Either systemd runs (full lifecycle of a real unit) or it does not (containers): then every
    action is a clean not-installed result naming why, never a crash and never "running"."""
    ra = make_agent("r1", "systemd:hakeeper-test-unit", {}, str(tmp_path))
    if not systemd_running():
        # The detection agrees with what PID 1 is: no systemd manager, no /run/systemd/system.
        assert Path("/proc/1/comm").read_text().strip() != "systemd"
        assert not Path("/run/systemd/system").is_dir()
        reason = ra.installed()
        assert reason is not None and "systemd is not running" in reason
        for action in ("start", "monitor", "stop"):
            res = _act_result("systemd:hakeeper-test-unit", action)
            assert res.status is Status.NOT_INSTALLED, (action, res)
            assert res.rc == 5 and "systemd is not running" in res.output
        return
    needs_root()
    unit = Path("/run/systemd/system/hakeeper-test-unit.service")
    unit.write_text("[Service]\nExecStart=/bin/sleep 600\n")
    try:
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        assert ra.installed() is None
        assert _act_result("systemd:hakeeper-no-such-unit", "monitor").status is Status.NOT_RUNNING
        assert _act_result("systemd:hakeeper-test-unit", "monitor").status is Status.NOT_RUNNING
        assert _act_result("systemd:hakeeper-test-unit", "start").status is Status.SUCCESS
        assert _act_result("systemd:hakeeper-test-unit", "monitor").status is Status.SUCCESS
        assert _act_result("systemd:hakeeper-test-unit", "stop").status is Status.SUCCESS
        assert _act_result("systemd:hakeeper-test-unit", "monitor").status is Status.NOT_RUNNING
    finally:
        subprocess.run(["systemctl", "stop", "hakeeper-test-unit.service"], check=False)
        unit.unlink(missing_ok=True)
        subprocess.run(["systemctl", "daemon-reload"], check=False)


@pytest.fixture
def lab() -> Iterator[Lab]:
    needs_root()
    with Lab("hka") as lab:
        lab.host("1", {"eth0": ["10.92.201.1/16"]})
        lab.host("2", {"eth0": ["10.92.201.2/16"]})
        yield lab


def in_ns(host: Host, agent: str, action: str, state: Path, **params: str) -> str:
    code = (
        "import asyncio,json,sys;from hakeeper.resources.base import make_agent;"
        f"ra=make_agent('vip1',{agent!r},json.loads(sys.argv[1]),{str(state)!r});"
        f"print(asyncio.run(ra.action({action!r},20)).status.value)"
    )
    out = host.run([sys.executable, "-c", code, json.dumps(params)], env={**os.environ, "PYTHONPATH": SRC})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize(
    "agent,params",
    [
        ("vip", {"ip": "10.92.201.100/16", "nic": "eth0"}),
        ("ocf:heartbeat:IPaddr2", {"ip": "10.92.201.100", "cidr_netmask": "16", "nic": "eth0"}),
    ],
)
def test_vip_classes_in_namespace(lab: Lab, tmp_path: Path, agent: str, params: dict[str, str]) -> None:
    h1, h2 = lab.hosts["1"], lab.hosts["2"]
    assert in_ns(h1, agent, "monitor", tmp_path, **params) == "not-running"
    assert in_ns(h1, agent, "start", tmp_path, **params) == "success"
    assert h1.has_address("eth0", "10.92.201.100")
    assert in_ns(h1, agent, "monitor", tmp_path, **params) == "success"
    ping = h2.run(["ping", "-c", "1", "-W", "2", "10.92.201.100"])
    assert ping.returncode == 0, ping.stdout
    assert in_ns(h1, agent, "stop", tmp_path, **params) == "success"
    assert not h1.has_address("eth0", "10.92.201.100")
    assert in_ns(h1, agent, "monitor", tmp_path, **params) == "not-running"


def test_fence_dummy_through_stdin(tmp_path: Path) -> None:
    needs_binary("fence_dummy", "fence-agents")
    status = tmp_path / "power"
    status.write_text("on")
    dev = FenceAgent("fence_dummy", {"type": "file", "status_file": str(status), "host_map": "n1:1"})
    assert "plug=1\n" in dev.stdin("n1") and "action=off\n" in dev.stdin("n1")
    res = asyncio.run(dev.fence("n1", 20))
    assert res.ok, res.output
    assert status.read_text() == "off"
    failing = FenceAgent("fence_dummy", {"type": "fail"})
    assert not asyncio.run(failing.fence("n1", 20)).ok
    assert not asyncio.run(FenceAgent("fence_nonexistent", {}).fence("n1", 5)).ok


def test_namespace_fence_kills_processes_and_links(lab: Lab) -> None:
    host = lab.hosts["1"]
    proc = host.spawn(["sleep", "300"])
    # Popen returns before `ip netns exec` has entered the namespace: wait until it is inside.
    deadline = time.monotonic() + 10
    pids = ["ip", "netns", "pids", host.ns]
    while str(proc.pid) not in subprocess.run(pids, capture_output=True, text=True).stdout.split():
        assert time.monotonic() < deadline, "the process never entered the namespace"
        time.sleep(0.02)
    template = f"{lab.prefix}-{lab.owner}-{{node}}"
    res = asyncio.run(NamespaceFence(template).fence("1", 10))
    assert res.ok, res.output
    assert proc.wait(5) == -9
    link = subprocess.run(
        ["ip", "-n", host.ns, "-o", "link", "show", "eth0"], capture_output=True, text=True
    ).stdout
    assert "state DOWN" in link or ",UP" not in link.split(">")[0]
    assert lab.hosts["2"].run(["ping", "-c", "1", "-W", "1", "10.92.201.1"]).returncode != 0
    assert not asyncio.run(NamespaceFence(template).fence("nosuch", 5)).ok
