"""haproxy as a managed resource: render, check, swap in atomically, reload without dropping anyone.

haproxy runs in master-worker mode (`-W -S master.sock`) in the foreground, so its master is our
child. A reload is SIGUSR2 to the master: it re-executes itself with the configuration file, the new
worker takes over the listening sockets (`expose-fd listeners` on the stats socket lets it fetch
them from the old worker, so no connection attempt is refused meanwhile) and the old worker finishes
the connections it holds before it leaves. The file on disk is always the last configuration that
`haproxy -c` accepted: a candidate is written beside it and renamed over it only after the check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class HaproxyConfigError(Exception):
    """haproxy refused a configuration; the running one (and its file) are untouched."""

    def __init__(self, messages: str) -> None:
        super().__init__(f"haproxy refused the configuration:\n{messages.strip()}")
        self.messages = messages


@dataclass(frozen=True)
class Proc:
    pid: int
    kind: str  # master, worker
    reloads: int
    old: bool  # a worker of a previous generation, finishing its connections


def parse_show_proc(text: str) -> list[Proc]:
    """Parse the master CLI's `show proc` (haproxy 2.x): `<pid> <type> <reloads> <uptime> <version>`."""
    procs = []
    old = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            old = "old workers" in stripped
            continue
        parts = stripped.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[2].isdigit():
            procs.append(Proc(int(parts[0]), parts[1], int(parts[2]), old))
    return procs


def parse_show_peers(text: str) -> dict[str, str]:
    """Parse the worker's `show peers` (haproxy 2.x): each remote peer's name and the state of
    its session (`EST` once connected; absent while there is none)."""
    states: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        for word in line.split():
            if word.startswith("id=") and "(remote," in word:
                current = word[3:word.index("(")]
                states[current] = ""
            elif word.startswith("id=") and "(local," in word:
                current = None
            elif current is not None and word.startswith("state="):
                states[current] = word[len("state="):]
    return states


class Haproxy:
    """One haproxy instance owned by this process, optionally inside a network namespace."""

    def __init__(self, workdir: str | Path, *, binary: str = "haproxy", netns: str | None = None,
                 log: str | Path | None = None, local_peer: str | None = None) -> None:
        self.workdir = Path(workdir)
        # Its name in the configuration's `peers` section (haproxy's -L; the hostname otherwise).
        self.local_peer = local_peer
        self.binary = binary
        self.netns = netns
        self.config = self.workdir / "haproxy.cfg"
        self.master_socket = self.workdir / "master.sock"
        self.log = Path(log) if log else self.workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _peer_args(self) -> list[str]:
        return ["-L", self.local_peer] if self.local_peer else []

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    # -- configuration -------------------------------------------------------------------------

    def check(self, path: Path) -> None:
        r = subprocess.run([self.binary, "-c", *self._peer_args(), "-f", str(path)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise HaproxyConfigError(r.stdout + r.stderr)

    def install(self, text: str) -> bool:
        """Make `text` the configuration file if haproxy accepts it. False if it was already so."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config.exists() and self.config.read_text(encoding="utf-8") == text:
            return False
        candidate = self.workdir / f".haproxy.cfg.{os.getpid()}.new"
        try:
            with open(candidate, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            self.check(candidate)
            os.replace(candidate, self.config)  # atomic: a reader sees the old or the new file whole
        finally:
            candidate.unlink(missing_ok=True)
        return True

    def apply(self, text: str, timeout: float = 10.0) -> bool:
        """Install and start or reload. Raises HaproxyConfigError (nothing changed) on a bad config."""
        changed = self.install(text)
        if not self.running():
            self.start(timeout)
            return True
        if changed:
            self.reload(timeout)
        return changed

    # -- process -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        if not self.config.exists():
            raise FileNotFoundError(self.config)
        self.master_socket.unlink(missing_ok=True)
        log = open(self.log, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                [*self._prefix(), self.binary, "-W", "-S", f"{self.master_socket},mode,600", *self._peer_args(),
                 "-f", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}; see {self.log}")
            try:
                if any(p.kind == "worker" and not p.old for p in self.procs()):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"haproxy did not start a worker within {timeout}s; see {self.log}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running() and self.process else None

    def master_cli(self, command: str, timeout: float = 2.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.master_socket))
            s.sendall(command.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)  # end of commands: the master answers and closes
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def peer_sessions(self) -> dict[str, str]:
        """The state of this haproxy's session with each peer sharing its stick tables."""
        return parse_show_peers(self.master_cli("@1 show peers"))

    def procs(self) -> list[Proc]:
        return parse_show_proc(self.master_cli("show proc"))

    def workers(self) -> list[int]:
        return [p.pid for p in self.procs() if p.kind == "worker" and not p.old]

    def reload(self, timeout: float = 10.0) -> None:
        """Reload the installed file; returns once a new worker serves. Old workers drain."""
        if not self.running() or self.process is None:
            raise RuntimeError("haproxy is not running")
        before = set(self.workers())
        self.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                now = set(self.workers())
                if now and not now & before:
                    return
            except OSError:
                pass  # the master is re-executing: its socket comes back in a moment
            time.sleep(0.05)
        raise TimeoutError(f"no new haproxy worker within {timeout}s after reload; see {self.log}")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: hard stop of master and workers
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole instance (the demo's crash): master and workers share our new session."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)


def check_text(text: str, workdir: str | Path, binary: str = "haproxy") -> None:
    """Check a configuration without installing it (for `render --check`)."""
    probe = Haproxy(workdir, binary=binary)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    path = Path(workdir) / f".check.{os.getpid()}.cfg"
    try:
        path.write_text(text, encoding="utf-8")
        probe.check(path)
    finally:
        path.unlink(missing_ok=True)

