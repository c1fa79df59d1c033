"""Network nodes in namespaces, each running one `hakeeper l3-agent`, for the demo and the tests.

Seed 004's router80 with its external client and instance, the embedded store, the agents'
state files and logs, the `list-hosting` rows read from the store, and tearing all of it down
(also when the caller fails). `hakeeper demo routers` and tests/integration/l3 build on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from hakeeper.l3 import netns
from hakeeper.l3.hosting import Report, Row, hosting, report_key
from hakeeper.l3.model import RouterSpec, Settings
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec
from hakeeper.netlab import Host, Lab

SRC = Path(__file__).resolve().parents[2]  # the directory holding the hakeeper package
ADVERT = 2
BOUND = 3 * ADVERT + (256 - 50) / 256  # Master_Down_Interval at Neutron's priority 50: 6.805 s
R80 = "7a46dba8-8846-498c-9e10-588664558473"
# The node side of each L2 segment: interface on the node -> bridge in the lab's switch.
ROUTER80_PORTS = {"ha0": "brha", "ex0": "brex", "in0": "brin"}
ROUTER80_PHYSICAL = {"ha": "ha0", "ext-net80": "ex0", "vxlan-subnet80": "in0"}
FLOATING_IP = "10.0.80.110"


def router80_yaml(floating_ip: bool = True) -> str:
    """Seed 004's router80 (ext-net80 10.0.80.0/24, vxlan-subnet80 192.168.80.0/24)."""
    fip = f"    floating-ips: [{{external: {FLOATING_IP}, fixed: 192.168.80.10}}]\n" if floating_ip else ""
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
    return Settings(l3_ha=True, max_l3_agents_per_router=2, ha_vrrp_auth_password=SecretStr("openstack"),
                    ha_vrrp_advert_int=ADVERT)


def seed004_settings() -> Settings:
    """The L3 HA options seed 004's neutron.conf and l3_agent.ini set (what `hakeeper import
    neutron` reads from them; the tests read the seed's own files)."""
    return Settings(l3_ha=True, l3_ha_net_cidr=ipaddress.IPv4Network("169.254.192.0/18"),
                    max_l3_agents_per_router=3, min_l3_agents_per_router=2, dhcp_agents_per_network=2,
                    ha_vrrp_auth_type="PASS", ha_vrrp_auth_password=SecretStr("openstack"),
                    ha_vrrp_advert_int=ADVERT)


def write_spec(workdir: Path, routers_yaml: str, settings: Settings) -> tuple[RouterSpec, Path]:
    """The routers with `settings` as the spec file `workdir/routers.yaml`."""
    spec = RouterSpec(settings=settings, routers=parse_router_spec(routers_yaml).routers)
    path = workdir / "routers.yaml"
    path.write_text(dump_router_spec(spec))
    path.chmod(0o600)  # it holds the VRRP password
    return spec, path


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC))


def store_server(socket_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket",
                             str(socket_path)], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM to each process still running, SIGKILL to those not gone after `timeout` s (a
    loaded machine makes a clean stop slow; a caller must still clean up)."""
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


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def torn_down(nodes: Callable[[], AgentNodes | None], *servers: subprocess.Popen[bytes],
              watcher: Callable[[], Stoppable | None] = lambda: None) -> Iterator[None]:
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


def hosting_rows(store_socket: Path, router: str, cluster: str = "hakeeper", timeout: float = 2.0) -> list[Row]:
    """`hakeeper router list-hosting ROUTER`'s rows, read from the embedded store in this process."""
    from hakeeper.coord.localserver import RemoteStore

    async def reports() -> list[Report]:
        store = RemoteStore(str(store_socket), timeout=timeout)
        try:
            kvs, _ = await store.get_prefix(report_key(cluster))
        finally:
            await store.close()
        return [Report.decode(kv.value) for kv in kvs]

    return hosting(asyncio.run(reports()), router, time.time())


ECHO_PORT = 7002  # the instance's echo server: a long-lived session's other end


class Router80Lab:
    """Seed 004's router80 on network nodes (one active, the others standby), an external
    client, an instance (192.168.80.10, floating IP 10.0.80.110) answering on 7001 and echoing
    lines on ECHO_PORT, and the embedded store the agents report to. `start()` builds and starts
    everything; `close()` removes all of it, also after a failed start."""

    def __init__(self, workdir: Path, prefix: str, nodes: tuple[str, ...] = ("network7", "network8"),
                 settings: Settings | None = None) -> None:
        self.workdir, self.names = workdir, nodes
        self.settings = settings or seed004_settings()
        self.lab = Lab(prefix)
        self.store = workdir / "store.sock"
        self.spec = workdir / "routers.yaml"
        self.server: subprocess.Popen[bytes] | None = None
        self.nodes: AgentNodes | None = None
        self.client: Host | None = None
        self.instance: Host | None = None

    def start(self, timeout: float = 120) -> None:
        write_spec(self.workdir, router80_yaml(), self.settings)
        self.server = store_server(self.store)
        self.lab.start()
        hosts, self.client, self.instance = router80_hosts(self.lab, self.names, ROUTER80_PORTS)
        self.instance.spawn(["socat", f"TCP-LISTEN:{ECHO_PORT},fork,reuseaddr", "EXEC:cat"])
        self.nodes = AgentNodes(self.lab, hosts, self.workdir)
        # All at once (an agent takes seconds to start on a loaded machine): every one starts as
        # a backup, and VRRP elects one master when the first Master_Down_Interval runs out.
        for node in self.names:
            self.start_agent(node)
        self.nodes.wait_for(self.settled, timeout, "one active node, the others standby")

    def settled(self) -> bool:
        states = sorted(str(self.ha_state(n)) for n in self.names)
        return states == ["active", *["standby"] * (len(self.names) - 1)]

    def start_agent(self, node: str) -> None:
        assert self.nodes is not None
        self.nodes.start_agent(node, ROUTER80_PHYSICAL, "--nodes", ",".join(self.names), "--spec",
                               str(self.spec), "--store", str(self.store))

    def ha_state(self, node: str) -> str | None:
        """The state the node's agent last wrote to its state file (a killed agent's stays)."""
        return self.nodes.states(node).get(R80) if self.nodes else None

    def active(self) -> list[str]:
        return [n for n in self.names if self.ha_state(n) == "active"]

    def hosting(self) -> list[Row]:
        return hosting_rows(self.store, R80)

    def kill(self, node: str) -> None:
        """The node dies: its processes SIGKILLed, its links cut."""
        assert self.nodes is not None
        agent = self.nodes.agents[node]
        with contextlib.suppress(ProcessLookupError):
            agent.kill()
        for pid in netns.run(["ip", "netns", "pids", self.nodes.hosts[node].ns], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        for ifname in ROUTER80_PORTS:
            self.nodes.hosts[node].cut(ifname)

    def restore_links(self, node: str) -> None:
        assert self.nodes is not None
        for ifname in ROUTER80_PORTS:
            self.nodes.hosts[node].restore(ifname)

    def close(self) -> None:
        try:
            if self.nodes is not None:
                stop(self.nodes.agents.values())
                remove_namespaces(self.nodes.prefix(h) for h in self.nodes.hosts)
        finally:
            self.lab.close()
            stop([self.server] if self.server else [])
