"""A three-node hakeeper cluster in network namespaces, for the integration tests and the
failover benchmark: per node an etcd member (Debian's etcd-server) and an agent, all on one
bridge (TLS with client certificates and RBAC unless tls=False); the group VIP + HTTP service +
OCF Dummy, fenced by the namespace device.

Built on `hakeeper.netlab` (prefix `hka`): node cN is the lab's host `cN` (namespace
`hka-<pid>.<n>-cN`) at 10.92.<subnet>.N/16; the root namespace is plugged into the bridge as
10.92.<subnet>.254/24, so the test reaches every node and the VIP (.100).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from hakeeper.coord.etcdproc import Cluster, Member, TlsFiles
from hakeeper.coord.lease import DEFAULT_LEASE_TTL
from hakeeper.coord.pki import cluster_pki
from hakeeper.netlab import Lab
from hakeeper.netlab.lab import kill_namespace_processes

SRC = str(Path(__file__).resolve().parents[2])


PREFIX = "hka"
IFNAME = "eth0"


def group_spec(
    subnet: int, tag: str, nodes: list[str], docroot: str, monitor: str = "1s", threshold: int = 2,
    fence_template: str = "hka-{node}",
    fence_delay: str = "0s",
) -> str:
    vip = f"10.92.{subnet}.100"
    names = ", ".join(f"{{name: {n}}}" for n in nodes)
    return f"""\
cluster:
  name: {tag}
  stonith-enabled: true
  no-quorum-policy: stop
  resource-stickiness: 100
nodes: [{names}]
resources:
  primitives:
    - id: fence
      agent: stonith:netns
      params: {{template: "{fence_template}", pcmk_delay_base: "{fence_delay}"}}
    - id: vip
      agent: vip
      params: {{ip: "{vip}/16", nic: eth0}}
      operations: [{{name: monitor, interval: {monitor}, timeout: 5s}}]
    - id: web
      agent: process
      params: {{command: "{sys.executable} -m http.server 8080 --bind 0.0.0.0", cwd: "{docroot}"}}
      meta: {{migration-threshold: {threshold}}}
      operations: [{{name: monitor, interval: {monitor}, timeout: 5s}}]
    - id: dummy
      agent: ocf:heartbeat:Dummy
      operations: [{{name: monitor, interval: {monitor}, timeout: 10s}}]
  groups:
    - id: svc
      members: [vip, web, dummy]
