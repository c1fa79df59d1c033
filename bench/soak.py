"""Fault soak (issue 14): five nodes in network namespaces, etcd with TLS and RBAC, hakeeper agents,
a configuration modelled on seed 002's Listing 2 plus VRRP VIPs and haproxy as the OpenStack
controller profile renders them; a seeded nemesis injects one fault at a time and heals it, an
independent observer (bench/soak_observer.py) samples what really runs where every 50 ms.

    sudo python3 bench/soak.py --faults 200 --seed 1
    sudo python3 bench/soak.py --schedule tests/soak/schedules/NAME.json   # replay a schedule

Prints the report (faults by kind, violations, recovery after each heal, requests lost) and exits
1 if any violation was found. The schedule and every event go to WORKDIR/soak.log (JSON lines).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hakeeper.agent.nscluster import IFNAME, NsCluster
from hakeeper.netlab.lab import kill_namespace_processes
from hakeeper.openstack.profile import parse_profile
from hakeeper.openstack.render import RuntimePaths, render_haproxy, render_keepalived
from soak_observer import Bounds, Expect, NodeSample, Observer, Report, Sample

TAG = re.compile(rb"hksoak=([\w-]+)")
KINDS = ("kill-agent", "stop-agent", "kill-etcd", "stop-etcd", "kill-service", "stop-service", "link-down",
         "partition-both", "partition-in", "partition-out", "monitor-fail", "fence-fail")
ISOLATING = {"link-down", "partition-both", "partition-in", "partition-out", "stop-service"}
PROBE_TIMEOUT = 2.0  # seconds: no answer by then is a lost request
# Seconds to wait, after a fence-fail's heal, for the fence the cluster then carries out (it
# retries a failed fence every 3 s; the rest is room for a loaded machine).
FENCE_AFTER_HEAL = 20.0
# A fenced node boots this long after it was first seen fenced. The fence device may still be
# killing what runs in the namespace when its link goes down: a node revived at once lost its
# new etcd member to that fence, and the revival waited 20 s for the dead member, holding the
# next heal back (a partition held 21 s instead of 2.6 s).
POWER_CYCLE = 1.0
SINGLE = ("p_mysql", "p_rabbitmq", "p_keystone", "p_glance-registry", "p_glance-api")
CLONED = ("p_ovs", "haproxy", "p_api")


@dataclass(frozen=True)
class Fault:
    kind: str
    node: str
    hold: float  # seconds between injection and heal
    pick: float  # which process, for the service faults (a fraction of the node's list)


def schedule(seed: int, count: int, nodes: list[str]) -> list[Fault]:
    """The nemesis's plan: a pure function of the seed, so any run can be replayed."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = rng.choice(KINDS)
        hold = rng.uniform(6.5, 9.0) if kind == "fence-fail" else rng.uniform(1.0, 4.0)
        out.append(Fault(kind, rng.choice(nodes), round(hold, 2), round(rng.random(), 3)))
    return out


