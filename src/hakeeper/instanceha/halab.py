"""A hakeeper cluster over the Nova lab (novalab): an etcd member and an agent on the controller,
an agent on every compute, fenced by the namespace device (it kills every process of the compute's
namespace: nova-compute with it), the evacuator placed by the scheduler. For the integration tests
and bench/instance_ha.py.

The fence goes through a gate: the device's namespace template names `hkih-<owner>-gate-<node>`,
an alias (bind mount) of the compute's namespace that exists only while the gate is open, so a
test can make fencing fail and succeed again without touching the agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hakeeper.coord.etcdproc import Cluster, Member
from hakeeper.instanceha.novalab.guests import LEDGER, GuestWatcher
from hakeeper.instanceha.novalab.lab import BOOT_ATTEMPTS, CLOUD, NovaLab
from hakeeper.netlab.lab import kill_namespace_processes

SRC = str(Path(__file__).resolve().parents[2])
IFNAME = "eth0"


def spec(
    computes: list[str], gate: str, clouds_yaml: str, etcd: str, tag: str, parallel: int = 8, reserved: str = "",
    node_timeout: str = "1500ms",
    in_progress: int = 32,
) -> str:
    nodes = ", ".join(f"{{name: {n}}}" for n in ["controller", *computes])
    return f"""\
cluster:
  name: {tag}
  stonith-enabled: true
  no-quorum-policy: stop
  node-timeout: {node_timeout}
nodes: [{nodes}]
resources:
  primitives:
    - id: fence
      agent: stonith:netns
      params: {{template: "{gate}"}}
    - id: compute-mark
      agent: ocf:heartbeat:Dummy
      operations: [{{name: monitor, interval: 5s, timeout: 10s}}]
    - id: evacuator
      agent: instanceha:evacuator
      params: {{computes: "{",".join(computes)}", clouds_yaml: "{clouds_yaml}", cloud: {CLOUD},
                etcd: "{etcd}", cluster: {tag}, parallel: "{parallel}", reserved_hosts: "{reserved}",
                in_progress: "{in_progress}"}}
      operations: [{{name: monitor, interval: 1s, timeout: 5s}}]
  clones:
    - {{id: computes, child: compute-mark}}
constraints:
  location:
    - {{id: marks-on-computes, resource: computes, node: controller, score: -INFINITY}}
    - {{id: evacuator-home, resource: evacuator, node: controller, score: 100}}
