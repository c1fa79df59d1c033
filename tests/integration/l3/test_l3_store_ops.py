"""Routers in the store, changed live by `hakeeper router ...`; a restart of the active agent.

Two network nodes run `hakeeper l3-agent` without --spec: they follow the routers in the store.
seed 004's router80 is put there by `hakeeper router init`; then, while a watcher reads both
nodes' state files every 50 ms: a floating IP is added to router80 (the client reaches the
instance through it), router81 is created with an interface and a gateway (it comes up on both
nodes with one master) and deleted again (its namespaces go). router80 never changes state on
either node meanwhile: no re-election of an unaffected router. Finally the active node's agent is
restarted (a new agent with the old one's pid file: the old one is told to stop once the new one is
ready): the new one adopts the namespaces and router80 never fails over.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "l3"))
from l3procs import remove_namespaces, stop, store_server
from seed004 import write_seed_files

from conftest import needs_binary, needs_root
from hakeeper.l3 import netns
from hakeeper.l3.model import RouterSpec
from hakeeper.l3.neutron import read_neutron
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec
from hakeeper.netlab import Host, Lab

SRC = Path(__file__).resolve().parents[3] / "src"
pytestmark = pytest.mark.timeout(900)  # six CLI calls and two agents take minutes on a loaded machine
R80 = "7a46dba8-8846-498c-9e10-588664558473"
R81 = "5b0c1f6e-2d7a-4c55-9a43-81a1b2c3d4e5"
ROUTERS = f"""\
routers:
  - id: {R80}
    name: router80
    project: service
    interfaces: [{{subnet: vxlan-subnet80, address: 192.168.80.1/24}}]
    gateway: {{network: ext-net80, address: 10.0.80.101/24, upstream: 10.0.80.1}}
