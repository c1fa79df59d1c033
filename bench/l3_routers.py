"""N HA routers on two network nodes: hakeeper's one speaker per node against Neutron's layout.

Neutron's layout is one real keepalived per router per node, configured as Neutron's L3 agent
writes it (`hakeeper.l3.neutronka`: state BACKUP, nopreempt, priority 50, advert_int 2, PASS,
169.254.0.<vrid>/24 on ha-, virtual_ipaddress_excluded, virtual_routes); Neutron's per-router
state-change monitor (a Python process each) is not run. Both layouts get the same router
namespaces (qrouter-, ha-/qr-/qg- veths, nftables NAT), built by the same `l3.dataplane` code, and
the same routers: `--per-ha-network` routers per project, each project's HA network its own L2
segment. The layouts run one after the other in the same run.

For each layout: setup (node A from nothing until every router is master there, then node B until
it is up), idle PSS/RSS and CPU of each node's processes over `--window` seconds, and, after
SIGKILL of node A's processes (stopped first, so no process gets to say goodbye) and its links
cut, the time until each router's primary VIP is on node B (p50, p99, max), seen through a netlink
address monitor in each of B's router namespaces (what Neutron's state-change monitor watches).
For hakeeper also the time until B's state report says active.

    sudo python3 bench/l3_routers.py --routers 100 [--routers 1000] [--per-ha-network 50]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from hakeeper.l3 import dataplane, hafilter, netns  # noqa: E402
from hakeeper.l3.agent import layouts_for, node_schedule  # noqa: E402
from hakeeper.l3.model import RouterSpec, Settings  # noqa: E402
from hakeeper.l3.neutronka import keepalived_conf  # noqa: E402
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec  # noqa: E402
from hakeeper.netlab import Host, Lab  # noqa: E402

NODES = ("netA", "netB")
ADVERT = 2
BOUND = 3 * ADVERT + (256 - 50) / 256
TICK = os.sysconf("SC_CLK_TCK")
RTMGRP_IPV4_IFADDR = 0x10
RTM_NEWADDR = 20
IFA_ADDRESS, IFA_LOCAL = 1, 2


def router_id(i: int) -> str:
    return f"{i:08x}-b3c4-4d5e-8f60-{i:012x}"


def spec_text(n: int, per_ha: int) -> str:
    out = ["routers:"]
    for i in range(n):
        hi, lo = divmod(i, 250)
        out += [f"  - id: {router_id(i)}", f"    name: r{i}", f"    project: p{i // per_ha}",
                f"    interfaces: [{{subnet: int, address: 10.{100 + hi}.{lo}.1/24}}]",
                f"    gateway: {{network: ext, address: 10.99.{hi}.{lo + 1}/16, upstream: 10.99.255.254}}"]
    return "\n".join(out) + "\n"


def projects(n: int, per_ha: int) -> int:
    return (n + per_ha - 1) // per_ha


def physical(n: int, per_ha: int) -> dict[str, str]:
    phys = {f"ha:p{k}": f"ha{k}" for k in range(projects(n, per_ha))}
    phys.update({"ext": "ex0", "int": "in0"})
    return phys


# -- measuring ------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds: the system part of an idle node is mostly the kernel's delivery
    of each advert to every router namespace on its HA network."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB: PSS counts pages shared between processes once in total."""
    pss = rss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return pss, rss


@dataclass
class Usage:
    processes: int
    pss_kib: int
    rss_kib: int
    cpu_percent: float  # of one core
    user_percent: float  # of that, in user space


QUIET = 15.0  # % of a core: a node above it is still busy with its takeovers' gratuitous ARPs