"""


class NsCluster:
    def __init__(
        self, workdir: str, tag: str = "c", subnet: int = 10, size: int = 3, ttl: int = DEFAULT_LEASE_TTL,
        tls: bool = True,
    ) -> None:
        self.workdir = workdir
        self.tag = tag
        self.subnet = subnet
        self.ttl = ttl
        self.names = [f"{tag}{i}" for i in range(1, size + 1)]
        self.vip = f"10.92.{subnet}.100"
        self.lab = Lab(PREFIX)
        self.lab.start()  # sweeps what dead runs left
        try:
            self.lab.attach_root(f"10.92.{subnet}.254/24")
            self.address = {name: f"10.92.{subnet}.{i}/16" for i, name in enumerate(self.names, 1)}
            self.hosts = {name: self.lab.host(name, {IFNAME: [self.address[name]]}) for name in self.names}
        except BaseException:
            self.lab.close()
            raise
        # The namespace fence device finds node N's namespace through this template.
        self.fence_template = f"{PREFIX}-{self.lab.owner}-{{node}}"
        self.members = {
            name: Member(name, self.ip(name), 2379, 2380, os.path.join(workdir, f"{name}.etcd"), netns=h.ns)
            for name, h in self.hosts.items()
        }
        # tls (the default): etcd as production runs it (docs/agent.md): TLS, client certificates,
        # and RBAC giving the agents' user this cluster's prefix only; agents and commands get the
        # certificates through HAKEEPER_CACERT/CERT/KEY. tls=False for plain etcd (a benchmark of
        # etcd itself, driven with a bare etcdctl).
        ips = [self.ip(n) for n in self.names]
        self.pki = cluster_pki(Path(workdir, "pki"), ips, f"hakeeper-{tag}") if tls else None
        if self.pki is not None:
            for m in self.members.values():
                m.tls = TlsFiles(self.pki.ca, *self.pki.server)
        self.etcd = Cluster(list(self.members.values()), token=f"hka-{tag}")
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.docroot = os.path.join(workdir, "www")
        os.makedirs(self.docroot, exist_ok=True)
        Path(self.docroot, "index.html").write_text("hakeeper\n")

    def ip(self, name: str) -> str:
        return self.address[name].split("/")[0]

    def spec(self, **kw: Any) -> str:
        """The group configuration for this cluster (see `group_spec`)."""
        return group_spec(self.subnet, self.tag, self.names, self.docroot, fence_template=self.fence_template, **kw)

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": SRC, "HAKEEPER_CLUSTER": self.tag, "no_proxy": "*"}
        if self.pki is not None:
            cert, key = self.pki.client
            env |= {"HAKEEPER_CACERT": self.pki.ca, "HAKEEPER_CERT": cert, "HAKEEPER_KEY": key}
        return env

    def endpoints(self, first: str | None = None) -> str:
        names = sorted(self.names, key=lambda n: n != first)
        return ",".join(self.members[n].endpoint for n in names)

    def raft_leader(self) -> str | None:
        """The node whose etcd member is the raft leader now (etcdctl endpoint status)."""
        tls = [f"--cacert={self.pki.ca}", f"--cert={self.pki.root[0]}", f"--key={self.pki.root[1]}"] if self.pki else []
        out = subprocess.run(
            ["etcdctl", *tls, "--endpoints", self.endpoints(), "endpoint", "status", "-w", "json"],
            capture_output=True, text=True, timeout=15, env={**os.environ, "ETCDCTL_API": "3"},
        )
        with contextlib.suppress(ValueError, KeyError, TypeError):
            for doc in json.loads(out.stdout or "[]"):
                status = doc["Status"]
                if status["header"]["member_id"] == status["leader"]:
                    host = doc["Endpoint"].split("//")[-1].rsplit(":", 1)[0]
                    return next((n for n in self.names if self.ip(n) == host), None)
        return None

    def start(self) -> None:
        self.etcd.start(timeout=30)
        if self.pki is not None:
            self.etcd.enable_auth(self.pki.root, self.pki.user, f"/hakeeper/{self.tag}/")
        for name in self.names:
            self.start_agent(name)

    def start_agent(self, name: str) -> None:
        with open(os.path.join(self.workdir, f"{name}.agent.log"), "ab") as log:
            self.agents[name] = self.hosts[name].spawn(
                [
                    sys.executable,
                    "-m",
                    "hakeeper",
                    "agent",
                    "--node",
                    name,
                    "--etcd",
                    self.endpoints(name),
                    "--lease-ttl",
                    str(self.ttl),
                    "--timeout",
                    "0.5",
                    "--state-dir",
                    os.path.join(self.workdir, "state"),
                    "--log-level",
                    "info",
                ],
                # Resources started by the agent learn their node from HAKEEPER_NODE (a
                # process resource's command can pick its per-node file with it).
                env={**self.env, "HAKEEPER_NODE": name},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def start_member(self, name: str) -> None:
        m = self.members[name]
        m.start(self.etcd.initial_cluster, self.etcd.token)
        deadline = time.monotonic() + 20
        while not m.healthy() and time.monotonic() < deadline:
            time.sleep(0.1)

    def hk(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "hakeeper", *args, "--etcd", self.endpoints()],
            env=self.env,
            capture_output=True,
            text=True,
            # A loaded shared machine (load 25+ on two cores) needs a minute just to start Python.
            timeout=180,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"hakeeper {' '.join(args)}: {out.stderr}")
        return out

    def apply(self, text: str) -> None:
        path = os.path.join(self.workdir, "cluster.yaml")
        Path(path).write_text(text)
        self.hk("config", "apply", path)

    def status(self) -> dict[str, Any]:
        return json.loads(self.hk("status", "--json").stdout)  # type: ignore[no-any-return]

    def healthy(self, timeout: float = 60.0) -> str:
        """Wait until every node is online and the group answers on one node; returns that node."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.status()
            if all(w == "online" for w in view["nodes"].values()) and self.answers():
                node = self.group_on(view)
                if node is not None:
                    return node
            if time.monotonic() > deadline:
                raise TimeoutError(f"no healthy cluster within {timeout:g}s: {view['nodes']}")
            time.sleep(0.1)

    def group_on(self, view: dict[str, Any] | None = None) -> str | None:
        view = view or self.status()
        where = [view["resources"].get(r, {}).get("running_on", []) for r in ("vip", "web", "dummy")]
        return where[0][0] if all(w == where[0] and len(w) == 1 for w in where) else None

    def answers(self, timeout: float = 0.3) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{self.vip}:8080/index.html", timeout=timeout) as r:
                return bool(r.read() == b"hakeeper\n")
        except OSError:
            return False

    def kill_node(self, name: str) -> None:
        """Node death: every process of the namespace killed, its link down."""
        host = self.hosts[name]
        host.ip("link", "set", IFNAME, "down", check=False)
        kill_namespace_processes(host.ns)
        self.members[name].proc = None
        self.agents.pop(name, None)

    def revive_node(self, name: str) -> None:
        """The node boots again: its volatile state (/run: pidfiles, OCF state, addresses) is gone."""
        host = self.hosts[name]
        shutil.rmtree(os.path.join(self.workdir, "state", name), ignore_errors=True)
        host.ip("addr", "flush", "dev", IFNAME, check=False)
        host.ip("addr", "add", self.address[name], "dev", IFNAME, check=False)
        host.ip("link", "set", IFNAME, "up", check=False)
        host.restore(IFNAME)  # after a partition
        self.start_member(name)
        self.start_agent(name)

    def partition(self, name: str) -> None:
        """Cut the node off the network (as a pulled cable); its processes stay alive."""
        self.hosts[name].cut(IFNAME)

    def kill_agent(self, name: str) -> None:
        proc = self.agents.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def events(self) -> list[dict[str, Any]]:
        out = self.hk("events", "--json", "--last", "1000").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def close(self) -> None:
        for proc in list(self.agents.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.agents.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.etcd.stop()
        self.lab.close()