"""


class HaCluster:
    def __init__(
        self,
        lab: NovaLab,
        workdir: Path,
        tag: str = "ihatest",
        parallel: int = 8,
        node_timeout: str = "1500ms",
        in_progress: int = 32,
    ) -> None:
        self.lab, self.workdir, self.tag, self.parallel = lab, workdir, tag, parallel
        self.in_progress = in_progress
        self.node_timeout = node_timeout
        self.nodes = ["controller", *lab.compute_names]
        ctl = lab.hosts["controller"]
        self.etcd = Cluster([Member("e1", lab.ctl.ip, 2379, 2380, str(workdir / "etcd"), netns=ctl.ns)], token=tag)
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.gate = f"hkih-{lab.net.owner}-gate-{{node}}"
        self.reserved = ""  # the evacuator's reserved_hosts in the configuration applied last

    @property
    def endpoint(self) -> str:
        return f"{self.lab.ctl.ip}:2379"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": SRC, "HAKEEPER_CLUSTER": self.tag, "no_proxy": "*"}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The lab's project keeps Nova's default quota of 10 instances; the tests and the bench boot more.
        # The default quota class: a project's own quota needs Keystone to check the project.
        unlimited = {"quota_class_set": {"instances": -1, "cores": -1, "ram": -1}}
        self.lab.nova("PUT", "/os-quota-class-sets/default", unlimited)
        self.etcd.start()
        for node in self.nodes:
            self.start_agent(node)
        self.wait(lambda: all(self.status()["nodes"].get(n) == "online" for n in self.nodes), 60, "agents online")
        self.configure()
        self.wait(lambda: self.evacuator_node() is not None, 60, "the evacuator running")
        for node in self.lab.compute_names:
            self.open_gate(node)

    def configure(self, reserved: str = "") -> None:
        """Apply the cluster's configuration; `reserved`: the evacuator's reserved_hosts. A running
        evacuator keeps the parameters it started with until it is started again."""
        text = spec(
            self.lab.compute_names, self.gate, str(self.lab.clouds_yaml), self.endpoint, self.tag, self.parallel,
            reserved, self.node_timeout, self.in_progress,
        )
        path = self.workdir / "cluster.yaml"
        path.write_text(text)
        self.reserved = reserved
        self.hk("config", "apply", "--yes", str(path))

    def reconfigure(self, reserved: str) -> None:
        """Apply the configuration with these reserved_hosts and have the running evacuator
        started again with them (it reads its parameters when it starts)."""
        self.configure(reserved=reserved)
        reconfigured = time.time()
        self.kill_evacuator()

        def restarted() -> bool:
            return self.evacuator_node() is not None and any(
                e["kind"] == "evacuator-started" and float(e["at"]) > reconfigured for e in self.events()
            )

        self.wait(restarted, 60, f"the evacuator started again with reserved_hosts {reserved!r}")

    def set_enabled(self, host: str, enabled: bool) -> None:
        """Enable or disable `host`'s nova-compute in Nova (a reserved host is kept disabled)."""
        service_id = self.lab.service(host)["id"]
        body = {"status": "enabled" if enabled else "disabled"}
        self.lab.nova("PUT", f"/os-services/{service_id}", body, microversion="2.53")

    def start_agent(self, node: str) -> None:
        with open(self.workdir / f"{node}.agent.log", "ab") as log:
            self.agents[node] = self.lab.hosts[node].spawn(
                [
                    sys.executable,
                    "-m",
                    "hakeeper",
                    "agent",
                    "--node",
                    node,
                    "--etcd",
                    self.endpoint,
                    "--timeout",
                    "0.5",
                    "--state-dir",
                    str(self.workdir / "state"),
                ],
                env={**self.env(), "HAKEEPER_NODE": node},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def hk(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # 240 s: at load 55 on this 2-core machine `config apply` (Python's start, hakeeper's
        # imports, the placement preview) took longer than 60 s.
        return subprocess.run(
            [sys.executable, "-m", "hakeeper", *args, "--etcd", self.endpoint],
            capture_output=True,
            text=True,
            timeout=240,
            check=check,
            env=self.env(),
        )

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.hk("status", "--json").stdout))

    def evacuator_node(self) -> str | None:
        entry = self.status().get("resources", {}).get("evacuator") or {}
        running = entry.get("running_on") or []
        return None if entry.get("failed_on") or len(running) != 1 else str(running[0])

    def recoveries(self) -> list[dict[str, Any]]:
        doc = json.loads(self.hk("recovery", "list", "--json", "--no-nova").stdout)
        return list(doc["recoveries"])

    def latest_recovery(self, node: str, after: float = 0.0) -> dict[str, Any] | None:
        """The last recovery of `node` whose fence came at or after `after` (time.time())."""
        mine = [r for r in self.recoveries() if r["node"] == node and float(r["fenced_at"]) >= after]
        return mine[-1] if mine else None

    def events(self) -> list[dict[str, Any]]:
        out = self.hk("events", "--json", "--last", "500").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def evacuations(self, ids: list[str]) -> dict[str, int]:
        """Nova's own count of completed evacuations per instance (its migration records)."""
        doc = self.lab.nova("GET", "/os-migrations?migration_type=evacuation", microversion="2.59")
        counts = dict.fromkeys(ids, 0)
        for m in doc.get("migrations", []) if isinstance(doc, dict) else []:
            # A refused attempt (NoValidHost: status error/failed) was retried, not evacuated twice.
            if m.get("instance_uuid") in counts and m.get("status") in ("done", "completed"):
                counts[m["instance_uuid"]] += 1
        return counts

    # ----- the gate of the fence device -----

    def _gate_path(self, node: str) -> Path:
        return Path("/run/netns") / self.gate.format(node=node)

    def open_gate(self, node: str) -> None:
        path = self._gate_path(node)
        if path.exists():
            return
        path.touch()
        subprocess.run(["mount", "--bind", f"/run/netns/{self.lab.hosts[node].ns}", str(path)], check=True)

    def close_gate(self, node: str) -> None:
        path = self._gate_path(node)
        if path.exists():
            subprocess.run(["umount", str(path)], check=False)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # ----- node power -----

    def power_off(self, node: str) -> float:
        """Node death: its link goes dark and every process in it dies at once (nova-compute and
        hakeeper's agent). Returns the time it happened (time.time())."""
        host = self.lab.hosts[node]
        at = time.time()
        host.ip("link", "set", IFNAME, "down", check=False)
        kill_namespace_processes(host.ns)
        self.agents.pop(node, None)
        return at

    def power_on(self, node: str) -> None:
        """The compute boots again: link up, hakeeper's agent, then its nova-compute."""
        host = self.lab.hosts[node]
        host.ip("link", "set", IFNAME, "up", check=False)
        self.start_agent(node)
        self.lab.start_compute(node)

    def bring_back(self, node: str, timeout: float = 600) -> None:
        """`node` a working compute again, as after the repair of a dead host: powered on if its
        nova-compute is not running, its service un-forced-down by the engine after a recovery,
        and up in Nova."""
        if not self.lab.computes[node].daemon.alive():
            self.power_on(node)
        if self.latest_recovery(node) is not None:
            self.wait(lambda: (self.latest_recovery(node) or {}).get("unforced") is True, timeout,
                      f"{node} un-forced-down")
        self.lab.wait_compute(node, up=True, timeout=timeout)

    def partition(self, node: str) -> float:
        """Cut the node off the control plane (its switch port down) while everything in it goes
        on running: nova-compute and its guests, hakeeper's agent. Returns when (time.time())."""
        at = time.time()
        self.lab.hosts[node].cut(IFNAME)
        return at

    def heal(self, node: str) -> None:
        self.lab.hosts[node].restore(IFNAME)

    def servers(self, query: str = "", detail: bool = True) -> list[dict[str, Any]]:
        """Every server Nova lists (one call, whatever their number), `query` added to the filter;
        without `detail` only ids and names (no flavor, addresses or ports: far cheaper for Nova)."""
        doc = self.lab.nova("GET", f"/servers{'/detail' if detail else ''}?all_tenants=1&limit=1000{query}")
        return list(doc.get("servers", [])) if isinstance(doc, dict) else []

    def server_hosts(self) -> dict[str, str]:
        """Nova's placement of every server: id -> host."""
        return {str(s["id"]): str(s.get("OS-EXT-SRV-ATTR:host") or "") for s in self.servers()}

    def boot(self, count: int, host: str, name: str = "vm", timeout: float = 600) -> list[str]:
        """Boot `count` servers pinned to `host` in one API call (Nova's multiple create,
        min_count = max_count = count); returns their ids once every one is ACTIVE there.

        One call and one listing per poll, whatever the count: one POST and one GET per server
        (the lab's boot) took ~40 s a server at load 70-100, where nova-api is one process and
        the scheduler sees the boots one by one. A server refused "No valid host" (a compute
        that has just started, before the scheduler's view caught up) is deleted and booted
        again, a few times at most; any other ERROR fails at once."""
        ids: list[str] = []
        missing = count
        for attempt in range(BOOT_ATTEMPTS):
            body = {"server": {"name": f"{name}-{host}-{attempt}", "imageRef": self.lab.image_id,
                               "flavorRef": self.lab.flavor_id, "networks": "none", "host": host,
                               "min_count": missing, "max_count": missing, "return_reservation_id": True}}
            answer = self.lab.nova("POST", "/servers", body)
            reservation = answer.get("reservation_id") if isinstance(answer, dict) else None
            if not reservation:
                raise RuntimeError(f"Nova's multiple create answered no reservation_id: {str(answer)[:300]}")
            batch = self._wait_built(str(reservation), missing, host, timeout)
            refused = [s for s in batch if s.get("status") == "ERROR"]
            ids += [str(s["id"]) for s in batch if s.get("status") != "ERROR"]
            if not refused:
                return ids
            reasons = {str((s.get("fault") or {}).get("message", "")) for s in refused}
            if any("No valid host" not in r for r in reasons) or attempt == BOOT_ATTEMPTS - 1:
                raise RuntimeError(f"{len(refused)} of {missing} servers on {host} went to ERROR: {sorted(reasons)}")
            for server in refused:
                self.lab.nova("DELETE", f"/servers/{server['id']}")
            missing = len(refused)
            time.sleep(3)
        return ids

    def _wait_built(self, reservation: str, count: int, host: str, timeout: float) -> list[dict[str, Any]]:
        """The servers of one multiple create once each is ACTIVE on `host` or in ERROR."""
        found: list[dict[str, Any]] = []

        def built() -> bool:
            found[:] = self.servers(f"&reservation_id={reservation}")
            settled = [s for s in found if s.get("status") == "ERROR" or
                       (s.get("status") == "ACTIVE" and s.get("OS-EXT-SRV-ATTR:host") == host)]
            return len(found) == count and len(settled) == count

        self.wait(built, timeout, f"{count} servers booted on {host}", every=1.0)
        return found

    def guest_watcher(self) -> GuestWatcher:
        """The independent checker over the hypervisor's ledgers and Nova's view (novalab/guests.py)."""

        def ledgers() -> dict[Path, str]:
            return {c.state_path / LEDGER: identity for identity, c in self.lab.computes.items()}

        return GuestWatcher(ledgers, self.server_hosts)

    def kill_evacuator(self) -> None:
        """SIGKILL the engine process (its resource's pidfile names it): the agent's monitor
        finds it gone and hakeeper starts it again."""
        node = self.evacuator_node()
        pidfile = self.workdir / "state" / str(node) / "evacuator.pid"
        if not pidfile.exists():
            pidfile = next(self.workdir.glob("state/**/evacuator.pid"))
        pid = int(pidfile.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def wait_active(self, ids: list[str], host: str, timeout: float) -> None:
        """Every server ACTIVE on `host`; an ERROR on the way is an attempt the engine retries."""

        def done() -> bool:
            # One listing per poll: a GET per server would load Nova's API as much as the recovery.
            listed = {str(s["id"]): s for s in self.servers()}
            return all(
                (s := listed.get(i, {})).get("status") == "ACTIVE" and s.get("OS-EXT-SRV-ATTR:host") == host
                for i in ids
            )

        self.wait(done, timeout, f"{len(ids)} servers ACTIVE on {host}", every=0.5)

    def wait_moved(self, ids: list[str], victim: str, timeout: float) -> dict[str, int]:
        """Every server ACTIVE on a host other than `victim`; returns how many went to each host.
        Polled with a plain listing of the victim's servers (ids only: the watcher must not load
        Nova's API as much as the recovery), then one detailed listing of all."""
        pending = set(ids)
        spread: dict[str, int] = {}

        def done() -> bool:
            if pending & {str(s["id"]) for s in self.servers(f"&host={victim}", detail=False)}:
                return False
            listed = {str(s["id"]): s for s in self.servers()}
            hosts = [str(listed.get(i, {}).get("OS-EXT-SRV-ATTR:host")) for i in ids]
            if not all(listed.get(i, {}).get("status") == "ACTIVE" for i in ids) or victim in hosts:
                return False
            spread.update({h: hosts.count(h) for h in set(hosts)})
            return True

        self.wait(done, timeout, f"{len(ids)} servers ACTIVE away from {victim}", every=1.0)
        return spread

    @staticmethod
    def wait(check: Any, timeout: float, what: str, every: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while True:
            # OSError: an API call that timed out under load is asked again at the next poll.
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError, OSError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g}s for {what}")
            time.sleep(every)

    def close(self) -> None:
        for node in self.lab.compute_names:
            self.close_gate(node)
        for proc in self.agents.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for pidfile in self.workdir.glob("state/**/evacuator.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError, OSError):
                os.killpg(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        self.etcd.stop()