def wait_quiet(pids: list[int], timeout: float, sample: float = 2.0) -> float:
    """Until these processes use less than QUIET of a core over `sample` seconds (or `timeout`):
    a mass takeover's gratuitous-ARP burst (each GARP flooded into every router namespace of its
    network, O(N*N)) runs for tens of seconds at 1000 routers, and an idle window that fell into
    it measured the burst (up to 49 % of a core) instead of the idle node. Returns the wait."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        before = [sum(cpu_seconds(p)) for p in pids]
        time.sleep(sample)
        busy = sum(sum(cpu_seconds(p)) - b for p, b in zip(pids, before, strict=True))
        if 100 * busy / sample < QUIET:
            break
    return time.monotonic() - began


def usage(nodes: dict[str, list[int]], window: float) -> dict[str, Usage]:
    """Each node's processes over the same window."""
    before = {node: [cpu_seconds(p) for p in pids] for node, pids in nodes.items()}
    time.sleep(window)
    out = {}
    for node, pids in nodes.items():
        after = [cpu_seconds(p) for p in pids]
        mem = [memory_kib(p) for p in pids]
        user = sum(a[0] - b[0] for a, b in zip(after, before[node], strict=True))
        total = user + sum(a[1] - b[1] for a, b in zip(after, before[node], strict=True))
        out[node] = Usage(len(pids), sum(m[0] for m in mem), sum(m[1] for m in mem), 100 * total / window,
                          100 * user / window)
    return out


