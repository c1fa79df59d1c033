"""What the l3 namespace tests share: network nodes running `hakeeper l3-agent`, their state files
and logs, a watcher of every state change, seed 004's router80 with its client and instance, the
embedded store, and tearing all of it down (also when a test fails)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hakeeper.l3 import netns
from hakeeper.l3.model import RouterSpec, Settings
from hakeeper.l3.neutron import read_neutron
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec
from hakeeper.netlab import Host, Lab

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "l3"))
from seed004 import write_seed_files

SRC = Path(__file__).resolve().parents[3] / "src"
ADVERT = 2
BOUND = 3 * ADVERT + (256 - 50) / 256  # Master_Down_Interval at Neutron's priority 50: 6.805 s
R80 = "7a46dba8-8846-498c-9e10-588664558473"


def router80_yaml(floating_ip: bool = True) -> str:
    """Seed 004's router80 (ext-net80 10.0.80.0/24, vxlan-subnet80 192.168.80.0/24)."""
    fip = "    floating-ips: [{external: 10.0.80.110, fixed: 192.168.80.10}]\n" if floating_ip else ""
    return f"""\
routers:
  - id: {R80}
    name: router80
    project: service
    interfaces: [{{subnet: vxlan-subnet80, address: 192.168.80.1/24}}]
    gateway: {{network: ext-net80, address: 10.0.80.101/24, upstream: 10.0.80.1}}
""" + fip


def two_node_settings() -> Settings:
    """Seed 004's VRRP settings (PASS 'openstack', advert_int 2) with two replicas per router."""
    return Settings(l3_ha=True, max_l3_agents_per_router=2, ha_vrrp_auth_password="openstack",  # type: ignore[arg-type]
                    ha_vrrp_advert_int=ADVERT)


def write_spec(workdir: Path, routers_yaml: str, settings: Settings | None = None) -> tuple[RouterSpec, Path]:
    """The routers with `settings`, or by default seed 004's own neutron.conf and l3_agent.ini
    sections, as the spec file `workdir/routers.yaml`."""
    if settings is None:
        conf, ini = write_seed_files(workdir)
        settings = read_neutron(str(conf), str(ini)).settings
    spec = RouterSpec(settings=settings, routers=parse_router_spec(routers_yaml).routers)
    path = workdir / "routers.yaml"
    path.write_text(dump_router_spec(spec))
    return spec, path


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC))


def store_server(socket_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket",
                             str(socket_path)], env=env(), stderr=subprocess.DEVNULL)


