"""Re-protection while the cluster runs: a lost network node's routers get a replica elsewhere.

Three network nodes follow the routers in the store (`max_l3_agents_per_router = 2`, so each router
runs on two of them). network7 dies (SIGKILL of its agent, its HA link cut): its masters fail over
by VRRP, and after `--node-lost-after` the controller agent marks it down in the store and every
router that had a replica there gets one on another node, built there and started as BACKUP. A
router whose master survived never changes state (no re-election). The new replicas are real: the
node holding the surviving masters dies next, and its routers fail over to them. network7 returns:
it takes replicas again as backups, and no router ever has two masters.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from l3procs import BOUND, AgentNodes, StateWatcher, env, store_server, torn_down, two_node_settings, write_spec

from conftest import needs_binary, needs_root
from hakeeper.l3 import netns
from hakeeper.netlab import Lab

pytestmark = pytest.mark.timeout(900)  # building the routers takes minutes on a loaded machine
NODES = ("network6", "network7", "network8")
IDS = [f"9d1e0c2a-5f3b-4c7d-8e9f-00000000009{i}" for i in (1, 2, 3)]
ROUTERS = "routers:\n" + "".join(f"  - {{id: {rid}, name: router9{i}, project: service}}\n"
                                 for i, rid in enumerate(IDS, start=1))
LOST_AFTER = 8.0
METRICS_PORT = 9464  # inside each node's namespace


@dataclass
class Cluster(AgentNodes):
    store: Path
    watcher: StateWatcher | None = None

    def hk(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "hakeeper", *args, "--store", str(self.store)],
                             capture_output=True, text=True, timeout=120, env=env(), check=False)
        assert out.returncode == 0, f"hakeeper {' '.join(args)}: {out.returncode} {out.stderr}"
        return out.stdout

    def start(self, node: str) -> None:
        self.start_agent(node, {"ha": "ha0"}, "--node-lost-after", str(LOST_AFTER), "--store", str(self.store),
                         "--events-file", str(self.workdir / f"{node}.events"),
                         "--metrics", f"127.0.0.1:{METRICS_PORT}")

    def kill(self, node: str) -> None:
        """The node dies: its agent SIGKILLed (no last advert), its HA link cut."""
        self.agents[node].kill()
        self.agents[node].wait(timeout=10)
        self.hosts[node].cut("ha0")

    def alive(self) -> list[str]:
        return [n for n, p in self.agents.items() if p.poll() is None]

    def hosting(self, rid: str, nodes: list[str]) -> dict[str, str]:
        """node -> state of `rid` on the given (alive) nodes that host it."""
        return {n: st for n in nodes if (st := self.states(n).get(rid)) is not None}

    def history(self) -> list[tuple[float, str, str, str]]:
        assert self.watcher is not None
        return self.watcher.history

    def changes(self, rid: str, since: float) -> list[tuple[float, str, str, str]]:
        assert self.watcher is not None
        return self.watcher.changes(rid, since)

    def events(self, node: str) -> list[dict[str, str]]:
        path = self.workdir / f"{node}.events"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def metrics(self, node: str) -> str:
        out = self.hosts[node].run(["curl", "-s", "--max-time", "20", f"http://127.0.0.1:{METRICS_PORT}/metrics"],
                                   timeout=30)
        return out.stdout

    def one_master_each(self, nodes: list[str], replicas: int = 2) -> bool:
        return all(sorted(self.hosting(rid, nodes).values()) == ["active"] + ["standby"] * (replicas - 1)
                   for rid in IDS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    needs_root()
    needs_binary("nft", "nftables")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3reprotect")
    _, spec_file = write_spec(workdir, ROUTERS, two_node_settings())
    store = workdir / "store.sock"
    server = store_server(store)
    with Lab("hkl3p") as lab:
        c: Cluster | None = None
        with torn_down(lambda: c, server, watcher=lambda: c.watcher if c else None):
            hosts = {n: lab.host(n, {"ha0": []}, segments={"ha0": "brha"}) for n in NODES}
            c = Cluster(lab, hosts, workdir, store)
            c.wait_for(store.exists, 60, "store socket")
            c.hk("router", "init", "--spec", str(spec_file), "--nodes", ",".join(NODES))
            # network6 first: the first node up for a router is its master (nopreempt), so
            # network6 holds the masters of its routers, the others become their backups.
            c.start(NODES[0])
            c.wait_for(lambda: len(c.states(NODES[0])) == 2 and set(c.states(NODES[0]).values()) == {"active"},
                       120, "network6 master of its routers")
            for n in NODES[1:]:
                c.start(n)
            c.wait_for(lambda: c.one_master_each(list(NODES)), 120, "one master per router")
            c.watcher = StateWatcher(c, c.alive)  # changes start after its first reading
            c.watcher.start()
            yield c


def test_a_lost_node_s_routers_are_protected_again_without_reelection(cluster: Cluster) -> None:
    c = cluster
    lost, survivors = "network7", ["network6", "network8"]
    before = {rid: c.hosting(rid, list(NODES)) for rid in IDS}
    affected = [rid for rid in IDS if lost in before[rid]]
    untouched = [rid for rid in IDS if rid not in affected]
    kept_masters = {rid: n for rid in affected for n, st in before[rid].items() if st == "active" and n != lost}
    assert affected and untouched, before  # the placement spreads 3 routers over 3 nodes
    since, since_wall = time.monotonic(), time.time()
    c.kill(lost)
    # Each affected router: active on a survivor and a new standby on the other one.
    took = c.wait_for(lambda: c.one_master_each(survivors), BOUND + LOST_AFTER + 20,
                      "every router on both survivors with one master")
    print(f"\nre-protected {len(affected)} router(s) {took:.1f} s after the kill")
    for rid in affected:
        new_node, = set(survivors) - set(before[rid])
        assert netns.exists(f"{c.prefix(new_node)}qrouter-{rid}")
        assert c.hosting(rid, [new_node]) == {new_node: "standby"}, "a new replica starts as BACKUP"
    # The survivors' masters never moved, and the routers not on the lost node never changed.
    for rid, n in kept_masters.items():
        assert [h for h in c.changes(rid, since) if h[1] == n] == [], f"{rid} re-elected: {c.changes(rid, since)}"
    for rid in untouched:
        assert c.changes(rid, since) == [], f"{rid} changed: {c.changes(rid, since)}"
    # Why it happened, as events: the survivor's takeover of network7's masters (no advert), the
    # node lost (by the controller, network6), the new replicas started as backups.
    taken = [e for e in c.events("network8") if e["kind"] == "transition" and e["new"] == "MASTER"
             and e["cause"] == "master-down" and e["router"] in affected and float(e["time"]) >= since_wall]
    assert len(taken) == sum(1 for rid in affected if before[rid].get(lost) == "active"), c.events("network8")
    assert any(e["kind"] == "node-lost" and lost in e["detail"] for e in c.events("network6")), c.events("network6")
    rows = json.loads(c.hk("router", "list", "--json"))
    assert {r["id"]: r["replicas"] for r in rows} == dict.fromkeys(IDS, 2), rows
    assert all(len(r["active"]) == 1 and r["active"][0] in survivors for r in rows), rows

    # The new replicas serve: the node holding the surviving masters dies, they take over.
    victim = "network6"
    mastered = [rid for rid in IDS if c.states(victim).get(rid) == "active"]
    assert mastered
    c.kill(victim)
    c.wait_for(lambda: all(c.states("network8").get(rid) == "active" for rid in mastered), BOUND + 5,
               f"network8 master of {mastered}")

    # network7 returns (links back, agent restarted): it becomes a backup of every router again
    # (only network8 is left), and no router has two masters at any time.
    since = time.monotonic()
    c.hosts[lost].restore("ha0")
    c.start(lost)
    c.wait_for(lambda: c.one_master_each(["network7", "network8"]), LOST_AFTER + 120,
               "network7 back as a backup of every router")
    assert all(c.states("network8")[rid] == "active" for rid in IDS)
    assert [h for h in c.history() if h[0] > since and h[1] == lost and h[3] == "active"] == []


def test_two_masters_past_the_bound_raise_the_dual_active_alarm(cluster: Cluster) -> None:
    """network7 and network8 both serve every router (network8 master). network7's HA link is cut
    while both agents run: it hears no adverts and becomes master too, two masters for every
    router. The controller (network7, the lowest alive node) raises one alarm per router once
    that lasted past the VRRP bound, and clears it when the link is back and VRRP has settled."""
    c = cluster
    assert c.one_master_each(["network7", "network8"])
    c.hosts["network7"].cut("ha0")
    try:
        c.wait_for(lambda: sum(1 for e in c.events("network7") if e["kind"] == "dual-active") == len(IDS),
                   BOUND + LOST_AFTER + 30, "a dual-active alarm per router")
        assert "hakeeper_l3_dual_active_routers 3.0" in c.metrics("network7")
    finally:
        c.hosts["network7"].restore("ha0")
    c.wait_for(lambda: sum(1 for e in c.events("network7") if e["kind"] == "dual-active-cleared") == len(IDS),
               BOUND + LOST_AFTER + 30, "every alarm cleared")
    assert c.one_master_each(["network7", "network8"])
    m = c.metrics("network8")
    assert 'hakeeper_l3_routers{state="MASTER"}' in m and "hakeeper_l3_takeovers_total" in m, m[:2000]
