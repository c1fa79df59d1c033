"""Resource classes against real agents: Debian's OCF scripts, init scripts (ours and Debian's),
processes, netlink in namespaces, fence-agents' fence_dummy and the namespace fence device."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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


# A small LSB init script: `sleep` is its daemon, started in the background without redirecting
# its output (as careless scripts do: the action must still finish when the script exits).
INIT_SCRIPT = """#!/bin/sh
PIDFILE="{state}/demo.pid"
case "$1" in
  start) if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then exit 0; fi
         sleep 600 &
         echo $! > "$PIDFILE"; sleep 0.3; echo "demo started"; exit 0;;
  stop) if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null; rm -f "$PIDFILE"; fi; exit 0;;
  status) [ -f "$PIDFILE" ] || exit 3
          if kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then exit 0; fi; exit 1;;
  *) echo "usage: $0 start|stop|status"; exit 2;;
esac
"""


@pytest.fixture
def init_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    scripts = tmp_path / "init.d"
    scripts.mkdir()
    script = scripts / "hakeeper-demo"
    script.write_text(INIT_SCRIPT.format(state=tmp_path))
    script.chmod(0o755)
    (scripts / "not-executable").write_text("#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("HAKEEPER_INIT_D", str(scripts))
    yield scripts
    pidfile = tmp_path / "demo.pid"
    if pidfile.exists():  # a failed test leaves no daemon behind
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), 9)


def _unused_pid() -> int:
    limit = int(Path("/proc/sys/kernel/pid_max").read_text())
    return next(p for p in range(limit - 1, 1, -1) if not Path(f"/proc/{p}").exists())


def lsb_act(agent: str, action: str, state: Path, timeout: float = 20) -> Result:
    return asyncio.run(make_agent("demo", agent, {}, str(state / "node")).action(action, timeout))


@pytest.mark.parametrize("cls", ["lsb", "service", "upstart"])
def test_init_script_lifecycle(init_d: Path, tmp_path: Path, cls: str) -> None:
    """lsb: runs the script; service: and upstart: run it too here (no systemd manages a unit
    of that name)."""
    agent = f"{cls}:hakeeper-demo"
    assert make_agent("demo", agent, {}, str(tmp_path)).installed() is None
    first = lsb_act(agent, "monitor", tmp_path)
    assert (first.status, first.rc) == (Status.NOT_RUNNING, 3)
    started = lsb_act(agent, "start", tmp_path)
    # Finished when the script exits, though its daemon still holds the output it inherited.
    assert started.status is Status.SUCCESS and "demo started" in started.output, started
    assert started.duration >= 0.3  # the script's own pause is in the measured time
    assert lsb_act(agent, "monitor", tmp_path).status is Status.SUCCESS
    # The daemon dies, leaving its pid file: a pid that no process has stands for it (a killed
    # daemon would stay a zombie until whatever adopted it reaps it).
    pidfile = tmp_path / "demo.pid"
    daemon = int(pidfile.read_text())
    pidfile.write_text(f"{_unused_pid()}\n")
    os.kill(daemon, 9)
    dead = lsb_act(agent, "monitor", tmp_path)
    assert (dead.status, dead.rc, dead.output) == (Status.NOT_RUNNING, 1, "dead, its pid file remains")
    assert lsb_act(agent, "start", tmp_path).status is Status.SUCCESS
    assert lsb_act(agent, "stop", tmp_path).status is Status.SUCCESS
    assert lsb_act(agent, "monitor", tmp_path).status is Status.NOT_RUNNING
    assert lsb_act(agent, "stop", tmp_path).status is Status.SUCCESS  # stopping twice is fine


def test_init_script_missing_or_unusable(init_d: Path, tmp_path: Path) -> None:
    missing = make_agent("x", "lsb:hakeeper-missing", {}, str(tmp_path))
    assert missing.installed() == f"no init script {init_d}/hakeeper-missing"
    for action in ("start", "monitor", "stop"):
        res = lsb_act("lsb:hakeeper-missing", action, tmp_path)
        assert (res.status, res.rc) == (Status.NOT_INSTALLED, 5), (action, res)
    reason = make_agent("x", "lsb:not-executable", {}, str(tmp_path)).installed()
    assert reason is not None and "not executable" in reason
    # A name that would leave the directory is refused, not run.
    reason = make_agent("x", "lsb:..", {}, str(tmp_path)).installed()
    assert reason is not None and "not an init script name" in reason
    assert lsb_act("lsb:..", "start", tmp_path).status is Status.NOT_INSTALLED
    # A script named by its absolute path (Pacemaker's CTS writes lsb:/usr/lib/heartbeat/cts/LSBDummy).
    by_path = f"lsb:{init_d}/hakeeper-demo"
    assert make_agent("x", by_path, {}, str(tmp_path)).installed() is None
    assert lsb_act(by_path, "monitor", tmp_path).rc == 3
    assert lsb_act(f"service:{init_d}/hakeeper-demo", "monitor", tmp_path).rc == 3
    # Another directory, given to the class directly.
    from hakeeper.resources.base import AgentName
    from hakeeper.resources.lsb import LsbAgent

    other = LsbAgent("x", AgentName("lsb", None, "hakeeper-demo"), {}, str(tmp_path), init_d=str(tmp_path))
    assert other.installed() == f"no init script {tmp_path}/hakeeper-demo"


def test_upstart_without_a_mapping_says_what_to_do(init_d: Path, tmp_path: Path) -> None:
    if systemd_running():
        pytest.skip("the message differs where systemd runs (no unit named rather than no systemd)")
    reason = make_agent("x", "upstart:hakeeper-nova-api", {}, str(tmp_path)).installed()
    assert reason == (f"upstart:hakeeper-nova-api: no upstart on this system; systemd is not running and "
                      f"no init script {init_d}/hakeeper-nova-api; install the service or change the "
                      f"primitive to systemd:hakeeper-nova-api or lsb:hakeeper-nova-api")
    res = lsb_act("upstart:hakeeper-nova-api", "start", tmp_path)
    assert (res.status, res.rc, res.output) == (Status.NOT_INSTALLED, 5, reason)
    svc = make_agent("x", "service:hakeeper-nova-api", {}, str(tmp_path)).installed()
    assert svc is not None and svc.startswith("service:") and "no init script" in svc and "no upstart" not in svc


def test_upstart_mapping_warns_once(init_d: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hakeeper.resources.lsb")
    for _ in range(3):
        ra = make_agent("demo", "upstart:hakeeper-demo", {}, str(tmp_path))
        assert ra.installed() is None
        assert asyncio.run(ra.action("monitor", 10)).status is Status.NOT_RUNNING
    warnings = [r.getMessage() for r in caplog.records if "upstart" in r.getMessage()]
    assert warnings == [f"upstart:hakeeper-demo: no upstart on this system; running it as lsb:hakeeper-demo "
                        f"({init_d}/hakeeper-demo)"]


def test_debian_init_script(tmp_path: Path) -> None:
    """A real Debian script from /etc/init.d (x11-common: start sets up the X socket directories
    in /tmp, status checks them, stop does nothing), through the default directory."""
    needs_root()
    if not Path("/etc/init.d/x11-common").exists():
        pytest.skip("no /etc/init.d/x11-common (package x11-common)")
    assert make_agent("x11", "lsb:x11-common", {}, str(tmp_path)).installed() is None
    res = asyncio.run(make_agent("x11", "lsb:x11-common", {}, str(tmp_path)).action("start", 20))
    assert res.status is Status.SUCCESS, res
    assert Path("/tmp/.X11-unix").is_dir() and Path("/tmp/.ICE-unix").is_dir()
    res = asyncio.run(make_agent("x11", "lsb:x11-common", {}, str(tmp_path)).action("monitor", 20))
    assert (res.status, res.rc) == (Status.SUCCESS, 0), res
    assert act("lsb:x11-common", "stop", tmp_path) is Status.SUCCESS


def test_every_class_reports_its_real_duration(tmp_path: Path) -> None:
    """Measured around the action, whatever the class: process start waits for the command to
    settle (0.2 s), so its duration is at least that; stonith's start, with no subprocess, still
    takes a measurable time; an OCF timeout lasts at least the timeout."""
    started = asyncio.run(make_agent("p", "process", {"command": "sleep 30"}, str(tmp_path)).action("start", 20))
    try:
        assert started.status is Status.SUCCESS and started.duration >= 0.2, started
    finally:
        stopped = asyncio.run(make_agent("p", "process", {"command": "sleep 30"}, str(tmp_path)).action("stop", 20))
    assert stopped.status is Status.SUCCESS and stopped.duration > 0
    fence = asyncio.run(make_agent("f", "stonith:netns", {}, str(tmp_path)).action("start", 20))
    assert fence.status is Status.SUCCESS and fence.duration > 0


def test_timeouts_report_their_duration(ocf_root: Path, tmp_path: Path) -> None:
    res = asyncio.run(make_agent("h", "ocf:test:Hang", {}, str(tmp_path)).action("monitor", 0.5))
    assert res.status is Status.TIMEOUT and res.duration >= 0.5


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
        assert _act_result("systemd:hakeeper-no-such-unit", "monitor").status is Status.NOT_INSTALLED
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
