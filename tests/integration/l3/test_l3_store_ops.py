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

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from l3procs import (
    BOUND,
    R80,
    AgentNodes,
    StateWatcher,
    env,
    router80_hosts,
    router80_yaml,
    store_server,
    tcp,
    torn_down,
    write_spec,
)

from conftest import needs_binary, needs_root
from hakeeper.l3 import hafilter, netns
from hakeeper.netlab import Host, Lab

pytestmark = pytest.mark.timeout(900)  # six CLI calls and two agents take minutes on a loaded machine
R81 = "5b0c1f6e-2d7a-4c55-9a43-81a1b2c3d4e5"
NODES = ("network7", "network8")
PHYSICAL = {"ha": "ha0", "ext-net80": "ex0", "vxlan-subnet80": "in0", "vxlan-subnet81": "in1"}


@dataclass
class Ops(AgentNodes):
    client: Host
    store: Path
    watcher: StateWatcher | None = None

    def hk(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "hakeeper", *args, "--store", str(self.store)],
                             capture_output=True, text=True, timeout=120, env=env(), check=False)
        if check:
            assert out.returncode == 0, f"hakeeper {' '.join(args)}: {out.returncode} {out.stderr}"
        return out

    def start(self, node: str) -> None:
        self.start_agent(node, PHYSICAL, "--store", str(self.store), "--pid-file", str(self.workdir / f"{node}.pid"))

    def reporter(self, node: str) -> object:
        return self.report(node).get("pid")

    def changes(self, rid: str, since: float) -> list[tuple[float, str, str, str]]:
        assert self.watcher is not None
        return self.watcher.changes(rid, since)


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    needs_root()
    needs_binary("nft", "nftables")
    needs_binary("socat")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3ops")
    _, spec_file = write_spec(workdir, router80_yaml(floating_ip=False))
    store = workdir / "store.sock"
    server = store_server(store)
    with Lab("hkl3s") as lab:
        o: Ops | None = None
        with torn_down(lambda: o, server, watcher=lambda: o.watcher if o else None):
            hosts, client, _ = router80_hosts(lab, NODES, {"ha0": "brha", "ex0": "brex", "in0": "brin",
                                                          "in1": "brin1"})
            o = Ops(lab, hosts, workdir, client, store)
            o.wait_for(store.exists, 60, "store socket")
            o.hk("router", "init", "--spec", str(spec_file), "--nodes", ",".join(NODES))
            o.start(NODES[0])
            o.wait_for(lambda: o.states(NODES[0]).get(R80) == "active", 120, "router80 active on network7")
            o.start(NODES[1])
            o.wait_for(lambda: o.states(NODES[1]).get(R80) == "standby", 120, "router80 standby on network8")
            # The watcher's first reading is the starting state, not a change: it is taken before
            # a test takes its `since` (it once landed just after, and counted as a re-election).
            o.watcher = StateWatcher(o, lambda: NODES)
            o.watcher.start()
            yield o


def test_live_changes_never_reelect_router80(ops: Ops) -> None:
    a, b = NODES
    since = time.monotonic()
    # A floating IP added to the running router: NAT'd at once, through the master.
    ops.hk("router", "add-floating-ip", "router80", "--external", "10.0.80.110", "--fixed", "192.168.80.10")
    ops.wait_for(lambda: tcp(ops.client, "10.0.80.110", 7001, timeout=0.5) == "instance", 45,
                 "the new floating IP reachable")
    # A second router comes and goes.
    ops.hk("router", "create", "router81", "--id", R81, "--project", "service")
    ops.hk("router", "add-interface", "router81", "--subnet", "vxlan-subnet81", "--address", "192.168.81.1/24")
    out = ops.hk("router", "set-gateway", "router81", "--network", "ext-net80", "--address", "10.0.80.102/24",
                 "--upstream", "10.0.80.1").stdout
    assert "VRID 2" in out  # router80 keeps VRID 1; the new one takes the next
    ops.wait_for(lambda: sorted(ops.states(n).get(R81, "") for n in NODES) == ["active", "standby"], BOUND + 45,
                 "router81 up with one master")
    for n in NODES:
        assert netns.exists(f"{ops.prefix(n)}qrouter-{R81}")
    ops.hk("router", "delete", "router81")
    ops.wait_for(lambda: not any(netns.exists(f"{ops.prefix(n)}qrouter-{R81}") for n in NODES), 45,
                 "router81's namespaces removed")
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
    ops.wait_for(lambda: ops.reporter(a) == new.pid and ops.states(a).get(R80) == "active", 20,
                 "the new agent reports router80 active")
    end = time.monotonic() + BOUND + 2  # longer than the backup would wait for a silent master
    while time.monotonic() < end:
        assert ops.states(b).get(R80) == "standby", f"network8 took over: {ops.changes(R80, since)}"
        time.sleep(0.1)
    assert [h[3] for h in ops.changes(R80, since) if h[1] == b] == []
    assert "adopted" in (ops.workdir / f"{a}.log").read_text()
    assert tcp(ops.client, "10.0.80.110", 7001) == "instance"


def _advert_tables(ops: Ops, node: str) -> set[str]:
    listed = netns.run(["ip", "netns", "exec", ops.hosts[node].ns, "nft", "list", "tables"])
    return {line.split()[-1] for line in listed.stdout.splitlines() if line.startswith("table")} & {
        hafilter.BRIDGE_TABLE, hafilter.INGRESS_TABLE}


def test_a_clean_stop_removes_the_nodes_advert_filter(ops: Ops) -> None:
    """An agent stopped for good (SIGTERM) leaves the node's HA networks as it found them: its
    advert filter would send each VRID to a port only its router used, and a keepalived started
    for the same routers on that node would hear nothing. The other node is not disturbed."""
    a, b = NODES
    assert _advert_tables(ops, b) == {hafilter.BRIDGE_TABLE, hafilter.INGRESS_TABLE}
    since = time.monotonic()
    agent = ops.agents[b]
    agent.terminate()
    assert agent.wait(timeout=60) == 0
    assert _advert_tables(ops, b) == set()
    assert [h[3] for h in ops.changes(R80, since) if h[1] == a] == []
    assert ops.states(a).get(R80) == "active"
    assert tcp(ops.client, "10.0.80.110", 7001) == "instance"
