"""The demo's display: a live terminal view (rich.live) or, without a TTY, plain time-stamped lines."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hakeeper.openstack.stack import Event, speaker_role
from hakeeper.openstack.timeline import Failover, Sample

_COLOURS = ["cyan", "magenta", "yellow", "blue", "green"]
# The speakers' own time stamps (keepalived's console, hakeeper's logging): the view has its own.
_STAMP = re.compile(r"^(\w{3} \w{3} +\d+ [\d:]+ \d{4}: |\d{4}-\d\d-\d\d [\d:,]+ hakeeper-vrrp\[\d+\] \w+ )")


class View:
    def __init__(self, *, live: bool, controllers: list[str], vip: str) -> None:
        self.live = live
        self.controllers = controllers
        self.vip = vip
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.timeline: list[tuple[float, str, str]] = []
        self.recent: deque[Sample] = deque(maxlen=400)
        self.sent = 0
        self.lost = 0
        self.served: dict[str, int] = dict.fromkeys(controllers, 0)
        self.roles: dict[str, str] = dict.fromkeys(controllers, "starting")
        self.holders: list[str] = []
        self.holder_seen: list[tuple[float, str]] = []
        self.crash: tuple[str, float] | None = None
        self.failure_open = False
        self.results: list[Failover] = []
        self.closing = False  # cleanup under way: daemons stopping are not news
        self._live: Live | None = None
        self.console = Console()

    # -- context -------------------------------------------------------------------------------

    def __enter__(self) -> View:
        if self.live:
            self._live = Live(get_renderable=self.render, refresh_per_second=10, console=self.console,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(et, ev, tb)
            self._live = None

    # -- input ---------------------------------------------------------------------------------

    def _add(self, t: float, text: str, style: str = "") -> None:
        with self.lock:
            self.timeline.append((t, text, style))
        if not self.live:
            print(f"[{t - self.start:8.3f}s] {text}", flush=True)

    def note(self, text: str) -> None:
        self._add(time.monotonic(), text, "bold")

    def event(self, e: Event) -> None:
        if self.closing:
            return
        text = _STAMP.sub("", e.text)
        low = text.lower()
        if e.source == "net":
            with self.lock:
                if low.endswith("added"):
                    self.holders = [*[h for h in self.holders if h != e.node], e.node]
                    self.holder_seen.append((e.t, e.node))
                else:
                    self.holders = [h for h in self.holders if h != e.node]
            self._add(e.t, f"{e.node}: {text}", "green" if low.endswith("added") else "")
            return
        if e.source == "vrrp":
            role = speaker_role(text)
            if role is not None:
                self.roles[e.node] = role
            if "script" in low and "succeeded" in low:
                return  # routine; failures are shown
        elif "crashed" in low:
            self.roles[e.node] = "DOWN"
        self._add(e.t, f"{e.node} {e.source}: {text}", "red" if "crash" in low or "kill" in low else "")

    def sample(self, s: Sample) -> None:
        if self.closing:
            return
        with self.lock:
            self.recent.append(s)
            self.sent += 1
            if s.ok:
                if s.node in self.served:
                    self.served[s.node] += 1
            else:
                self.lost += 1
        # Requests finish out of order (a failed one only when it times out): the first failure of
        # a phase is news at once; when service came back is told by the analysis (`failover`).
        if not s.ok and not self.failure_open:
            self.failure_open = True
            self._add(s.t, f"first request failed ({s.err})", "red")

    def new_phase(self) -> None:
        self.failure_open = False

    def mark_crash(self, node: str, t: float) -> None:
        self.crash = (node, t)
        self.failure_open = False
        with self.lock:  # a dead node's VIP is on a link that is down: it holds nothing
            self.holders = [h for h in self.holders if h != node]
        self._add(t, f"killing {node}: SIGKILL of its processes, link down", "bold red")

    def moved_at(self, node: str, after: float) -> float | None:
        with self.lock:
            return next((t for t, h in self.holder_seen if t >= after and h == node), None)

    def failover(self, r: Failover) -> None:
        self.results.append(r)
        self.failure_open = False
        if r.first_good_at is not None:
            self._add(r.first_good_at, "first good request after the last failure", "green")
        self._add(time.monotonic(), (
            f"failover of {r.crashed}: detected {r.at(r.detected_at)}, VIP on {r.new_holder} {r.at(r.moved_at)}, "
            f"first good request {r.at(r.first_good_at)}; outage {r.outage_ms:.0f} ms, "
            f"{r.lost} of {r.sent} requests lost"), "bold")

    # -- live rendering ------------------------------------------------------------------------

    def _colour(self, node: str | None) -> str:
        return _COLOURS[self.controllers.index(node) % len(_COLOURS)] if node in self.controllers else "white"

    def render(self) -> Group:
        with self.lock:
            recent = list(self.recent)
            timeline = sorted(self.timeline)[-18:]
            holders = list(self.holders)
        nodes = Table(box=None, expand=False, pad_edge=False)
        for col in ("controller", "VRRP", "VIP", "served"):
            nodes.add_column(col)
        for name in self.controllers:
            nodes.add_row(Text(name, style=self._colour(name)), self.roles.get(name, "?"),
                          "● holds" if name in holders else "", str(self.served.get(name, 0)))
        strip = Text()
        for s in recent[-max(10, self.console.width - 4):]:
            if s.ok:
                strip.append((s.node or "?")[-1], style=self._colour(s.node))
            else:
                strip.append("✗", style="bold red")
        stats = Text(f"requests {self.sent}  ok {self.sent - self.lost}  lost {self.lost}", style="bold")
        lines = Text()
        for t, text, style in timeline:
            lines.append(f"{t - self.start:8.3f}s  ", style="dim")
            lines.append(text + "\n", style=style)
        parts = [
            Panel(nodes, title=f"hakeeper demo: VIP {self.vip}, haproxy on every controller"),
            Panel(Group(strip, stats), title="requests through the VIP (newest right), one every 20 ms"),
            Panel(lines, title="timeline"),
        ]
        if self.results:
            done = Text()
            for i, r in enumerate(self.results, 1):
                done.append(f"round {i}: {r.crashed} killed → VIP on {r.new_holder} {r.at(r.moved_at)}; "
                            f"outage {r.outage_ms:.0f} ms, {r.lost} requests lost\n", style="bold")
            parts.append(Panel(done, title="failovers"))
        return Group(*parts)