class VipWatch:
    """A netlink address monitor in each router namespace of one node: when each VIP appears."""

    def __init__(self, vips: dict[str, tuple[str, ipaddress.IPv4Interface]]) -> None:
        self.sel = selectors.DefaultSelector()
        self.seen: dict[str, float] = {}
        self.socks: list[socket.socket] = []
        for rid, (ns, vip) in vips.items():
            with netns.inside(ns):
                s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                s.bind((0, RTMGRP_IPV4_IFADDR))
            self.socks.append(s)
            self.sel.register(s, selectors.EVENT_READ, (rid, vip.ip.packed))

    def present_now(self, vips: dict[str, tuple[str, ipaddress.IPv4Interface]]) -> None:
        for rid, (ns, vip) in vips.items():
            out = netns.run(["ip", "-n", ns, "-o", "-4", "addr", "show"], check=False).stdout
            if f" {vip} " in out:
                self.seen.setdefault(rid, time.monotonic())

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            rid, packed = key.data
            assert isinstance(s, socket.socket)
            while True:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    break
                if rid not in self.seen and _has_new_address(data, packed):
                    self.seen[rid] = time.monotonic()

    def wait(self, count: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < end:
            self.poll(0.1)
        return len(self.seen) >= count

    def close(self) -> None:
        for s in self.socks:
            self.sel.unregister(s)
            s.close()


def _has_new_address(data: bytes, packed: bytes) -> bool:
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            return False
        if kind == RTM_NEWADDR:
            a = off + 16 + 8  # nlmsghdr, ifaddrmsg
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype in (IFA_ADDRESS, IFA_LOCAL) and data[a + 4 : a + alen] == packed:
                    return True
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
    return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the two layouts ------------------------------------------------------------------------------
@dataclass
class Result:
    layout: str
    setup_a: float
    setup_b: float
    idle: dict[str, Usage]
    takeover: list[float]
    reported: list[float] = field(default_factory=list)
    missing: int = 0
    logged: list[float] = field(default_factory=list)  # hakeeper: the takeovers by B's own event log


class Bench:
    def __init__(self, lab: Lab, hosts: dict[str, Host], spec: RouterSpec, spec_file: Path, work: Path,
                 n: int, per_ha: int, window: float, profile: Path | None = None, perf: Path | None = None) -> None:
        self.lab, self.hosts, self.spec, self.spec_file, self.work = lab, hosts, spec, spec_file, work
        self.profile = profile
        self.perf = perf
        self.garp_delay = 60.0
        self.log_level = "warning"  # the agents' --log-level
        self.n, self.per_ha, self.window = n, per_ha, window
        self.phys = physical(n, per_ha)
        self.sched = node_schedule(spec, NODES)

    def prefix(self, node: str, kind: str) -> str:
        return f"{self.lab.prefix}-{self.lab.owner}-{node}{kind[0]}-"

    def layouts(self, node: str, kind: str) -> list[dataplane.Layout]:
        return layouts_for(self.spec, self.sched, node, self.prefix(node, kind), frozenset(self.phys))

    def vips(self, node: str, kind: str) -> dict[str, tuple[str, ipaddress.IPv4Interface]]:
        return {lay.router_id: (lay.namespace, lay.vip) for lay in self.layouts(node, kind)}

    def kill_node(self, pids: list[int]) -> float:
        """SIGSTOP every process first (none sends a last advert or respawns a child), cut the
        node's links, then SIGKILL: the start of the outage is the first SIGSTOP."""
        t0 = time.monotonic()
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if sig == signal.SIGSTOP:
                for ifname in self.hosts[NODES[0]].ports:
                    self.hosts[NODES[0]].cut(ifname)
        return t0

    def restore_links(self) -> None:
        for ifname in self.hosts[NODES[0]].ports:
            self.hosts[NODES[0]].restore(ifname)

    def teardown(self, kind: str) -> None:
        for node in NODES:
            for ns in netns.names(self.prefix(node, kind)):
                netns.delete(ns)

    # -- hakeeper: one l3-agent per node -----------------------------------------------------------
    def start_agent(self, node: str) -> subprocess.Popen[bytes]:
        # --profile: the agent under cProfile (written when it exits: node B is stopped with SIGHUP).
        prof = ["-m", "cProfile", "-o", str(self.profile / f"{node}.prof")] if self.profile else []
        argv = ["nsenter", f"--net=/run/netns/{self.hosts[node].ns}", sys.executable, *prof, "-m", "hakeeper",
                "l3-agent", "--node", node, "--nodes", ",".join(NODES), "--spec", str(self.spec_file),
                "--netns-prefix", self.prefix(node, "hakeeper"), "--state-file", str(self.state_file(node)),
                "--log-level", self.log_level, "--garp-master-delay", str(self.garp_delay),
                "--events-file", str(self.events_file(node))]
        for key, dev in self.phys.items():
            argv += ["--physical", f"{key}={dev}"]
        log = open(self.work / f"{node}.hakeeper.log", "ab")  # noqa: SIM115 (the agent keeps it)
        return subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")), stdout=log, stderr=log)

    def state_file(self, node: str) -> Path:
        return self.work / f"{node}.state.json"

    def events_file(self, node: str) -> Path:
        return self.work / f"{node}.events.jsonl"

    def logged_takeovers(self, node: str, since: float) -> list[float]:
        """When the node's agent itself took each router over (its event log's clock), after `since`
        (wall time): the bench's own watchers share the two cores with the agents, so what they see
        can lag what the agent did."""
        first: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in self.events_file(node).read_text().splitlines():
                ev = json.loads(line)
                if ev.get("kind") == "transition" and ev.get("new") == "MASTER" and ev["time"] >= since:
                    first.setdefault(ev["router"], ev["time"] - since)
        return list(first.values())

    def states(self, node: str) -> dict[str, str]:
        try:
            return dict(json.loads(self.state_file(node).read_text())["routers"])
        except (OSError, ValueError, KeyError):
            return {}

    def run_hakeeper(self) -> Result:
        a, b = NODES
        for node in NODES:
            self.state_file(node).unlink(missing_ok=True)
        t = time.monotonic()
        agent_a = self.start_agent(a)
        self._until(lambda: list(self.states(a).values()).count("active") == self.n, 60 + self.n * 0.5,
                    "hakeeper: every router active on A")
        setup_a = time.monotonic() - t
        t = time.monotonic()
        agent_b = self.start_agent(b)
        self._until(lambda: list(self.states(b).values()).count("standby") == self.n, 60 + self.n * 0.5,
                    "hakeeper: every router standby on B")
        setup_b = time.monotonic() - t
        # Idle means after the takeovers' second gratuitous-ARP burst (garp_master_delay, 60 s, as
        # Neutron): each GARP is flooded into every router namespace of its network, so at 1000
        # routers the burst is tens of seconds of kernel time (O(N*N)), and it fell inside the
        # window when setup took longer than a minute.
        settled = t + self.garp_delay + 20 if self.garp_delay > 0 else 0.0
        time.sleep(max(2 * ADVERT, settled - time.monotonic()))
        waited = wait_quiet([agent_a.pid, agent_b.pid], timeout=300)
        print(f"  idle window after {waited:.0f} s of waiting for the nodes to go quiet", flush=True)
        idle = self.idle({a: [agent_a.pid], b: [agent_b.pid]})
        watch = VipWatch(self.vips(b, "hakeeper"))
        reported: dict[str, float] = {}
        t0_wall = time.time()
        t0 = self.kill_node([agent_a.pid])
        end = t0 + BOUND + 30
        while (len(watch.seen) < self.n or len(reported) < self.n) and time.monotonic() < end:
            watch.poll(0.02)
            now = time.monotonic()
            for rid, st in self.states(b).items():
                if st == "active":
                    reported.setdefault(rid, now)
        agent_a.wait(timeout=300)  # a SIGKILLed agent holding 1000 routers takes long to be reaped
        self.restore_links()
        result = Result("hakeeper", setup_a, setup_b, idle, [v - t0 for v in watch.seen.values()],
                        [v - t0 for v in reported.values()], self.n - len(watch.seen),
                        self.logged_takeovers(b, t0_wall))
        watch.close()
        if self.profile:
            agent_b.send_signal(signal.SIGHUP)  # stops leaving the routers as they are: the profile is written
        else:
            agent_b.kill()  # its graceful stop (1000 routers handing over) is not measured here
        agent_b.wait(timeout=60)
        self.teardown("hakeeper")
        return result

    # -- Neutron's layout: one keepalived per router per node --------------------------------------
    def start_keepalived(self, node: str) -> list[Path]:
        s = self.spec.settings
        with netns.inside(self.hosts[node].ns):
            dataplane.ensure_bridges(self.phys)
            lays = self.layouts(node, "keepalived")
            for lay in lays:
                dataplane.build(lay)
        pidfiles = []
        for lay in lays:
            d = self.work / "ka" / node / lay.router_id
            d.mkdir(parents=True, exist_ok=True)
            (d / "keepalived.conf").write_text(keepalived_conf(lay, s))
            pidfiles += [d / "keepalived.pid", d / "keepalived.pid-vrrp"]
            # As Neutron's KeepalivedManager starts it: VRRP only (-P), its own pid files.
            netns.run(["ip", "netns", "exec", lay.namespace, "keepalived", "-P", "-f", str(d / "keepalived.conf"),
                       "-p", str(d / "keepalived.pid"), "-r", str(d / "keepalived.pid-vrrp")])
        return pidfiles

    @staticmethod
    def pids(pidfiles: list[Path]) -> list[int]:
        out = []
        for p in pidfiles:
            with contextlib.suppress(OSError, ValueError):
                out.append(int(p.read_text().split()[0]))
        return out

    def run_keepalived(self) -> Result:
        a, b = NODES
        # The layouts share the nodes: hakeeper's routers go first, and its advert filter with
        # them (its agents were killed or stopped, which leaves it: it forwards each VRID to the
        # hakeeper router's ha- port, so keepalived's backups would hear nothing).
        self.teardown("hakeeper")
        for host in self.hosts.values():
            for family, table in (("bridge", hafilter.BRIDGE_TABLE), ("netdev", hafilter.INGRESS_TABLE)):
                subprocess.run(["ip", "netns", "exec", host.ns, "nft", "delete", "table", family, table],
                               capture_output=True)
        t = time.monotonic()
        files_a = self.start_keepalived(a)
        watch_a = VipWatch(self.vips(a, "keepalived"))
        watch_a.present_now(self.vips(a, "keepalived"))
        if not watch_a.wait(self.n, 60 + self.n * 0.5):
            raise SystemExit(f"keepalived: only {len(watch_a.seen)} of {self.n} routers master on A")
        setup_a = time.monotonic() - t
        watch_a.close()
        t = time.monotonic()
        files_b = self.start_keepalived(b)
        self._until(lambda: len(self.pids(files_b)) == 2 * self.n, 60 + self.n * 0.5,
                    "keepalived: every process up on B")
        setup_b = time.monotonic() - t
        time.sleep(2 * ADVERT)
        pids_a = self.pids(files_a)
        waited = wait_quiet(pids_a + self.pids(files_b), timeout=300)  # the same rule as hakeeper's
        print(f"  idle window after {waited:.0f} s of waiting for the nodes to go quiet", flush=True)
        idle = self.idle({a: pids_a, b: self.pids(files_b)})
        watch = VipWatch(self.vips(b, "keepalived"))
        watch.present_now(self.vips(b, "keepalived"))
        masters_on_b = len(watch.seen)
        t0 = self.kill_node(pids_a)
        watch.wait(self.n, BOUND + 30)
        self.restore_links()
        result = Result("keepalived", setup_a, setup_b, idle, [v - t0 for v in watch.seen.values()],
                        [], self.n - len(watch.seen))
        if masters_on_b:
            print(f"keepalived: {masters_on_b} router(s) were already master on B before the kill")
        watch.close()
        for pid in self.pids(files_b):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.teardown("keepalived")
        return result

    def idle(self, pids: dict[str, list[int]]) -> dict[str, Usage]:
        """Both nodes' usage over one window (sampled together); with --perf, a system-wide
        `perf record -g` runs through the same window (where the kernel's time goes)."""
        perf = None
        if self.perf is not None:
            perf = subprocess.Popen(["perf", "record", "-a", "-g", "-o", str(self.perf), "--", "sleep",
                                     str(self.window)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = usage(pids, self.window)
        if perf is not None:
            perf.wait(timeout=60)
        return out

    @staticmethod
    def _until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise SystemExit(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.1)


def report(n: int, per_ha: int, results: list[Result]) -> None:
    print(f"\n{n} routers, {per_ha} per HA network ({projects(n, per_ha)} HA networks), two network nodes, "
          f"advert_int {ADVERT} s, VRRPv2 bound {BOUND:.3f} s")
    rows: list[tuple[str, list[float]]] = []
    for r in results:
        t = r.takeover or [float("nan")]
        ua, ub = r.idle[NODES[0]], r.idle[NODES[1]]
        pss = ua.pss_kib + ub.pss_kib
        rss = ua.rss_kib + ub.rss_kib
        cpu = ua.cpu_percent + ub.cpu_percent
        figures = [r.setup_a, r.setup_b, ua.processes + ub.processes, pss / 1024, pss / n, rss / 1024, cpu,
                   ua.user_percent + ub.user_percent, ua.cpu_percent, ua.user_percent, ub.cpu_percent,
                   ub.user_percent, cpu / n, statistics.median(t), percentile(t, 0.99), max(t),
                   float(r.missing)]
        if r.reported:
            figures += [statistics.median(r.reported), percentile(r.reported, 0.99), max(r.reported)]
        if r.logged:
            figures += [statistics.median(r.logged), percentile(r.logged, 0.99), max(r.logged)]
        rows.append((r.layout, figures))
    names = ["setup node A (s, until all master)", "setup node B (s)", "processes (both nodes)",
             "idle PSS both nodes (MiB)", "idle PSS per router (KiB)", "idle RSS both nodes (MiB)",
             "idle CPU both nodes (% of a core)", "  of which user space (%)", "idle CPU node A, masters (%)",
             "  of which user space (%)", "idle CPU node B, backups (%)", "  of which user space (%)",
             "idle CPU per router (%)",
             "takeover p50 (s)",
             "takeover p99 (s)", "takeover max (s)", "routers not taken over",
             "state reported p50 (s)", "state reported p99 (s)", "state reported max (s)",
             "takeover, B's event log p50 (s)", "takeover, B's event log p99 (s)",
             "takeover, B's event log max (s)"]
    hk = dict(rows).get("hakeeper", [])
    ka = dict(rows).get("keepalived", [])
    print(f"{'':38} {'hakeeper':>12} {'keepalived':>12} {'hk/ka':>8}")
    for k, name in enumerate(names):
        h = hk[k] if k < len(hk) else None
        a = ka[k] if k < len(ka) else None
        ratio = f"{h / a:8.3f}" if h is not None and a else f"{'':8}"
        print(f"{name:38} {'' if h is None else f'{h:12.3f}':>12} {'' if a is None else f'{a:12.3f}':>12} {ratio}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routers", type=int, action="append", help="router count (repeat)")
    ap.add_argument("--per-ha-network", type=int, default=50, help="routers per project (HA network)")
    ap.add_argument("--window", type=float, default=20.0, help="idle sampling window, seconds")
    ap.add_argument("--only", choices=["hakeeper", "keepalived"], help="run one layout only")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="run the l3-agents under cProfile, stats to DIR")
    ap.add_argument("--garp-master-delay", type=float, default=60.0,
                    help="hakeeper's second GARP burst after a takeover (Neutron: 60); 0: none")
    ap.add_argument("--no-br-netfilter", action="store_true",
                    help="bridged packets skip the IP hooks in the lab's namespaces (where br_netfilter is loaded)")
    ap.add_argument("--agent-log-level", default="warning",
                    help="the l3-agents' --log-level (info: the build's phases)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (agents' logs, event logs)")
    ap.add_argument("--perf", type=Path, metavar="FILE", help="perf record -a -g through the idle window, to FILE")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces)", file=sys.stderr)
        return 2
    settings = Settings(l3_ha=True, max_l3_agents_per_router=2, ha_vrrp_auth_password="openstack",  # type: ignore[arg-type]
                        ha_vrrp_advert_int=ADVERT)
    for n in args.routers or [100]:
        per_ha = min(args.per_ha_network, 254)
        spec = RouterSpec(settings=settings, routers=parse_router_spec(spec_text(n, per_ha)).routers)
        work = Path(f"/tmp/hakeeper-l3-bench-{os.getpid()}")
        work.mkdir(exist_ok=True)
        spec_file = work / "routers.yaml"
        spec_file.write_text(dump_router_spec(spec))
        phys = physical(n, per_ha)
        segments = {dev: f"b{dev}" for dev in phys.values()}
        with Lab("hkl3b") as lab:
            hosts = {node: lab.host(node, {dev: [] for dev in phys.values()}, segments=segments) for node in NODES}
            if args.no_br_netfilter:
                for ns in (lab.switch, *(h.ns for h in hosts.values())):
                    netns.run(["ip", "netns", "exec", ns, "sysctl", "-q", *(
                        f"net.bridge.bridge-nf-call-{t}=0" for t in ("iptables", "ip6tables", "arptables"))])
            bench = Bench(lab, hosts, spec, spec_file, work, n, per_ha, args.window, args.profile, args.perf)
            bench.garp_delay = args.garp_master_delay
            bench.log_level = args.agent_log_level
            results = []
            try:
                for kind in ("hakeeper", "keepalived"):
                    if args.only and kind != args.only:
                        continue
                    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                    print(f"{n} routers: {kind} ... (machine load average {load})", flush=True)
                    results.append(bench.run_hakeeper() if kind == "hakeeper" else bench.run_keepalived())
                    report(n, per_ha, results)  # as it goes: a later layout may not finish
            finally:
                for kind in ("hakeeper", "keepalived"):
                    bench.teardown(kind)
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
