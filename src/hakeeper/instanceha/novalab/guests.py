"""An independent checker: no guest ever runs on two hosts, judged from the hypervisor's own
ledger and from Nova's view, never from hakeeper's records.

The lab's driver (nova_driver.py) appends `<time> <pid> start|stop <uuid>` to
`<state_path>/guests.ledger` whenever a nova-compute process starts a guest (boot, an
evacuation's rebuild, a resume) or destroys one. A `GuestWatcher` thread tails every ledger and
samples, every few milliseconds, whether each process that wrote one is still alive (a zombie
counts as dead), and every half second where Nova places each server. A guest runs in a
process from its start line until its stop line or the process's death.

`violations()` (pure) then says, with certainty and no tolerance to tune:
- a guest started in one process while another process that ran it was still seen alive
  afterwards (the same guest running on two hosts at once: split brain);
- Nova placed a server on another host while the process that ran it on the old host had started
  it before the listing was asked for and was still seen alive after the answer (an evacuation
  before that host was fenced).
A process's death is only known to lie between its last sample alive and its first sample
dead; only what is certain counts, so the checker never fails a correct run, and the sampling
period (20 ms) is far below the fence-to-evacuation chain (hundreds of ms at least).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LEDGER = "guests.ledger"  # nova_driver.py writes it in the compute's state_path


@dataclass(frozen=True)
class LedgerLine:
    at: float
    pid: int
    kind: Literal["start", "stop"]
    uuid: str


@dataclass
class Life:
    """A nova-compute process seen through its ledger: the Nova host it claims, and the last
    moment it was seen alive (a watcher sample, or the time of a line it wrote)."""

    pid: int
    host: str
    last_alive: float
    dead: bool = False


@dataclass(frozen=True)
class NovaSample:
    """Nova's view held at some moment between the request (`sent`) and its answer (`at`): under
    load a listing takes seconds, and its answer may predate a move that happened meanwhile."""

    sent: float
    at: float
    hosts: Mapping[str, str]  # server id -> OS-EXT-SRV-ATTR:host


def parse_ledger(text: str) -> list[LedgerLine]:
    out: list[LedgerLine] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in ("start", "stop"):
            kind: Literal["start", "stop"] = "start" if parts[2] == "start" else "stop"
            out.append(LedgerLine(float(parts[0]), int(parts[1]), kind, parts[3]))
    return out


@dataclass(frozen=True)
class Run:
    uuid: str
    pid: int
    host: str
    started: float
    stopped: float | None  # a stop line; None: until the process died (or still running)


def runs(lines: Iterable[LedgerLine], lives: Mapping[int, Life]) -> list[Run]:
    """Each stretch of a guest in one process, from its first start to its stop."""
    open_runs: dict[tuple[str, int], float] = {}
    out: list[Run] = []
    for line in sorted(lines, key=lambda x: x.at):
        key = (line.uuid, line.pid)
        host = lives[line.pid].host if line.pid in lives else "?"
        if line.kind == "start":
            open_runs.setdefault(key, line.at)
        elif key in open_runs:
            out.append(Run(line.uuid, line.pid, host, open_runs.pop(key), line.at))
    for (uuid, pid), started in open_runs.items():
        out.append(Run(uuid, pid, lives[pid].host if pid in lives else "?", started, None))
    return out


def _surely_running_at(run: Run, t: float, lives: Mapping[int, Life]) -> bool:
    """The guest certainly ran in its process at some moment >= t."""
    life = lives.get(run.pid)
    end = run.stopped if run.stopped is not None else (life.last_alive if life else run.started)
    return end >= t


def violations(lines: Iterable[LedgerLine], lives: Mapping[int, Life], nova: Iterable[NovaSample]) -> list[str]:
    found: list[str] = []
    by_guest: dict[str, list[Run]] = {}
    for run in runs(lines, lives):
        by_guest.setdefault(run.uuid, []).append(run)
    for uuid, its_runs in sorted(by_guest.items()):
        its_runs.sort(key=lambda r: r.started)
        for i, later in enumerate(its_runs):
            for earlier in its_runs[:i]:
                if earlier.pid != later.pid and _surely_running_at(earlier, later.started, lives):
                    found.append(
                        f"guest {uuid} started by pid {later.pid} ({later.host}) at {later.started:.3f} while "
                        f"pid {earlier.pid} ({earlier.host}) still ran it"
                    )
    for sample in nova:
        for uuid, host in sorted(sample.hosts.items()):
            for run in by_guest.get(uuid, []):
                # Certain only when the run spans the whole request: started before it was sent,
                # still running when the answer came. Nova 34 moves a server's host only after the
                # target spawned it (finish_evacuation), so Nova naming the host of an older run
                # while a newer run goes on elsewhere is its usual lag, not a move.
                older_there = any(o.host == host and o.started < run.started for o in by_guest[uuid])
                if (run.host != host and not older_there and run.started <= sample.sent
                        and _surely_running_at(run, sample.at, lives)):
                    found.append(
                        f"Nova placed {uuid} on {host} at {sample.at:.3f} while pid {run.pid} on {run.host} "
                        "still ran it"
                    )
                    break
    return found


@dataclass
class GuestWatcher:
    """Tails the ledgers of `ledgers()` (path -> Nova host), samples process liveness every
    `every` s and Nova's placement via `nova_hosts()` every `nova_every` s, in two threads."""

    ledgers: Callable[[], Mapping[Path, str]]
    nova_hosts: Callable[[], Mapping[str, str]]
    every: float = 0.02
    nova_every: float = 0.5
    lines: list[LedgerLine] = field(default_factory=list)
    lives: dict[int, Life] = field(default_factory=dict)
    nova: list[NovaSample] = field(default_factory=list)
    _offsets: dict[Path, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __enter__(self) -> GuestWatcher:
        self.sample()  # the state before anything happens
        for target in (self._processes, self._nova):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self.sample()

    def violations(self) -> list[str]:
        return violations(self.lines, self.lives, self.nova)

    def sample(self) -> None:
        now = time.time()
        for path, host in self.ledgers().items():
            with contextlib.suppress(FileNotFoundError):
                with path.open("rb") as f:
                    f.seek(self._offsets.get(path, 0))
                    chunk = f.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self._offsets[path] = self._offsets.get(path, 0) + len(complete)
                for line in parse_ledger(complete.decode(errors="replace")):
                    self.lines.append(line)
                    life = self.lives.setdefault(line.pid, Life(line.pid, host, line.at))
                    life.last_alive = max(life.last_alive, line.at)
        for life in self.lives.values():
            if life.dead:
                continue
            if alive(life.pid):
                life.last_alive = now
            else:
                life.dead = True

    def _processes(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def _nova(self) -> None:
        while not self._stop.wait(self.nova_every):
            sent = time.time()
            try:
                hosts = self.nova_hosts()
            except Exception as exc:  # Nova busy or restarting: a missed sample, noted
                self.errors.append(str(exc)[:200])
                continue
            self.nova.append(NovaSample(sent, time.time(), dict(hosts)))


def alive(pid: int) -> bool:
    """Running (a zombie, killed but not yet reaped, is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