def spec_text(cl: NsCluster, work: str, template: str) -> str:
    """Listing 2 of seed 002 in miniature: p_IP, groups of stand-in services kept with it, a clone;
    plus haproxy and the API stand-ins cloned on every controller, as the profile's spec has them."""
    py = sys.executable

    def sleeper(rid: str) -> str:
        return f'''{{id: {rid}, agent: process, params: {{command: "bash -c 'exec -a hksoak={rid} sleep 1000000'"}},
      operations: [{{name: monitor, interval: 1s, timeout: 5s}}]}}'''

    names = ", ".join(f"{{name: {n}}}" for n in cl.names)
    return f"""\
cluster: {{name: {cl.tag}, stonith-enabled: true, no-quorum-policy: stop, resource-stickiness: 100}}
nodes: [{names}]
resources:
  primitives:
    - {{id: fence, agent: "stonith:netns", params: {{template: "{template}"}}}}
    - {{id: p_IP, agent: vip, params: {{ip: "{cl.vip}/16", nic: {IFNAME}}},
       operations: [{{name: monitor, interval: 1s, timeout: 5s}}]}}
    - {sleeper("p_mysql")}
    - {sleeper("p_rabbitmq")}
    - {{id: p_keystone, agent: process,
       params: {{command: "{py} -X hksoak=p_keystone -m http.server 5000 --bind 0.0.0.0 --directory {work}/www"}},
       operations: [{{name: monitor, interval: 1s, timeout: 5s}}]}}
    - {{id: p_dummy, agent: "ocf:heartbeat:Dummy", operations: [{{name: monitor, interval: 1s, timeout: 10s}}]}}
    - {sleeper("p_glance-registry")}
    - {sleeper("p_glance-api")}
    - {sleeper("p_ovs")}
    - {{id: haproxy, agent: process,
       params: {{command: "bash -c 'exec -a hksoak=haproxy haproxy -db -f {work}/haproxy/$HAKEEPER_NODE.cfg'"}},
       operations: [{{name: monitor, interval: 1s, timeout: 5s}}]}}
    - {{id: p_api, agent: process, params: {{command: "bash {work}/api.sh"}},
       operations: [{{name: monitor, interval: 1s, timeout: 5s}}]}}
  groups:
    - {{id: g_basic_services, members: [p_mysql, p_rabbitmq]}}
    - {{id: g_keystone, members: [p_keystone, p_dummy]}}
    - {{id: g_glance, members: [p_glance-registry, p_glance-api]}}
  clones:
    - {{id: cl_ovs, child: p_ovs}}
    - {{id: haproxy-clone, child: haproxy, meta: {{interleave: true}}}}
    - {{id: cl_api, child: p_api, meta: {{interleave: true}}}}
constraints:
  colocation:
    - {{id: basic-with-ip, resource: g_basic_services, with: p_IP}}
    - {{id: keystone-with-ip, resource: g_keystone, with: p_IP}}
    - {{id: glance-with-keystone, resource: g_glance, with: g_keystone}}
  order:
    - {{id: ip-then-basic, first: p_IP, then: g_basic_services}}
    - {{id: basic-then-keystone, first: g_basic_services, then: g_keystone}}
    - {{id: keystone-then-glance, first: g_keystone, then: g_glance}}
"""


def profile_text(cl: NsCluster) -> str:
    net = cl.vip.rsplit(".", 1)[0]
    ctrl = "\n".join(f"  - {{name: {n}, address: {cl.ip(n)}}}" for n in cl.names)
    return f"""\
name: soak
networks: {{lab: {net}.0/24}}
controllers:
{ctrl}
vips: {{nova-api: {net}.101, glance-api: {net}.102}}
vrrp: {{version: 3, advert-int: 0.1, first-vrid: 140, check-interval: 1, preempt: false}}
haproxy: {{check-inter: 200ms}}
"""


