"""Three real MariaDB Galera nodes under hakeeper agents, in network namespaces (prefix `hkg`,
10.95.<subnet>.0/24): per node an etcd member, a hakeeper agent and, started by the agent through
Pacemaker's unmodified `ocf:heartbeat:galera`, mysqld_safe and mariadbd (rsync SST).

Every node sees the same paths, as machines of a real cluster do, so the galera primitive has one
set of parameters: `ip netns exec` bind-mounts /etc/netns/<ns>/hkgalera over /etc/hkgalera, and
every process of the node (agent, resource agent, mysqld_safe, mariadbd, the rsync of an SST)
finds its my.cnf, datadir, socket and pidfile there. The agent's HOME (/etc/hkgalera/home) holds
the .my.cnf naming the socket, which galera's status queries rely on.
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
from pathlib import Path
from typing import Any

from hakeeper.coord.etcdproc import Cluster, Member
from hakeeper.galera.front import Front, haproxy_config
from hakeeper.netlab import Lab
from hakeeper.netlab.lab import kill_namespace_processes

SRC = str(Path(__file__).resolve().parents[2])
PREFIX = "hkg"
IFNAME = "eth0"
MOUNT = "/etc/hkgalera"  # what every node's processes see as their own directory
CHECK_USER, CHECK_PASSWORD = "hkcheck", "hkcheck-pw"

MY_CNF = """\
[mysqld]
user = mysql
datadir = {mount}/data
socket = {mount}/mysqld.sock
pid-file = {mount}/mysqld.pid
log-error = {mount}/error.log
bind-address = {ip}
port = 3306
skip-name-resolve
innodb_buffer_pool_size = 16M
innodb_log_file_size = 16M
innodb_log_buffer_size = 1M
key_buffer_size = 1M
aria_pagecache_buffer_size = 1M
max_connections = 30
table_open_cache = 100
performance_schema = OFF
binlog_format = ROW
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_provider_options = "{provider_options}"
wsrep_cluster_name = hkg
wsrep_cluster_address = {gcomm}
wsrep_node_address = {ip}
wsrep_node_name = {name}
wsrep_sst_method = rsync
"""


def galera_spec(lab: GaleraLab, monitor: str = "2s", front: bool = False) -> str:
    """The cluster: the galera primitive as a promotable clone on every node (promoted-max 3, as
    Pacemaker documents galera), Pacemaker's agent unchanged. `front`: also the MySQL VIP as the
    seeds deploy it, a group of the VIP and haproxy on one node, with hakeeper's clustercheck
    cloned on every node (what haproxy's health check asks)."""
    names = ", ".join(f"{{name: {n}}}" for n in lab.names)
    extra = _FRONT_PRIMITIVES.format(vip=lab.vip, mount=MOUNT, python=sys.executable) if front else ""
    return _GALERA_SPEC.format(lab=lab, names=names, monitor=monitor, mount=MOUNT, front=extra) + (
        _FRONT_REST if front else ""
    )


_GALERA_SPEC = """\
cluster:
  name: {lab.tag}
  stonith-enabled: false
  no-quorum-policy: stop
nodes: [{names}]
resources:
  primitives:
    - id: galera
      agent: ocf:heartbeat:galera
      params:
        wsrep_cluster_address: "{lab.gcomm}"
        cluster_host_map: "{lab.host_map}"
        config: {mount}/my.cnf
        datadir: {mount}/data
        socket: {mount}/mysqld.sock
        pid: {mount}/mysqld.pid
        log: {mount}/error.log
        user: mysql
        group: mysql
      operations:
        - {{name: start, timeout: 120s}}
        - {{name: stop, timeout: 120s}}
        - {{name: promote, timeout: 300s}}
        - {{name: demote, timeout: 120s}}
        - {{name: monitor, interval: {monitor}, timeout: 60s}}
        - {{name: monitor, interval: 1s, timeout: 60s, role: Promoted}}
{front}  clones:
    - id: galera-clone
      child: galera
      meta: {{promotable: true, promoted-max: 3, notify: true}}
"""
# The VIP and haproxy move together (a group); clustercheck runs on every node. The VIP is not
# tied to a promoted galera instance: haproxy reaches every node, its health check picks the writer.
_FRONT_PRIMITIVES = """\
    - id: mysql-vip
      agent: vip
      params: {{ip: "{vip}", cidr_netmask: "24", nic: eth0}}
      operations: [{{name: monitor, interval: 2s, timeout: 10s}}]
    - id: haproxy
      agent: process
      params: {{command: "haproxy -db -f {mount}/haproxy.cfg"}}
      operations: [{{name: monitor, interval: 2s, timeout: 10s}}]
    - id: clustercheck
      agent: process
      params: {{command: "{python} -m hakeeper galera clustercheck --port 9200 --socket {mount}/mysqld.sock"}}
      operations: [{{name: monitor, interval: 2s, timeout: 10s}}]
"""
_FRONT_REST = """\
    - id: clustercheck-clone
      child: clustercheck
  groups:
    - id: mysql-front
      members: [mysql-vip, haproxy]
"""


class GaleraLab:
    def __init__(
        self, workdir: str, tag: str = "g", subnet: int = 0, size: int = 3, ttl: int = 5,
        provider_options: str = "gcache.size=16M",
    ) -> None:
        self.workdir = workdir
        self.tag = tag
        self.ttl = ttl
        # Galera's own failure detection (evs.suspect_timeout, 5 s by default) decides how long
        # commits stall when a member goes silent; the bench compares defaults with LAN timings.
        self.provider_options = provider_options
        self.names = [f"{tag}{i}" for i in range(1, size + 1)]
        self.addr = {n: f"10.95.{subnet}.{i}" for i, n in enumerate(self.names, 1)}
        self.gcomm = "gcomm://" + ",".join(self.addr.values())
        self.host_map = ";".join(f"{n}:{a}" for n, a in self.addr.items())
        self.vip = f"10.95.{subnet}.100"  # the MySQL VIP (galera_spec(front=True))
        os.makedirs(workdir, exist_ok=True)
        os.chmod(workdir, 0o755)
        os.makedirs(MOUNT, exist_ok=True)  # the mount point the per-node directories go over
        self.lab = Lab(PREFIX)
        self.lab.start()
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        try:
            self.lab.attach_root(f"10.95.{subnet}.254/24")
            self.hosts = {n: self.lab.host(n, {IFNAME: [f"{a}/24"]}) for n, a in self.addr.items()}
            self.members = {
                n: Member(n, self.addr[n], 2379, 2380, os.path.join(workdir, f"{n}.etcd"), netns=h.ns)
                for n, h in self.hosts.items()
            }
            self.etcd = Cluster(list(self.members.values()), token=f"hkg-{tag}-{os.getpid()}")
            for n in self.names:
                self._prepare_node(n)
        except BaseException:
            self.close()
            raise

    # ----- per node -----

    def node_dir(self, name: str) -> str:
        """The node's /etc/hkgalera, seen from outside its namespace."""
        return f"/etc/netns/{self.hosts[name].ns}/hkgalera"

    def _prepare_node(self, name: str) -> None:
        d = self.node_dir(name)
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        os.chmod(d, 0o755)
        Path(d, "my.cnf").write_text(MY_CNF.format(
            mount=MOUNT, gcomm=self.gcomm, ip=self.addr[name], name=name, provider_options=self.provider_options
        ))
        front = Front(self.vip, self.addr, stats_socket=f"{MOUNT}/haproxy.sock")
        Path(d, "haproxy.cfg").write_text(haproxy_config(front))
        Path(d, "home", ".my.cnf").write_text(f"[client]\nsocket = {MOUNT}/mysqld.sock\nuser = root\n")
        Path(d, "error.log").touch()
        shutil.chown(os.path.join(d, "error.log"), "mysql", "mysql")
        # The real path (install-db runs outside the namespace), then the paths as the node sees them.
        out = subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={d}/data", "--user=mysql",
                "--skip-test-db", "--auth-root-authentication-method=socket",
            ],
            capture_output=True, text=True, timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"mariadb-install-db for {name}: {out.stderr[-500:]}")
        subprocess.run(["chown", "-R", "mysql:mysql", d], check=True)
        shutil.chown(os.path.join(d, "home"), "root", "root")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": SRC, "HAKEEPER_CLUSTER": self.tag, "no_proxy": "*"}

    def endpoints(self, first: str | None = None) -> str:
        return ",".join(self.members[n].endpoint for n in sorted(self.names, key=lambda n: n != first))

    def start(self) -> None:
        self.etcd.start(timeout=30)
        for n in self.names:
            self.start_agent(n)

    def form(self, spec: str, timeout: float = 240) -> None:
        """Start the store and the agents, apply `spec`, and wait for a settled cluster with the
        checker's user and table in it (what every Galera test module starts from)."""
        from hakeeper.galera import checker

        self.start()
        self.apply(spec)
        first = self.wait_synced(1, timeout)[0]
        self.create_check_user(first)
        checker.prepare(self.addr[first], CHECK_USER, CHECK_PASSWORD)
        self.wait_quiet(timeout)

    def start_agent(self, name: str) -> None:
        with open(os.path.join(self.workdir, f"{name}.agent.log"), "ab") as log:
            self.agents[name] = self.hosts[name].spawn(
                [
                    sys.executable, "-m", "hakeeper", "agent", "--node", name,
                    "--etcd", self.endpoints(name), "--lease-ttl", str(self.ttl), "--timeout", "0.5",
                    "--state-dir", os.path.join(self.workdir, "state"), "--log-level", "info",
                ],
                env={**self.env, "HOME": f"{MOUNT}/home"},
                stdout=log, stderr=log, start_new_session=True,
            )

    def hk(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "hakeeper", *args, "--etcd", self.endpoints()],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"hakeeper {' '.join(args)}: {out.stderr}")
        return out

    def apply(self, text: str) -> None:
        path = os.path.join(self.workdir, "cluster.yaml")
        Path(path).write_text(text)
        self.hk("config", "apply", "--yes", path)

    def status(self) -> dict[str, Any]:
        return json.loads(self.hk("status", "--json").stdout)  # type: ignore[no-any-return]

    def sql(self, name: str, statement: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """A statement as root through the node's socket (inside its namespace)."""
        return self.hosts[name].run(
            ["mariadb", f"--defaults-file={MOUNT}/home/.my.cnf", "-N", "-B", "-e", statement], timeout=timeout
        )

    def wsrep(self, name: str) -> dict[str, str]:
        out = self.sql(name, "SHOW GLOBAL STATUS LIKE 'wsrep_%'", timeout=5)
        return dict(line.split("\t", 1) for line in out.stdout.splitlines() if "\t" in line)

    def synced(self) -> list[str]:
        """The nodes whose mariadbd is Synced in a Primary component."""
        out = []
        for n in self.names:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w = self.wsrep(n)
                if w.get("wsrep_local_state_comment") == "Synced" and w.get("wsrep_cluster_status") == "Primary":
                    out.append(n)
        return out

    def wait_synced(self, count: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.synced()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(got)} of {count} nodes synced after {timeout:g}s: {got}")
            time.sleep(0.3)

    def create_check_user(self, name: str) -> None:
        """A user for the checker over TCP; replicated to every node by Galera."""
        stmt = (
            f"CREATE USER IF NOT EXISTS '{CHECK_USER}'@'%' IDENTIFIED BY '{CHECK_PASSWORD}'; "
            f"GRANT ALL ON *.* TO '{CHECK_USER}'@'%'"
        )
        out = self.sql(name, stmt)
        if out.returncode != 0:
            raise RuntimeError(f"creating the check user on {name}: {out.stderr}")

    def database_pids(self, name: str) -> list[int]:
        """mysqld_safe and mariadbd of the node (what its database is)."""
        out = subprocess.run(["ip", "netns", "pids", self.hosts[name].ns], capture_output=True, text=True)
        pids = []
        for pid in out.stdout.split():
            with contextlib.suppress(OSError):
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                if comm in ("mariadbd", "mysqld_safe", "mysqld"):
                    pids.append(int(pid))
        return pids

    def kill_database(self, name: str) -> None:
        """SIGKILL the node's mysqld_safe and mariadbd (mysqld_safe would restart it otherwise)."""
        for pid in self.database_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def power_off(self, name: str) -> None:
        """Everything of the node dies at once and its link goes dark."""
        self.hosts[name].ip("link", "set", IFNAME, "down", check=False)
        kill_namespace_processes(self.hosts[name].ns)
        self.members[name].proc = None
        proc = self.agents.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def power_on(self, name: str) -> None:
        """The node boots: its link up, /run (the agent's state, pid and socket files) empty,
        its etcd member and agent started; the agent brings the database back."""
        shutil.rmtree(os.path.join(self.workdir, "state", name), ignore_errors=True)
        for f in ("mysqld.pid", "mysqld.sock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.node_dir(name), f))
        self.hosts[name].ip("link", "set", IFNAME, "up", check=False)
        self.members[name].start(self.etcd.initial_cluster, self.etcd.token)
        self.start_agent(name)

    def partition(self, name: str) -> None:
        """Cut the node off from its peers (nftables in its namespace drops their packets both
        ways; no reset, as a broken switch): the test host still reaches it, so a client can see
        whether it serves."""
        peers = ", ".join(a for n, a in self.addr.items() if n != name)
        rules = (
            "table inet hkgpart {\n"
            f"  chain in {{ type filter hook input priority 0; ip saddr {{ {peers} }} drop; }}\n"
            f"  chain out {{ type filter hook output priority 0; ip daddr {{ {peers} }} drop; }}\n"
            "}\n"
        )
        path = os.path.join(self.workdir, f"{name}.partition.nft")
        Path(path).write_text(rules)
        out = self.hosts[name].run(["nft", "-f", path], timeout=10)
        if out.returncode != 0:
            raise RuntimeError(f"partitioning {name}: {out.stderr}")

    def heal(self, name: str) -> None:
        self.hosts[name].run(["nft", "delete", "table", "inet", "hkgpart"], timeout=10)

    def save_logs(self) -> None:
        """Each node's MariaDB error.log (and grastate.dat) into the work directory, before
        close() removes the node directories: what a failed test is read from afterwards."""
        for n in getattr(self, "hosts", {}):
            for f in ("error.log", "data/grastate.dat"):
                with contextlib.suppress(OSError):
                    kept = os.path.join(self.workdir, f"{n}.{Path(f).name}")
                    shutil.copyfile(os.path.join(self.node_dir(n), f), kept)

    def galera_roles(self) -> dict[str, str]:
        """hakeeper's view of the galera clone: node -> Promoted / Started / FAILED (absent: stopped)."""
        roles: dict[str, str] = {}
        view = self.status()
        for rsc, entry in view["resources"].items():
            if rsc.partition(":")[0] != "galera":
                continue
            for n in entry["running_on"]:
                roles[n] = "Promoted" if n in entry.get("promoted_on", []) else "Started"
            for n in entry["failed_on"]:
                roles[n] = "FAILED"
        if view.get("plan") and view["plan"].get("outstanding"):
            roles["(transition)"] = " ".join(view["plan"]["outstanding"])
        return roles

    def wait_quiet(self, timeout: float, quiet: float = 3.0) -> None:
        """Until every node is Synced in the Primary component, promoted in hakeeper's view with
        no transition outstanding, and has stayed so for `quiet` seconds: the next scenario starts
        from a healthy, settled cluster, not from one still recovering from the last."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        last: tuple[list[str], dict[str, str]] = ([], {})
        while True:
            now = time.monotonic()
            synced = sorted(self.synced())
            try:
                roles = self.galera_roles()
            except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                roles = {}
            last = (synced, roles)
            healthy = synced == sorted(self.names) and roles == {n: "Promoted" for n in self.names}
            since = (since or now) if healthy else None
            if since is not None and now - since >= quiet:
                return
            if now > deadline:
                raise TimeoutError(f"no quiet cluster after {timeout:g}s: synced {last[0]}, hakeeper {last[1]}")
            time.sleep(0.5)

    def close(self) -> None:
        self.save_logs()
        for proc in list(self.agents.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for h in getattr(self, "hosts", {}).values():
            kill_namespace_processes(h.ns)
        if hasattr(self, "etcd"):
            self.etcd.stop()
            # The logs stay for reading; etcd's preallocated WAL (~120 MB a member) does not.
            for m in self.members.values():
                shutil.rmtree(m.data_dir, ignore_errors=True)
        self.lab.close()
        for h in getattr(self, "hosts", {}).values():
            shutil.rmtree(f"/etc/netns/{h.ns}", ignore_errors=True)
        with contextlib.suppress(OSError):
            if not any(os.path.isdir(f"/etc/netns/{ns}/hkgalera") for ns in os.listdir("/etc/netns")):
                os.rmdir(MOUNT)
