"""Three real RabbitMQ brokers under hakeeper agents, in network namespaces (prefix `hkr`,
10.96.<subnet>.0/24): per node an etcd member, a hakeeper agent and, started by the agent through
hakeeper's native `rabbitmq` class (run as a clone), rabbitmq-server as `rabbit@<node>`.

Every node sees the same paths, as machines of a real cluster do, so the primitive has one set of
parameters: `ip netns exec` bind-mounts /etc/netns/<ns>/hkrabbitmq over /etc/hkrabbitmq (the
node's HOME, cookie, mnesia, logs) and /etc/netns/<ns>/hosts over /etc/hosts (the short node
names r1, r2, r3 resolve to the nodes' addresses). Both go when the lab closes.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hakeeper.coord.etcdproc import Cluster, Member
from hakeeper.netlab import Lab
from hakeeper.netlab import partition as netpart
from hakeeper.netlab.lab import kill_namespace_processes
from hakeeper.rabbitmq.decide import parse_node_list

SRC = str(Path(__file__).resolve().parents[2])
PREFIX = "hkr"
IFNAME = "eth0"
MOUNT = "/etc/hkrabbitmq"  # what every node's processes see as their RabbitMQ directory
BIN = "/usr/lib/rabbitmq/bin"
VHOST = "openstack"
POLICY = "openstack-quorum"
# RabbitMQ's own processes: what "the broker" of a node is, for a kill.
BROKER_COMMANDS = ("beam.smp", "erl_child_setup", "rabbitmq-server", "epmd", "inet_gethost", "sh")


def spec_header(lab: RabbitLab, fencing: bool) -> str:
    names = ", ".join(f"{{name: {n}}}" for n in lab.names)
    # With fencing, a group that moved stays where it is when its old node returns.
    extra = "  stonith-enabled: true\n  resource-stickiness: 100\n" if fencing else "  stonith-enabled: false\n"
    return f"""\
cluster:
  name: {lab.tag}
{extra}  no-quorum-policy: stop
nodes: [{names}]
resources:
  primitives:
"""


def rabbitmq_spec(lab: RabbitLab, monitor: str = "10s") -> str:
    """The cluster: the native rabbitmq class as a clone on every node."""
    return spec_header(lab, fencing=False) + f"""\
    - id: rabbitmq
      agent: rabbitmq:cluster
      secret: [cookie]
      params:
        cookie: "{lab.cookie}"
        base_dir: {MOUNT}
        nodes: "{",".join(lab.names)}"
        force_boot_after: "30"
      operations:
        # A joiner's start waits for the founder's boot, then boots itself: at load average 70
        # the founder's start alone took 237 s, and a start that times out bans the node.
        - {{name: start, timeout: 480s}}
        - {{name: stop, timeout: 60s}}
        # 90 s: at load average 60 check_running's Erlang VM alone took over 29 s (65% of 45 s),
        # and every broker was restarted over and over.
        - {{name: monitor, interval: {monitor}, timeout: 90s}}
  clones:
    - id: rabbitmq-clone
      child: rabbitmq