class Rig:
    """The cluster and its speakers, the faults and the repairs (the imperative shell)."""

    def __init__(self, workdir: str, subnet: int, log: Callable[[dict[str, object]], None]) -> None:
        self.work = workdir
        self.log = log
        self.cl = NsCluster(workdir, tag="k", subnet=subnet, size=5, tls=True)
        self.aliases = {n: f"hka-{self.cl.lab.owner}-f{n}" for n in self.cl.names}
        self.template = f"hka-{self.cl.lab.owner}-f{{node}}"
        self.speakers: dict[str, subprocess.Popen[bytes]] = {}
        self.resolved = parse_profile(profile_text(self.cl))
        self.vrrp_vips = [str(v) for v in self.resolved.vip_addresses()]
        self.inodes = {os.stat(f"/run/netns/{h.ns}").st_ino: n for n, h in self.cl.hosts.items()}
        self.pids: dict[str, dict[str, list[int]]] = {}  # node -> tag -> pids, from the last scan
        self.mutex = threading.RLock()  # faults, repairs and reboots one at a time
        self.holding = False  # a fault is in effect: nothing is repaired until its heal
        self.down_since: dict[str, float] = {}  # a fenced node -> when it was first seen so

    # -- bring up --------------------------------------------------------------------------------

    def write_files(self) -> None:
        for sub in ("haproxy", "vrrp", "www"):
            os.makedirs(os.path.join(self.work, sub), exist_ok=True)
        Path(self.work, "www", "index.html").write_text("keystone\n")
        for n in self.cl.names:
            paths = RuntimePaths(f"{self.work}/haproxy/{n}.sock", f"{self.work}/haproxy/{n}.pid")
            Path(self.work, "haproxy", f"{n}.cfg").write_text(render_haproxy(self.resolved, paths))
            Path(self.work, "vrrp", f"{n}.conf").write_text(render_keepalived(self.resolved, n))
        listens = " ".join(f"--listen {ip}:{port}:{name}" for name, port in (("nova-api", 8774), ("glance-api", 9292))
                           for ip in ["$ADDR"])
        addr = " ".join(f"{n}) ADDR={self.cl.ip(n)};;" for n in self.cl.names)
        Path(self.work, "api.sh").write_text(
            f'case "$HAKEEPER_NODE" in {addr} esac\n'
            f"exec {sys.executable} -X hksoak=p_api -m hakeeper.openstack.standin --node $HAKEEPER_NODE {listens}\n")

    def start(self) -> None:
        self.write_files()
        for n, h in self.cl.hosts.items():
            h.run(["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"], check=True)
            self.fence_path(n, True)
        self.cl.start()
        for n in self.cl.names:
            self.start_speaker(n)
        self.cl.apply(spec_text(self.cl, self.work, self.template))

    def start_speaker(self, n: str) -> None:
        d = os.path.join(self.work, "vrrp")
        old = self.speakers.pop(n, None)
        if old is not None:  # reaped: keepalived takes a zombie's pid file for a live daemon
            with contextlib.suppress(ProcessLookupError):
                os.killpg(old.pid, signal.SIGKILL)
            old.wait(5)
        for f in (f"{n}.pid", f"{n}.vrrp.pid", f"{n}.chk.pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(d, f))
        argv = ["keepalived", "--dont-fork", "--log-console", "--vrrp", "-f", f"{d}/{n}.conf",
                "-p", f"{d}/{n}.pid", "-r", f"{d}/{n}.vrrp.pid", "-c", f"{d}/{n}.chk.pid"]
        with open(os.path.join(d, f"{n}.log"), "ab") as out:
            self.speakers[n] = self.cl.hosts[n].spawn(argv, stdout=out, stderr=out, start_new_session=True)

    def fence_path(self, n: str, present: bool) -> None:
        """The fence device reaches node n's namespace through an alias; without it, it fails."""
        alias = f"/run/netns/{self.aliases[n]}"
        if present and not os.path.ismount(alias):
            Path(alias).touch()
            subprocess.run(["mount", "--bind", f"/run/netns/{self.cl.hosts[n].ns}", alias], check=True)
        elif not present and os.path.exists(alias):
            subprocess.run(["umount", alias], check=False)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(alias)

    # -- what runs where (the observer's eyes) -------------------------------------------------

    def scan(self, netns: dict[str, object]) -> Sample:
        t = time.monotonic()
        procs: dict[str, dict[str, list[int]]] = {n: {} for n in self.cl.names}
        for pid_s in os.listdir("/proc"):
            if not pid_s.isdigit():
                continue
            try:
                ino = int(os.readlink(f"/proc/{pid_s}/ns/net")[5:-1])
                node = self.inodes.get(ino)
                if node is None:
                    continue
                with open(f"/proc/{pid_s}/cmdline", "rb") as f:
                    m = TAG.search(f.read())
            except (OSError, ValueError):
                continue
            if m:
                procs[node].setdefault(m.group(1).decode(), []).append(int(pid_s))
        self.pids = procs
        nodes = {}
        for n in self.cl.names:
            up, addrs = links_and_addresses(netns[n])
            files = frozenset({"p_dummy"}) if os.path.exists(self.dummy_state(n)) else frozenset()
            nodes[n] = NodeSample(up, frozenset(procs[n]), files, addrs)
        return Sample(t, nodes)

    def dummy_state(self, n: str) -> str:
        return os.path.join(self.work, "state", n, "rsctmp", "Dummy-p_dummy.state")

    # -- faults and repairs ------------------------------------------------------------------

    def inject(self, f: Fault) -> str:
        with self.mutex:
            return self._inject(f)

    def _inject(self, f: Fault) -> str:
        self.holding = True
        n, h = f.node, self.cl.hosts[f.node]
        agent = self.cl.agents.get(n)
        member = self.cl.members[n]
        if f.kind in ("kill-agent", "stop-agent", "fence-fail"):
            if f.kind == "fence-fail":
                self.fence_path(n, False)
            if agent is not None:
                os.kill(agent.pid, signal.SIGSTOP if f.kind == "stop-agent" else signal.SIGKILL)
            return f"agent pid {agent.pid if agent else None}"
        if f.kind in ("kill-etcd", "stop-etcd"):
            member.signal(signal.SIGKILL if f.kind == "kill-etcd" else signal.SIGSTOP)
            return "etcd member"
        if f.kind in ("kill-service", "stop-service"):
            tags = sorted((t, p) for t, ps in self.pids.get(n, {}).items() for p in ps)
            tags += [("keepalived", s.pid) for s in [self.speakers.get(n)] if s is not None and s.poll() is None]
            if not tags:
                return "nothing to signal"
            tag, pid = tags[min(len(tags) - 1, int(f.pick * len(tags)))]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if f.kind == "kill-service" else signal.SIGSTOP)
            return f"{tag} pid {pid}"
        if f.kind == "link-down":
            h.ip("link", "set", IFNAME, "down", check=False)
            return IFNAME
        if f.kind.startswith("partition-"):
            hooks = {"both": ("input", "output"), "in": ("input",), "out": ("output",)}[f.kind.split("-")[1]]
            rules = "".join(f"  chain c{k} {{ type filter hook {k} priority 0; {'iif' if k == 'input' else 'oif'}"
                            f'name "{IFNAME}" drop; }}\n' for k in hooks)
            subprocess.run(h.cmd(["nft", "-f", "-"]), input=f"table inet hksoak {{\n{rules}}}\n", text=True,
                           check=True)
            return "drops " + "/".join(hooks)
        if f.kind == "monitor-fail":
            for cand in self.cl.names:
                if os.path.exists(self.dummy_state(cand)):
                    os.unlink(self.dummy_state(cand))
                    return f"Dummy state removed on {cand}"
            return "Dummy ran nowhere"
        raise ValueError(f.kind)

    def link_up(self, n: str) -> bool:
        out = self.cl.hosts[n].ip("-o", "link", "show", IFNAME, check=False).stdout
        flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
        return "UP" in flags

    def undo(self, f: Fault) -> None:
        """The heal proper: the fault's effect taken away (restarts follow in `restore`). After a
        fence-fail the harness keeps holding until `await_fence` has seen what the cluster does
        with the device back."""
        with self.mutex:
            self.holding = f.kind == "fence-fail"
            for n, h in self.cl.hosts.items():
                self.fence_path(n, True)
                h.run(["nft", "delete table inet hksoak"])
                for pid in subprocess.run(["ip", "netns", "pids", h.ns], capture_output=True, text=True).stdout.split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGCONT)
            agent = self.cl.agents.get(f.node)
            if f.kind == "link-down" and agent is not None and agent.poll() is None:
                self.cl.hosts[f.node].ip("link", "set", IFNAME, "up", check=False)

    def await_fence(self, n: str, timeout: float) -> bool:
        """After a fence-fail on node n (its agent killed while no fence could reach it): once
        the device works again, the cluster fences n if n ran resources, and what n ran fails
        over then. That failover is the fault's doing, so the heal is recorded after it began,
        never before (requests lost to it were counted outside every window). True if n was
        fenced (its link went down) within `timeout`."""
        try:
            if not self.pids.get(n):  # it ran nothing: the cluster has no reason to fence it
                return False
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.link_up(n):
                    return True
                time.sleep(0.1)
            return False
        finally:
            with self.mutex:
                self.holding = False

    def restore(self) -> list[str]:
        """Every node back as it should be. A fenced node (the fence kills everything and takes the
        links down) boots again, as a power-cycling fence device would have it; a dead etcd member,
        agent or speaker is started again. Called after a heal, and every second between faults."""
        done: list[str] = []
        with self.mutex:
            if self.holding:  # checked under the lock: a fault injected meanwhile stays in effect
                return done
            for n in self.cl.names:
                agent = self.cl.agents.get(n)
                member = self.cl.members[n]
                agent_dead = agent is None or agent.poll() is not None
                etcd_dead = member.proc is None or member.proc.poll() is not None
                # Outside a fault nothing takes a link down but the fence: a node with its link
                # down was fenced, even if an agent started at the heal outran the fence.
                fenced = (agent_dead and etcd_dead) or not self.link_up(n)
                if not fenced:
                    self.down_since.pop(n, None)
                else:
                    seen = self.down_since.setdefault(n, time.monotonic())
                    if time.monotonic() - seen < POWER_CYCLE:
                        continue  # the next round (the medic's, every second) boots it
                    del self.down_since[n]
                    kill_namespace_processes(self.cl.hosts[n].ns)
                    if member.proc is not None:
                        member.proc.wait(5)
                    self.cl.agents.pop(n, None)
                    member.proc = None
                    self.cl.revive_node(n)
                    self.start_speaker(n)
                    done.append(f"{n} revived")
                    continue
                if etcd_dead:
                    self.cl.start_member(n)
                    done.append(f"{n} etcd")
                if agent_dead:
                    self.cl.start_agent(n)
                    done.append(f"{n} agent (exit {agent.returncode if agent else None})")
                if (sp := self.speakers.get(n)) is None or sp.poll() is not None:
                    self.start_speaker(n)
                    done.append(f"{n} keepalived")
        return done

    def config_digest(self) -> str:
        """The configuration as stored, read with etcdctl as the root user (not through hakeeper)."""
        pki = self.cl.pki
        assert pki is not None
        argv = ["etcdctl", f"--cacert={pki.ca}", f"--cert={pki.root[0]}", f"--key={pki.root[1]}",
                "--endpoints", self.cl.endpoints(), "--command-timeout=20s", "get", f"/hakeeper/{self.cl.tag}/config",
                "--print-value-only"]
        for _ in range(5):
            out = subprocess.run(argv, capture_output=True, timeout=60, env={**os.environ, "ETCDCTL_API": "3"})
            if out.returncode == 0 and out.stdout.strip():
                return hashlib.sha256(out.stdout).hexdigest()[:16]
            time.sleep(2)
        raise RuntimeError(f"etcdctl get config: {out.stderr.decode(errors='replace')}")

    def all_up(self) -> bool:
        """Every agent, etcd member and speaker runs (as the harness started them)."""
        with self.mutex:
            return all(
                (a := self.cl.agents.get(n)) is not None and a.poll() is None
                and (m := self.cl.members[n].proc) is not None and m.poll() is None
                and (s := self.speakers.get(n)) is not None and s.poll() is None
                for n in self.cl.names)

    def close(self) -> None:
        for n, h in self.cl.hosts.items():
            h.run(["nft", "delete table inet hksoak"])
            self.fence_path(n, False)
        for s in self.speakers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.pid, signal.SIGKILL)
        self.cl.close()


