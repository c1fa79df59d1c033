"""Shared pieces of the VRRP integration tests: the seed-003 cluster on namespaces, hakeeper and
keepalived runners, and probes. Also used by bench/vrrp_failover.py."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hakeeper.netlab import Host, Lab

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "tests" / "data" / "vrrp"
VIP = "172.16.9.200"
NODES = [("9lpo192", "172.16.9.192/25", 200), ("9lpo134", "172.16.9.134/25", 100),
         ("9lpo135", "172.16.9.135/25", 50)]
CLIENT = "172.16.9.150/25"
KEEPALIVED = "/usr/sbin/keepalived"


def seed_conf(node: str) -> str:
    return (SEEDS / f"seed003-{node}.conf").read_text()


def variant(text: str, *, version: int = 2, advert_int: str = "1", instance_extra: str = "",
            top: str = "") -> str:
    """The seed configuration, adapted: VRRP version (v3 drops authentication), interval, extras."""
    if version == 3:
        text = re.sub(r"\n\s*authentication \{[^}]*\}", "", text)
        text = text.replace("global_defs {", "global_defs {\n   vrrp_version 3", 1)
    text = text.replace("advert_int 1", f"advert_int {advert_int}")
    if instance_extra:
        text = text.replace("    virtual_ipaddress {", f"    {instance_extra}\n    virtual_ipaddress {{", 1)
    return top + text


@dataclass
class Node:
    name: str
    host: Host
    workdir: Path
    kind: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    @property
    def conf(self) -> Path:
        return self.workdir / f"{self.name}.conf"

    def write_conf(self, text: str) -> None:
        self.conf.write_text(text)

    def start_hakeeper(self, *extra: str, yaml: Path | None = None) -> None:
        self.kind = "hakeeper"
        self.log = self.workdir / f"{self.name}.hakeeper.log"
        self.speaker_pid_path.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        source = ["--config", str(yaml)] if yaml else ["--keepalived-conf", str(self.conf)]
        self.proc = self.host.spawn(
            [sys.executable, "-m", "hakeeper", "vrrp", *source,
             "--state-file", str(self.state_path), "--pid-file", str(self.pid_path),
             "--speaker-pid-file", str(self.speaker_pid_path), *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"),
        )

    def start_keepalived(self) -> None:
        self.kind = "keepalived"
        self.log = self.workdir / f"{self.name}.keepalived.log"
        # keepalived refuses to start if a pid file names a live process, and pids get reused.
        for p in (self.pid_path, self.speaker_pid_path):
            p.unlink(missing_ok=True)
        self.proc = self.host.spawn(
            [KEEPALIVED, "-n", "-l", "-D", "-P", "-f", str(self.conf), "-p", str(self.pid_path),
             "-r", str(self.speaker_pid_path)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )

    @property
    def state_path(self) -> Path:
        return self.workdir / f"{self.name}.state.json"

    @property
    def pid_path(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    @property
    def speaker_pid_path(self) -> Path:
        return self.workdir / f"{self.name}.speaker.pid"

    def speaker_pid(self) -> int:
        wait_for(lambda: self.speaker_pid_path.exists() and self.speaker_pid_path.read_text().strip() != "",
                 10, "speaker pid file")
        return int(self.speaker_pid_path.read_text())

    def kill_speaker(self, sig: int = signal.SIGKILL) -> None:
        os.kill(self.speaker_pid(), sig)

    def kill_parent(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill_all(self) -> None:
        """SIGKILL every process of this node, as a crash of the whole service would."""
        pids = {self.proc.pid} if self.proc else set()
        if self.speaker_pid_path.exists():
            pids.add(int(self.speaker_pid_path.read_text() or 0))
        for pid in pids - {0}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(5)

    def stop(self, timeout: float = 10) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)

    def has_vip(self) -> bool:
        return self.host.has_address("eth0", VIP)

    def mac(self) -> str:
        out = self.host.ip("-o", "link", "show", "eth0").stdout
        return out.split("link/ether")[1].split()[0]

    def state(self) -> dict[str, object]:
        import json

        data = json.loads(self.state_path.read_text())
        inst = data["instances"]["nooip"]
        assert isinstance(inst, dict)
        return inst


def wait_for(pred: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Cluster:
    """The three seed controllers and a client on one bridge."""

    def __init__(self, workdir: Path, prefix: str = "hkv") -> None:
        self.lab = Lab(prefix)
        self.workdir = workdir
        self.nodes: dict[str, Node] = {}

    def __enter__(self) -> Cluster:
        self.lab.start()
        for name, addr, _ in NODES:
            self.nodes[name] = Node(name, self.lab.host(name, {"eth0": [addr]}), self.workdir)
            self.nodes[name].write_conf(seed_conf(name))
        self.client = self.lab.host("client", {"eth0": [CLIENT]})
        return self

    def __exit__(self, *exc: object) -> None:
        for n in self.nodes.values():
            if n.proc and n.proc.poll() is None:
                n.proc.kill()
        self.lab.close()

    def holders(self) -> list[str]:
        return [name for name, n in self.nodes.items() if n.has_vip()]

    def answered_by(self) -> str | None:
        """Ping the VIP from the client; the node whose MAC the client's ARP entry points at."""
        ok = self.client.run(["ping", "-c", "1", "-W", "1", VIP]).returncode == 0
        if not ok:
            return None
        out = self.client.ip("neigh", "show", VIP).stdout
        m = re.search(r"lladdr (\S+)", out)
        if not m:
            return None
        for name, n in self.nodes.items():
            if n.mac() == m.group(1):
                return name
        return None

    def wait_holder(self, name: str, timeout: float = 10) -> None:
        wait_for(lambda: self.holders() == [name], timeout, f"{name} alone to hold {VIP}")