"""
NODES = ("network7", "network8")
PHYSICAL = {"ha": "ha0", "ext-net80": "ex0", "vxlan-subnet80": "in0", "vxlan-subnet81": "in1"}
ADVERT = 2
BOUND = 3 * ADVERT + (256 - 50) / 256


@dataclass
class Ops:
    lab: Lab
    nodes: dict[str, Host]
    client: Host
    workdir: Path
    store: Path
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    history: list[tuple[float, str, str, str]] = field(default_factory=list)  # (time, node, router, state)
    watching: threading.Event = field(default_factory=threading.Event)

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(SRC))

    def hk(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "hakeeper", *args, "--store", str(self.store)],
                             capture_output=True, text=True, timeout=120, env=self.env(), check=False)
        if check:
            assert out.returncode == 0, f"hakeeper {' '.join(args)}: {out.returncode} {out.stderr}"
        return out

    def prefix(self, node: str) -> str:
        return f"{self.lab.prefix}-{self.lab.owner}-{node}-"

    def state_file(self, node: str) -> Path:
        return self.workdir / f"{node}.state.json"

    def states(self, node: str) -> dict[str, str]:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return dict(json.loads(self.state_file(node).read_text())["routers"])
        return {}

    def start(self, node: str) -> None:
        argv = ["nsenter", f"--net=/run/netns/{self.nodes[node].ns}", sys.executable, "-m", "hakeeper", "l3-agent",
                "--node", node, "--netns-prefix", self.prefix(node), "--state-file", str(self.state_file(node)),
                "--garp-master-delay", "5", "--store", str(self.store),
                "--pid-file", str(self.workdir / f"{node}.pid")]
        for key, dev in PHYSICAL.items():
            argv += ["--physical", f"{key}={dev}"]
        log = open(self.workdir / f"{node}.log", "ab")  # noqa: SIM115 (the agent keeps it)
        self.agents[node] = subprocess.Popen(argv, env=self.env(), stdout=log, stderr=log)

    def reporter(self, node: str) -> int | None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int(json.loads(self.state_file(node).read_text())["pid"])
        return None

    def watch(self) -> None:
        last: dict[tuple[str, str], str] = {}
        while not self.watching.is_set():
            for node in NODES:
                for rid, st in self.states(node).items():
                    if last.get((node, rid)) != st:
                        last[(node, rid)] = st
                        self.history.append((time.monotonic(), node, rid, st))
            time.sleep(0.05)

    def changes(self, rid: str, since: float) -> list[tuple[float, str, str, str]]:
        return [h for h in self.history if h[2] == rid and h[0] > since]

    def logs(self) -> str:
        return "\n".join((self.workdir / f"{n}.log").read_text()[-2500:] for n in NODES
                         if (self.workdir / f"{n}.log").exists())


def wait_for(cond, timeout: float, what: str, ops: Ops | None = None) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s; {ops.logs() if ops else ''}")


def tcp(host: Host, dst: str, port: int, timeout: float = 2) -> str:
    try:
        out = host.run(["socat", "-T", str(timeout), "-", f"TCP:{dst}:{port},connect-timeout={timeout}"],
                       timeout=timeout + 3)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout.strip()


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    needs_root()
    needs_binary("nft", "nftables")
    needs_binary("socat")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3ops")
    conf, ini = write_seed_files(workdir)
    settings = read_neutron(str(conf), str(ini)).settings
    spec_file = workdir / "routers.yaml"
    spec_file.write_text(dump_router_spec(RouterSpec(settings=settings, routers=parse_router_spec(ROUTERS).routers)))
    store = workdir / "store.sock"
    server = store_server(store)
    seg = {"ha0": "brha", "ex0": "brex", "in0": "brin", "in1": "brin1"}
    with Lab("hkl3s") as lab:
        o = None
        watcher = None
        try:
            nodes = {n: lab.host(n, {"ha0": [], "ex0": [], "in0": [], "in1": []}, segments=seg) for n in NODES}
            client = lab.host("client", {"eth0": ["10.0.80.1/24"]}, segments={"eth0": "brex"})
            instance = lab.host("inst", {"eth0": ["192.168.80.10/24"]}, segments={"eth0": "brin"})
            instance.ip("route", "add", "default", "via", "192.168.80.1")
            instance.spawn(["socat", "TCP-LISTEN:7001,fork,reuseaddr", "SYSTEM:echo instance"])
            o = Ops(lab, nodes, client, workdir, store)
            wait_for(store.exists, 60, "store socket")
            o.hk("router", "init", "--spec", str(spec_file), "--nodes", ",".join(NODES))
            o.start(NODES[0])
            wait_for(lambda: o.states(NODES[0]).get(R80) == "active", 120, "router80 active on network7", o)
            o.start(NODES[1])
            wait_for(lambda: o.states(NODES[1]).get(R80) == "standby", 120, "router80 standby on network8", o)
            watcher = threading.Thread(target=o.watch, daemon=True)
            watcher.start()
            # The watcher's first reading is the starting state, not a change: wait for it before
            # a test takes its `since` (it once landed just after, and counted as a re-election).
            wait_for(lambda: sum(1 for h in o.history if h[2] == R80) >= len(NODES), 30, "the first reading", o)
            yield o
        finally:
            if o is not None:
                o.watching.set()
                if watcher is not None:
                    watcher.join(timeout=5)
                stop(o.agents.values())
                remove_namespaces(o.prefix(n) for n in NODES)
            stop([server])


def test_live_changes_never_reelect_router80(ops: Ops) -> None:
    a, b = NODES
    since = time.monotonic()
    # A floating IP added to the running router: NAT'd at once, through the master.
    ops.hk("router", "add-floating-ip", "router80", "--external", "10.0.80.110", "--fixed", "192.168.80.10")
    wait_for(lambda: tcp(ops.client, "10.0.80.110", 7001, timeout=0.5) == "instance", 45,
             "the new floating IP reachable", ops)
    # A second router comes and goes.
    ops.hk("router", "create", "router81", "--id", R81, "--project", "service")
    ops.hk("router", "add-interface", "router81", "--subnet", "vxlan-subnet81", "--address", "192.168.81.1/24")
    out = ops.hk("router", "set-gateway", "router81", "--network", "ext-net80", "--address", "10.0.80.102/24",
                 "--upstream", "10.0.80.1").stdout
    assert "VRID 2" in out  # router80 keeps VRID 1; the new one takes the next
    wait_for(lambda: sorted(ops.states(n).get(R81, "") for n in NODES) == ["active", "standby"], BOUND + 45,
             "router81 up with one master", ops)
    for n in NODES:
        assert netns.exists(f"{ops.prefix(n)}qrouter-{R81}")
    ops.hk("router", "delete", "router81")
    wait_for(lambda: not any(netns.exists(f"{ops.prefix(n)}qrouter-{R81}") for n in NODES), 45,
             "router81's namespaces removed", ops)
    # Bad input changes nothing: exit 2 and the option named.
    bad = ops.hk("router", "add-floating-ip", "router80", "--external", "10.0.80.110", "--fixed", "192.168.80.11",
                 check=False)
    assert bad.returncode == 2 and "--external/--fixed" in bad.stderr and "Traceback" not in bad.stderr
    time.sleep(1.5)
    assert ops.changes(R80, since) == [], f"router80 changed state: {ops.changes(R80, since)}"
    assert (ops.states(a).get(R80), ops.states(b).get(R80)) == ("active", "standby")
    assert tcp(ops.client, "10.0.80.110", 7001) == "instance"


def test_restart_of_the_active_agent_is_not_a_failover(ops: Ops) -> None:
    a, b = NODES
    assert ops.states(a).get(R80) == "active"
    since = time.monotonic()
    old = ops.agents[a]
    # A restart as hakeeper does it: the new agent starts with the old one's pid file, gets
    # ready, then has the old one stop (SIGHUP: routers left as they are) and adopts them.
    ops.start(a)
    old.wait(timeout=60)
    new = ops.agents[a]
    wait_for(lambda: ops.reporter(a) == new.pid and ops.states(a).get(R80) == "active", 20,
             "the new agent reports router80 active", ops)
    end = time.monotonic() + BOUND + 2  # longer than the backup would wait for a silent master
    while time.monotonic() < end:
        assert ops.states(b).get(R80) == "standby", f"network8 took over: {ops.changes(R80, since)}"
        time.sleep(0.1)
    assert [h[3] for h in ops.changes(R80, since) if h[1] == b] == []
    assert "adopted" in (ops.workdir / f"{a}.log").read_text()
    assert tcp(ops.client, "10.0.80.110", 7001) == "instance"