def links_and_addresses(ns: object) -> tuple[bool, frozenset[str]]:
    """Whether eth0 is up (carrier included) and the IPv4 addresses on links that are up."""
    links = {m["index"]: (m.get_attr("IFLA_IFNAME"), m.get_attr("IFLA_OPERSTATE"))
             for m in ns.get_links()}  # type: ignore[attr-defined]
    up = {i for i, (name, state) in links.items() if name != "lo" and state == "UP"}
    addrs = frozenset(m.get_attr("IFA_ADDRESS") for m in ns.get_addr(family=2)  # type: ignore[attr-defined]
                      if m["index"] in up)
    return any(name == IFNAME and i in up for i, (name, _) in links.items()), addrs


class Soak:
    def __init__(self, workdir: str, subnet: int, bounds: Bounds) -> None:
        self.logfile = open(os.path.join(workdir, "soak.log"), "a")  # noqa: SIM115
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.rig = Rig(workdir, subnet, self.log)
        cl = self.rig.cl
        self.expect = Expect(tuple(cl.names), frozenset(SINGLE), frozenset({"p_dummy"}), frozenset(CLONED),
                             frozenset({cl.vip}), frozenset(self.rig.vrrp_vips))
        self.obs = Observer(self.expect, bounds)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def log(self, event: dict[str, object]) -> None:
        with self.lock:
            self.logfile.write(json.dumps({"t": round(time.monotonic() - self.t0, 3), **event}) + "\n")
            self.logfile.flush()

    def sampler(self) -> None:
        from pyroute2 import NetNS

        netns = {n: NetNS(h.ns) for n, h in self.rig.cl.hosts.items()}
        try:
            while not self.stop.is_set():
                began = time.monotonic()
                s = self.rig.scan(netns)
                with self.lock:
                    new = self.obs.sample(s)
                for v in new:
                    self.log({"event": "violation", "check": v.check, "what": v.what, "at": round(v.t - self.t0, 3)})
                self.stop.wait(max(0.0, 0.05 - (time.monotonic() - began)))
        finally:
            for ns in netns.values():
                ns.close()

    def prober(self) -> None:
        """Requests through both VIPs. A request is lost when it fails or has no answer within
        PROBE_TIMEOUT: an answer that is merely slow is not a loss. (At 0.5 s, the first runs
        counted as lost requests that a starved machine answered late, with no fault, no VRRP
        transition and no resource moving anywhere near them: seed 3 at load 40-68.) Each failure
        is recorded with its reason and how long it took, so a loss can be told from a late answer."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        targets = [f"http://{self.rig.cl.vip}:5000/index.html", f"http://{self.rig.vrrp_vips[0]}:8774/"]
        while not self.stop.is_set():
            for url in targets:
                t = time.monotonic()
                what = url
                try:
                    with opener.open(url, timeout=PROBE_TIMEOUT) as r:
                        ok = r.status == 200
                        what = f"{url} (status {r.status})"
                except OSError as exc:
                    ok = False
                    what = f"{url} ({type(exc).__name__}: {exc} after {time.monotonic() - t:.2f}s)"
                with self.lock:
                    self.obs.request(t, what if not ok else url, ok)
            self.stop.wait(0.1)

    def medic(self) -> None:
        while not self.stop.wait(1.0):
            if self.rig.holding:
                continue
            done = self.rig.restore()
            if done:
                self.log({"event": "reboot", "repaired": done})

    def spawn(self, fn: Callable[[], None]) -> None:
        th = threading.Thread(target=fn, daemon=True)
        th.start()
        self.threads.append(th)

    def quiet(self, timeout: float, stable: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                since = self.obs.settled_since
            if self.rig.all_up() and since is not None and time.monotonic() - since >= stable:
                return True
            time.sleep(0.2)
        self.log({"event": "not-quiet"})
        return False

    def settled_now(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                pending = [w for w in self.obs.windows if w.recovered is None]
            if not pending:
                return True
            time.sleep(0.1)
        return False

    def run(self, plan: list[Fault], start_timeout: float = 240.0, deadline: float | None = None) -> Report:
        """Inject the plan's faults one by one (until `deadline`, a monotonic time, if given)."""
        rig = self.rig
        rig.start()
        self.spawn(self.sampler)
        # The start is no fault: wait until everything runs for the first time (and speakers settle).
        if not self.quiet(start_timeout):
            raise RuntimeError(f"the cluster did not start within {start_timeout:g}s: {rig.pids}")
        digest = rig.config_digest()
        self.log({"event": "start", "config": digest, "plan": [asdict(f) for f in plan]})
        self.spawn(self.prober)
        self.spawn(self.medic)
        time.sleep(1.0)
        for i, f in enumerate(plan):
            if deadline is not None and time.monotonic() > deadline:
                self.log({"event": "deadline", "done": i})
                break
            with self.lock:
                self.obs.fault(time.monotonic(), f.kind, f.node, f.kind in ISOLATING)
            what = rig.inject(f)
            self.log({"event": "fault", "n": i, **asdict(f), "what": what})
            time.sleep(f.hold)
            rig.undo(f)
            fenced = rig.await_fence(f.node, FENCE_AFTER_HEAL) if f.kind == "fence-fail" else None
            with self.lock:
                self.obs.heal(time.monotonic())
            done = rig.restore()
            self.log({"event": "heal", "n": i, "repaired": done, **({} if fenced is None else {"fenced": fenced})})
            ok = self.settled_now(self.obs.bounds.recovery + 1.0)
            w = self.obs.windows[-1]
            after = w.recovered - w.healed if w.recovered is not None and w.healed is not None else None
            self.log({"event": "recovered" if ok else "not-recovered", "n": i,
                      "after": round(after, 3) if after is not None and after != float("inf") else None})
            # The next fault only on a quiet cluster: a node the cluster fences late (a lease that ran
            # out during the fault) is rebooted and back first, so faults do not pile up.
            self.quiet(self.obs.bounds.recovery)
            if (i + 1) % 25 == 0:
                self.check_config(digest)
            time.sleep(0.5)
        time.sleep(1.0)
        self.check_config(digest)
        self.stop.set()
        for th in self.threads:
            th.join(10)
        self.log_timeline()
        with self.lock:
            return self.obs.finish()

    def log_timeline(self) -> None:
        """Every failover window and failed request, in the log's time (seconds from the start), so
        a request-loss violation can be laid against the faults and the reboots."""
        def rel(t: float | None) -> float | None:
            return None if t is None or t == float("inf") else round(t - self.t0, 3)

        with self.lock:  # taken to copy, released before logging (log takes it too)
            windows = [[w.kind, w.node, rel(w.start), rel(w.healed), rel(w.recovered)] for w in self.obs.windows]
            failed = [[rel(t), url] for t, url in self.obs.failed_requests()]
        self.log({"event": "windows", "windows": windows})
        self.log({"event": "failed-requests", "requests": failed})

    def check_config(self, digest: str) -> None:
        now = self.rig.config_digest()
        with self.lock:
            self.obs.config(time.monotonic(), now == digest, f"({digest} -> {now})")

    def close(self) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(10)
        self.rig.close()
        self.logfile.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faults", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--schedule", help="replay the faults of this JSON file (a list of faults)")
    ap.add_argument("--subnet", type=int, default=45, help="10.92.SUBNET.0/24 (CI uses 44)")
    ap.add_argument("--recovery-bound", type=float, default=90.0)
    ap.add_argument("--workdir")
    ap.add_argument("--minutes", type=float, help="inject no new fault after this many minutes")
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="hksoak-")
    os.makedirs(workdir, exist_ok=True)
    names = [f"k{i}" for i in range(1, 6)]
    if args.schedule:
        plan = [Fault(**f) for f in json.loads(Path(args.schedule).read_text())]
    else:
        plan = schedule(args.seed, args.faults, names)
    soak = Soak(workdir, args.subnet, Bounds(recovery=args.recovery_bound))
    began = time.monotonic()
    try:
        report = soak.run(plan, deadline=began + args.minutes * 60 if args.minutes else None)
    finally:
        soak.close()
    print(f"soak: {sum(report.faults.values())} of {len(plan)} planned faults, seed {args.seed}, "
          f"{time.monotonic() - began:.0f}s, workdir {workdir}")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for line in report.lines():
        print(line)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