"""


SINGLE_HOST = "hkrmq"  # the active/passive broker's VIP name: the broker is rabbit@hkrmq


def broker_group_spec(lab: RabbitLab, rid: str, agent: str, params: str, monitor: str) -> str:
    """An active/passive broker: [VIP, broker `rid` run by `agent` with `params` (YAML lines,
    indented 8)] as a group, fencing on (the namespace fence kills a lost node's processes)."""
    secret = "      secret: [cookie]\n" if "cookie:" in params else ""
    return spec_header(lab, fencing=True) + f"""\
    - id: fence
      agent: stonith:netns
      params: {{template: "{PREFIX}-{lab.lab.owner}-{{node}}"}}
    - id: mq-vip
      agent: vip
      params: {{ip: "{lab.vip}/24", nic: {IFNAME}}}
      operations: [{{name: monitor, interval: 2s, timeout: 5s}}]
    - id: {rid}
      agent: {agent}
{secret}      params:
{params}      operations:
        - {{name: start, timeout: 240s}}
        - {{name: stop, timeout: 60s}}
        - {{name: monitor, interval: {monitor}, timeout: 45s}}
  groups:
    - id: broker
      members: [mq-vip, {rid}]
"""


def single_spec(lab: RabbitLab, shared: str, monitor: str = "10s") -> str:
    """Seed 002's active/passive broker: [VIP, rabbitmq:single] as a group, its data on a
    directory every node mounts."""
    params = f'        cookie: "{lab.cookie}"\n        base_dir: {shared}\n        node_host: {SINGLE_HOST}\n'
    return broker_group_spec(lab, "rabbitmq", "rabbitmq:single", params, monitor)


class RabbitLab:
    def __init__(self, workdir: str, tag: str = "r", subnet: int = 0, size: int = 3, ttl: int = 5) -> None:
        self.workdir = workdir
        self.tag = tag
        self.ttl = ttl
        self.cookie = f"HKLABCOOKIE{os.getpid()}"
        self.names = [f"{tag}{i}" for i in range(1, size + 1)]
        self.addr = {n: f"10.96.{subnet}.{i}" for i, n in enumerate(self.names, 1)}
        self.vip = f"10.96.{subnet}.100"  # the active/passive broker's (single_spec)
        self.cli_home = MOUNT  # where the CLI finds the Erlang cookie (the shared directory for single_spec)
        os.makedirs(workdir, exist_ok=True)
        os.chmod(workdir, 0o755)
        os.makedirs(MOUNT, exist_ok=True)  # the mount point the per-node directories go over
        self.lab = Lab(PREFIX)
        self.lab.start()
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        try:
            self.lab.attach_root(f"10.96.{subnet}.254/24")
            self.hosts = {n: self.lab.host(n, {IFNAME: [f"{a}/24"]}) for n, a in self.addr.items()}
            self.members = {
                n: Member(n, self.addr[n], 2379, 2380, os.path.join(workdir, f"{n}.etcd"), netns=h.ns)
                for n, h in self.hosts.items()
            }
            self.etcd = Cluster(list(self.members.values()), token=f"hkr-{tag}-{os.getpid()}")
            hosts_file = "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in self.addr.items())
            hosts_file += f"{self.vip} {SINGLE_HOST}\n"
            for n in self.names:
                d = self.node_dir(n)
                os.makedirs(d, exist_ok=True)
                shutil.chown(d, "rabbitmq", "rabbitmq")
                Path(f"/etc/netns/{self.hosts[n].ns}/hosts").write_text(hosts_file)
        except BaseException:
            self.close()
            raise

    def node_dir(self, name: str) -> str:
        """The node's /etc/hkrabbitmq, seen from outside its namespace."""
        return f"/etc/netns/{self.hosts[name].ns}/hkrabbitmq"

    def mnesia_dir(self, name: str) -> str:
        return os.path.join(self.node_dir(name), "mnesia", f"rabbit@{name}")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": SRC, "HAKEEPER_CLUSTER": self.tag, "no_proxy": "*"}

    def endpoints(self, first: str | None = None) -> str:
        return ",".join(self.members[n].endpoint for n in sorted(self.names, key=lambda n: n != first))

    def start(self) -> None:
        self.etcd.start(timeout=30)
        for n in self.names:
            self.start_agent(n)

    def agent_argv(self, name: str) -> list[str]:
        """The node agent's command line (a subclass may wrap it: ocflab.py's mounts)."""
        return [
            sys.executable, "-m", "hakeeper", "agent", "--node", name,
            "--etcd", self.endpoints(name), "--lease-ttl", str(self.ttl), "--timeout", "0.5",
            "--state-dir", os.path.join(self.workdir, "state"), "--log-level", "info",
        ]

    def start_agent(self, name: str) -> None:
        with open(os.path.join(self.workdir, f"{name}.agent.log"), "ab") as log:
            self.agents[name] = self.hosts[name].spawn(
                self.agent_argv(name), env=self.env, stdout=log, stderr=log, start_new_session=True,
            )

    def hk(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "hakeeper", *args, "--etcd", self.endpoints()],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"hakeeper {' '.join(args)}: {out.stderr}")
        return out

    def hk_in(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A hakeeper command run on node `name` (inside its namespace: the short names resolve)."""
        argv = [sys.executable, "-m", "hakeeper", *args, "--etcd", self.endpoints(name)]
        return self.hosts[name].run(argv, timeout=timeout, env=self.env)

    def partition(self, name: str) -> None:
        """Cut the node off from its peers, packets dropped both ways; the test host still reaches it."""
        netpart.cut_off(self.hosts[name], [a for n, a in self.addr.items() if n != name], "hkrpart", self.workdir)

    def heal(self, name: str) -> None:
        netpart.heal(self.hosts[name], "hkrpart")

    def apply(self, text: str) -> None:
        path = os.path.join(self.workdir, "cluster.yaml")
        Path(path).write_text(text)
        self.hk("config", "apply", "--yes", path)

    def ctl(
        self, name: str, *args: str, tool: str = "rabbitmqctl", timeout: float = 30, node: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A RabbitMQ CLI command against the node (or the Erlang node `node`), from inside its
        namespace, as rabbitmq."""
        argv = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups",
                f"{BIN}/{tool}", "-n", node or f"rabbit@{name}", *args]
        try:
            return self.hosts[name].run(argv, timeout=timeout, env={**os.environ, "HOME": self.cli_home})
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", "timed out")

    def cluster_status(self, name: str) -> dict[str, Any] | None:
        # 60 s: at load average 50-70 the CLI's own Erlang VM took 15-30 s to start, three at once more.
        out = self.ctl(name, "cluster_status", "--formatter", "json", timeout=60)
        if out.returncode != 0 or "{" not in out.stdout:
            return None
        with contextlib.suppress(ValueError):
            doc = json.loads(out.stdout[out.stdout.index("{"):])
            return doc if isinstance(doc, dict) else None
        return None

    def running_nodes(self, names: list[str] | None = None) -> dict[str, list[str]]:
        """Per node (of `names`, default all) whose broker answers: the running nodes of its cluster."""
        chosen = names or self.names
        with ThreadPoolExecutor(len(chosen)) as pool:  # each CLI call is an Erlang VM: ask all at once
            views = dict(zip(chosen, pool.map(self.cluster_status, chosen), strict=True))
        return {n: sorted(st.get("running_nodes", [])) for n, st in views.items() if st is not None}

    def wait_cluster(self, count: int, timeout: float, names: list[str] | None = None) -> dict[str, list[str]]:
        """Until `count` brokers (of `names`, default all) answer and all of them see the same
        `count` running nodes."""
        deadline = time.monotonic() + timeout
        want = sorted(f"rabbit@{n}" for n in names or self.names)
        while True:
            got = self.running_nodes(names)
            views = list(got.values())
            if len(got) >= count and all(len(v) >= count and set(v) <= set(want) and v == views[0] for v in views):
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"no cluster of {count} within {timeout:g}s: {got}")
            time.sleep(1)

    def setup_openstack_vhost(self, name: str) -> None:
        """OpenStack's vhost: quorum queues by default, a policy for them, the guest user allowed."""
        steps = [
            ("add_vhost", VHOST, "--default-queue-type", "quorum"),
            ("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"),
            ("set_policy", "-p", VHOST, "--apply-to", "queues", POLICY, r"^(?!amq\.).*",
             '{"delivery-limit": 100, "max-length": 1000000}'),
        ]
        for step in steps:
            out = self.ctl(name, *step)
            if out.returncode != 0 and "already exists" not in out.stdout + out.stderr:
                raise RuntimeError(f"{' '.join(step)} on {name}: {out.stdout} {out.stderr}")

    def quorum_members(self, queue: str) -> dict[str, str]:
        """The queue's Raft members and their states ({"r1": "leader", ...}) from the first node
        that answers `rabbitmq-queues quorum_status`."""
        for n in self.names:
            out = self.ctl(n, "quorum_status", "-p", VHOST, queue, "--formatter", "json", tool="rabbitmq-queues",
                           timeout=20)
            with contextlib.suppress(ValueError):
                rows = json.loads(out.stdout[out.stdout.index("["):])
                return {str(r["Node Name"]).split("@", 1)[1]: str(r["Raft State"]) for r in rows}
        return {}

    def queue_info(self, name: str, queue: str) -> tuple[str, str] | None:
        """(type, policy) of a queue whose leader is on node `name`. (The cluster-wide list_queues
        waits for every node to stream its rows straight to the CLI; `--local` does not.)"""
        out = self.ctl(name, "list_queues", "-q", "--no-table-headers", "-p", VHOST, "name", "type", "policy",
                       "--local", timeout=20)
        for line in out.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] == queue:
                return parts[1], parts[2]
        return None

    def running_at_shutdown(self, name: str) -> list[str]:
        """What RabbitMQ wrote in the node's `nodes_running_at_shutdown` (it rewrites the file as
        peers go and come): the nodes it last saw running; [] when there is no such file."""
        path = os.path.join(self.mnesia_dir(name), "nodes_running_at_shutdown")
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return []
        return sorted(parse_node_list(text, path, "nodes_running_at_shutdown")[0])

    def leader_of(self, queue: str) -> str:
        leaders = [n for n, state in self.quorum_members(queue).items() if state == "leader"]
        if not leaders:
            raise RuntimeError(f"no leader found for queue {queue}")
        return leaders[0]

    def holders(self, address: str) -> list[str]:
        """The nodes that hold `address` (a VIP) on their link."""
        return [n for n, h in self.hosts.items() if any(a.split("/")[0] == address for a in h.addresses(IFNAME))]

    def broker_pids(self, name: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.hosts[name].ns], capture_output=True, text=True)
        pids = []
        for pid in out.stdout.split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":
                    pids.append(int(pid))
        return pids

    def kill_broker(self, name: str) -> None:
        """SIGKILL the node's Erlang VM (its whole broker; the agent and etcd live on)."""
        for pid in self.broker_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def power_off(self, name: str, kill_first: bool = False) -> None:
        """Everything of the node dies at once and its link goes dark. With `kill_first` its
        processes are gone before the link goes down, so the kernel's FINs for their connections
        reach the peers: they see the node go at once, instead of after RabbitMQ's net_ticktime
        (60 s, up to 75 s) as for a link that goes dark under live processes."""
        if kill_first:
            kill_namespace_processes(self.hosts[name].ns)
        self.hosts[name].ip("link", "set", IFNAME, "down", check=False)
        kill_namespace_processes(self.hosts[name].ns)
        self.members[name].proc = None
        proc = self.agents.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def power_on(self, name: str) -> None:
        """The node boots: link up, /run (the agent's state) empty, etcd member and agent started."""
        shutil.rmtree(os.path.join(self.workdir, "state", name), ignore_errors=True)
        # A reboot forgets the addresses the node held besides its own (a VIP it had).
        for address in self.hosts[name].addresses(IFNAME):
            if "." in address and address.split("/")[0] != self.addr[name]:
                self.hosts[name].ip("addr", "del", address, "dev", IFNAME, check=False)
        self.hosts[name].ip("link", "set", IFNAME, "up", check=False)
        self.members[name].start(self.etcd.initial_cluster, self.etcd.token)
        self.start_agent(name)

    def close(self) -> None:
        for proc in list(self.agents.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for h in getattr(self, "hosts", {}).values():
            kill_namespace_processes(h.ns)
        if hasattr(self, "etcd"):
            self.etcd.stop()
        self.lab.close()
        for h in getattr(self, "hosts", {}).values():
            shutil.rmtree(f"/etc/netns/{h.ns}", ignore_errors=True)
        with contextlib.suppress(OSError):
            if not any(os.path.isdir(f"/etc/netns/{ns}/hkrabbitmq") for ns in os.listdir("/etc/netns")):
                os.rmdir(MOUNT)
