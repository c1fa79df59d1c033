"""The controller stack of a profile, running on lab hosts: stand-in APIs, haproxy, a VRRP speaker.

Used by the integration tests and by `hakeeper demo`. The VRRP speaker runs the keepalived.conf
rendered from the profile: hakeeper's own speaker (`hakeeper vrrp --keepalived-conf`) when this
build has one, otherwise keepalived itself, the reference implementation of the same protocol.
Speaker output lines are time-stamped on arrival (CLOCK_MONOTONIC) so the demo can draw a timeline.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hakeeper.openstack.haproxy import Haproxy
from hakeeper.openstack.lab import Host, Lab
from hakeeper.openstack.profile import Resolved
from hakeeper.openstack.render import RuntimePaths, render_haproxy, render_keepalived

SRC = str(Path(__file__).resolve().parents[2])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def hakeeper_speaker_available() -> bool:
    try:
        return importlib.util.find_spec("hakeeper.vrrp.commands") is not None
    except ModuleNotFoundError:  # no hakeeper.vrrp package in this build
        return False


def speaker_role(text: str) -> str | None:
    """The state a VRRP speaker's log line says it entered: keepalived writes `Entering MASTER
    STATE`, hakeeper `vip_x: backup -> master (priority 150)`."""
    low = text.lower()
    for role in ("master", "backup", "fault"):
        if f"entering {role} state" in low or f"-> {role}" in low:
            return role.upper()
    return None


@dataclass
class Event:
    t: float
    node: str
    source: str  # vrrp, haproxy, lab
    text: str


@dataclass
class Node:
    host: Host
    haproxy: Haproxy
    keepalived_conf: Path
    speaker: subprocess.Popen[bytes] | None = None
    standin: subprocess.Popen[bytes] | None = None
    backends_up: set[str] = field(default_factory=set)


class Stack:
    def __init__(self, lab: Lab, resolved: Resolved, *, speaker: str = "auto",
                 on_event: Callable[[Event], None] | None = None, watch: bool = False) -> None:
        self.lab = lab
        self.resolved = resolved
        self.nodes: dict[str, Node] = {}
        self.on_event = on_event or (lambda e: None)
        self.events: list[Event] = []
        self.speaker_kind = ("hakeeper" if hakeeper_speaker_available() else "keepalived") \
            if speaker == "auto" else speaker
        self._lock = threading.Lock()
        self.watch = watch  # report VIP moves as events (the demo's timeline)

    def emit(self, node: str, source: str, text: str) -> None:
        e = Event(time.monotonic(), node, source, text)
        with self._lock:
            self.events.append(e)
        self.on_event(e)

    # -- bring up ------------------------------------------------------------------------------

    def build(self) -> None:
        for c in self.resolved.profile.controllers:
            host = self.lab.add_host(c.name, str(c.address), nonlocal_bind=True)
            work = self.lab.workdir / c.name
            work.mkdir(parents=True, exist_ok=True)
            ha = Haproxy(work, netns=host.ns, local_peer=c.name)
            conf = work / "keepalived.conf"
            conf.write_text(render_keepalived(self.resolved, c.name), encoding="utf-8")
            self.nodes[c.name] = Node(host, ha, conf)

    def haproxy_config(self, name: str) -> str:
        work = self.lab.workdir / name
        return render_haproxy(self.resolved, RuntimePaths(str(work / "stats.sock"), str(work / "haproxy.pid")))

    def watch_addresses(self, name: str) -> None:
        """Report VIPs added to or removed from the controller as they happen (`ip monitor`)."""
        n = self.nodes[name]
        p = n.host.start(["ip", "-o", "monitor", "address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        vips = {str(v) for v in self.resolved.vip_addresses()}
        threading.Thread(target=self._read_monitor, args=(name, p, vips), daemon=True).start()

    def _read_monitor(self, name: str, proc: subprocess.Popen[bytes], vips: set[str]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            words = raw.decode(errors="replace").split()
            if "inet" not in words or words.index("inet") + 1 >= len(words):
                continue
            address = words[words.index("inet") + 1].split("/")[0]
            if address in vips:
                self.emit(name, "net", f"VIP {address} {'removed' if words[0] == 'Deleted' else 'added'}")

    def start_node(self, name: str) -> None:
        if self.watch:
            self.watch_addresses(name)
        self.start_backends(name)
        self.start_haproxy(name)
        self.start_speaker(name)

    def start_backends(self, name: str, services: list[str] | None = None) -> None:
        n = self.nodes[name]
        # The stand-in speaks HTTP on every port: it passes HTTP and TCP checks (not mysql-check).
        listeners = [x for x in self.resolved.listeners if x.service.check in ("http", "tcp")]
        if services is not None:
            listeners = [x for x in listeners if x.name in services]
        args = [a for x in listeners for a in ("--listen", f"{n.host.address}:{x.service.port}:{x.name}")]
        n.standin = n.host.start([sys.executable, "-m", "hakeeper.openstack.standin", "--node", name, *args],
                                 env=_env())
        n.backends_up = {x.name for x in listeners}
        for x in listeners:  # wait until it listens: the test must not race the service's start
            self._wait_port(n.host, str(n.host.address), x.service.port)

    def _wait_port(self, host: Host, address: str, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = host.run(["ss", "-Hltn", f"src {address}:{port}"], check=False)
            if r.stdout.strip():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{host.name}: nothing listens on {address}:{port}")

    def stop_backends(self, name: str) -> None:
        n = self.nodes[name]
        if n.standin is not None:
            n.standin.kill()
            n.standin.wait(5)
            n.standin = None
        n.backends_up = set()
        self.emit(name, "lab", "API backends stopped")

    def start_haproxy(self, name: str) -> None:
        n = self.nodes[name]
        n.haproxy.apply(self.haproxy_config(name))
        if n.haproxy.process is not None:
            n.host.adopt(n.haproxy.process)
        self.emit(name, "haproxy", "running")

    def start_speaker(self, name: str) -> None:
        n = self.nodes[name]
        work = self.lab.workdir / name
        if self.speaker_kind == "hakeeper":
            argv = [sys.executable, "-m", "hakeeper", "vrrp", "--keepalived-conf", str(n.keepalived_conf)]
        else:
            argv = ["keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
                    "-f", str(n.keepalived_conf), "-p", str(work / "keepalived.pid"),
                    "-r", str(work / "vrrp.pid"), "-c", str(work / "checkers.pid")]
        n.speaker = n.host.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env())
        threading.Thread(target=self._read_speaker, args=(name, n.speaker), daemon=True).start()

    def _read_speaker(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            low = line.lower()
            # State changes, failed checks, adverts that made a master step down; not the chatter.
            if speaker_role(line) or any(w in low for w in ("fail", "received", "priority 0", "withdrew")):
                self.emit(name, "vrrp", line)

    def start(self) -> None:
        self.build()
        for name in self.nodes:
            self.start_node(name)

    # -- faults --------------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """SIGKILL everything on the controller and take its link down: a dead node."""
        n = self.nodes[name]
        n.host.crash()
        n.haproxy.process = None
        n.speaker = None
        n.standin = None
        self.emit(name, "lab", "crashed: processes killed, link down")

    def kill_haproxy(self, name: str) -> None:
        self.nodes[name].haproxy.kill()
        self.emit(name, "lab", "haproxy killed")

    def restore(self, name: str) -> None:
        """Bring a crashed controller back: link up, stale VIPs off, services, haproxy, speaker."""
        n = self.nodes[name]
        for vip in self.resolved.vip_addresses():
            _, net = self.resolved.network_of(vip)
            n.host.del_address(vip, net.prefixlen)  # a SIGKILLed speaker leaves its VIPs behind
        n.host.set_link(True)
        self.emit(name, "lab", "link up")
        self.start_node(name)

    # -- observation ---------------------------------------------------------------------------

    def holders(self, vip: ipaddress.IPv4Address) -> list[str]:
        return [name for name, n in self.nodes.items() if vip in n.host.addresses()]

    def wait_holder(self, vip: ipaddress.IPv4Address, timeout: float = 20.0,
                    exclude: str | None = None) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = [h for h in self.holders(vip) if h != exclude]
            if len(held) == 1:
                return held[0]
            time.sleep(0.05)
        raise TimeoutError(f"no single holder of {vip} within {timeout}s (now: {self.holders(vip)})")

    def wait_peers(self, timeout: float = 30.0, steady: float = 1.0) -> None:
        """Wait until every running haproxy has held a session with each of its peers for
        `steady` seconds. At start two peers may connect to each other at once and drop one
        session; an update made meanwhile can reach a peer after a newer one, so a stick table
        is only shared once the sessions have stopped changing."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            try:
                states = [n.haproxy.peer_sessions() for n in self.nodes.values() if n.haproxy.running()]
                connected = all(s and all(v == "EST" for v in s.values()) for s in states)
            except OSError:
                connected = False
            if not connected:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= steady:
                return
            time.sleep(0.1)
        raise TimeoutError(f"haproxy peers not connected within {timeout}s")

    def wait_speakers(self, timeout: float = 30.0, since: float = 0.0, names: list[str] | None = None) -> None:
        """Wait until every running speaker has reported a state since `since` (it takes part in
        elections)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                ready = {e.node for e in self.events
                         if e.t >= since and e.source == "vrrp" and speaker_role(e.text)}
            if all(name in ready for name, n in self.nodes.items()
                   if n.speaker is not None and (names is None or name in names)):
                return
            time.sleep(0.05)
        raise TimeoutError(f"VRRP speakers not ready within {timeout}s")

    def stop(self) -> None:
        for n in self.nodes.values():
            n.haproxy.stop()
            n.host.stop_all()