def stop(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM to each process still running, SIGKILL to those not gone after `timeout` s (a
    loaded machine makes a clean stop slow; a test must still clean up)."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.terminate()
    for p in running:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def remove_namespaces(prefixes: Iterable[str]) -> None:
    for prefix in prefixes:
        for ns in netns.names(prefix):
            netns.delete(ns)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = lambda: "",
             every: float = 0.05) -> float:
    """Seconds until `cond()` held; past `timeout` an AssertionError naming `what`, with `detail()`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout:.0f} s; {detail()}")


def tcp(host: Host, dst: str, port: int, bind: str | None = None, timeout: float = 2) -> str:
    """What a TCP server at dst:port says to `host` (socat), or "" if it cannot be reached."""
    target = f"TCP:{dst}:{port},connect-timeout={timeout}" + (f",bind={bind}" if bind else "")
    try:
        out = host.run(["socat", "-T", str(timeout), "-", target], timeout=timeout + 3)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout.strip()


def router80_hosts(lab: Lab, nodes: Iterable[str], ports: dict[str, str],
                   instance_addresses: tuple[str, ...] = ("192.168.80.10/24",)) -> tuple[dict[str, Host], Host, Host]:
    """Network nodes with `ports` (interface -> L2 segment), the external client (the upstream
    gateway 10.0.80.1, on the segment of ex0) and the instance (on the segment of in0, default
    route through the router, a TCP server on 7001 answering 'instance')."""
    hosts = {n: lab.host(n, {key: [] for key in ports}, segments=ports) for n in nodes}
    client = lab.host("client", {"eth0": ["10.0.80.1/24"]}, segments={"eth0": ports["ex0"]})
    instance = lab.host("inst", {"eth0": list(instance_addresses)}, segments={"eth0": ports["in0"]})
    instance.ip("route", "add", "default", "via", "192.168.80.1")
    instance.spawn(["socat", "TCP-LISTEN:7001,fork,reuseaddr", "SYSTEM:echo instance"])
    return hosts, client, instance


@dataclass
class AgentNodes:
    """Network nodes (lab hosts) each running one `hakeeper l3-agent`, whose state file and log
    are `workdir/<node>.state.json` and `workdir/<node>.log`."""

    lab: Lab
    hosts: dict[str, Host]
    workdir: Path
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    def prefix(self, node: str) -> str:
        return f"{self.lab.prefix}-{self.lab.owner}-{node}-"

    def router_ns(self, node: str, router: str) -> str:
        return f"{self.prefix(node)}qrouter-{router}"

    def state_file(self, node: str) -> Path:
        return self.workdir / f"{node}.state.json"

    def report(self, node: str) -> dict[str, object]:
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.state_file(node).read_text()))
        return {}

    def states(self, node: str) -> dict[str, str]:
        routers = self.report(node).get("routers")
        return dict(routers) if isinstance(routers, dict) else {}

    def start_agent(self, node: str, physical: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        """The node's agent, in the node's network namespace through nsenter (not `ip netns exec`,
        whose private mount namespace would hide the router namespaces it creates)."""
        argv = ["nsenter", f"--net=/run/netns/{self.hosts[node].ns}", sys.executable, "-m", "hakeeper", "l3-agent",
                "--node", node, "--netns-prefix", self.prefix(node), "--state-file", str(self.state_file(node)),
                "--garp-master-delay", "5", *args]
        for key, dev in physical.items():
            argv += ["--physical", f"{key}={dev}"]
        log = open(self.workdir / f"{node}.log", "ab")  # noqa: SIM115 (the agent keeps it)
        self.agents[node] = subprocess.Popen(argv, env=env(), stdout=log, stderr=log)
        return self.agents[node]

    def logs(self, chars: int = 2000) -> str:
        return "\n".join(f"== {n}\n" + (self.workdir / f"{n}.log").read_text()[-chars:] for n in self.hosts
                         if (self.workdir / f"{n}.log").exists())

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> float:
        return wait_for(cond, timeout, what, self.logs)


class StateWatcher:
    """Every change of any router's state on the given nodes, read from their state files every
    50 ms on a thread: (time, node, router, state)."""

    def __init__(self, nodes: AgentNodes, which: Callable[[], Iterable[str]]) -> None:
        self.nodes, self.which = nodes, which
        self.history: list[tuple[float, str, str, str]] = []
        self.passes = 0  # completed reads of every node
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start, and return after the first reading (the starting state, not a change)."""
        self.thread.start()
        wait_for(lambda: self.passes > 0, 30, "the watcher's first reading")

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def _run(self) -> None:
        last: dict[tuple[str, str], str] = {}
        while not self.done.is_set():
            for node in self.which():
                for rid, st in self.nodes.states(node).items():
                    if last.get((node, rid)) != st:
                        last[(node, rid)] = st
                        self.history.append((time.monotonic(), node, rid, st))
            self.passes += 1
            time.sleep(0.05)

    def changes(self, rid: str, since: float) -> list[tuple[float, str, str, str]]:
        return [h for h in self.history if h[2] == rid and h[0] > since]


@contextlib.contextmanager
def torn_down(nodes: Callable[[], AgentNodes | None], *servers: subprocess.Popen[bytes],
              watcher: Callable[[], StateWatcher | None] = lambda: None) -> Iterator[None]:
    """Whatever happens inside: the watcher stopped, the agents stopped, their router namespaces
    removed, then the servers stopped (`nodes` and `watcher` are read at the end: they may be made
    inside)."""
    try:
        yield
    finally:
        w, n = watcher(), nodes()
        if w is not None:
            w.stop()
        if n is not None:
            stop(n.agents.values())
            remove_namespaces(n.prefix(h) for h in n.hosts)
        stop(servers)
