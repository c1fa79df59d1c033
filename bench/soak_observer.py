"""The soak's independent observer: a pure checker of what really ran where.

The soak harness (bench/soak.py) samples every namespace every 50 ms (processes, files of
resources without a process, addresses on links that are up), logs each fault and heal, and feeds
the probe's request outcomes and the configuration checks; this module holds no I/O and no clock:
time comes in with every event, so a crafted stream of samples shows each check failing.

The checks (issue 14):
- safety: a primitive or a cluster-managed VIP is never active on two nodes. A fenced node has no
  processes left and its links are down, so "not fenced" needs no separate notion: a process
  counts wherever it runs, a file-backed resource and an address only on a node whose link is up;
- a VRRP VIP held by two nodes for longer than the VRRP bound is a violation, unless a fault that
  keeps the speakers from hearing each other (a partition, a link down, a stopped speaker) was in
  effect, up to the VRRP bound after its heal;
- every resource runs again (each primitive and VIP on exactly one node, each clone on every node)
  within the recovery bound after each heal; the time it took is the recovery figure;
- a request through a VIP fails only inside a failover window: from a fault to its recovery plus
  a grace period;
- the configuration in the store never changes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expect:
    """What the configuration asks for, by the names the harness samples."""

    nodes: tuple[str, ...]
    primitives: frozenset[str]  # process-backed: at most one node, ever
    file_primitives: frozenset[str] = frozenset()  # no process (OCF Dummy): its state file
    clones: frozenset[str] = frozenset()  # on every node once settled
    vips: frozenset[str] = frozenset()  # addresses the cluster places: at most one node
    vrrp_vips: frozenset[str] = frozenset()  # addresses VRRP places: one node, two briefly


@dataclass(frozen=True)
class Bounds:
    recovery: float = 60.0  # seconds from a heal until everything runs again
    vrrp: float = 1.5  # seconds two VRRP masters may overlap without a partition
    grace: float = 2.0  # seconds after recovery during which a lost request still counts as failover


@dataclass(frozen=True)
class NodeSample:
    link_up: bool
    processes: frozenset[str] = frozenset()  # resource tags of the processes in the namespace
    files: frozenset[str] = frozenset()  # file-backed resources whose state file exists
    addresses: frozenset[str] = frozenset()  # addresses on links that are up


@dataclass(frozen=True)
class Sample:
    t: float
    nodes: Mapping[str, NodeSample]


@dataclass(frozen=True)
class Violation:
    t: float
    check: str  # "double", "vrrp", "recovery", "request", "config"
    what: str


@dataclass
class Window:
    """One fault from injection to recovery; `isolates` if speakers could not hear each other."""

    kind: str
    node: str
    start: float
    isolates: bool
    healed: float | None = None
    recovered: float | None = None


@dataclass(frozen=True)
class Report:
    faults: dict[str, int]
    violations: list[Violation]
    recoveries: list[float]
    requests: int
    lost: int
    lost_outside: int

    def percentile(self, q: float) -> float | None:
        if not self.recoveries:
            return None
        xs = sorted(self.recoveries)
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]

    def lines(self) -> list[str]:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f}s"

        out = [f"faults: {sum(self.faults.values())} "
               + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
               f"violations: {len(self.violations)}"]
        out += [f"  {v.t:9.2f} {v.check}: {v.what}" for v in self.violations]
        out.append(f"recovery after heal (n={len(self.recoveries)}): p50 {fmt(self.percentile(0.5))}, "
                   f"p99 {fmt(self.percentile(0.99))}, max {fmt(max(self.recoveries, default=None))}")
        out.append(f"requests: {self.requests}, lost {self.lost} "
                   f"(outside failover windows: {self.lost_outside})")
        return out


@dataclass
class Observer:
    expect: Expect
    bounds: Bounds = field(default_factory=Bounds)
    windows: list[Window] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    _doubles: set[str] = field(default_factory=set)  # episodes already reported
    _vrrp_since: dict[str, float] = field(default_factory=dict)
    _vrrp_reported: set[str] = field(default_factory=set)
    _requests: int = 0
    _failed: list[tuple[float, str]] = field(default_factory=list)
    _last_t: float = 0.0
    settled_since: float | None = None  # since when every sample was settled (None: the last was not)

    # -- events from the nemesis -----------------------------------------------------------------

    def fault(self, t: float, kind: str, node: str, isolates: bool = False) -> None:
        self.faults[kind] += 1
        self.windows.append(Window(kind, node, t, isolates))

    def heal(self, t: float) -> None:
        for w in self.windows:
            if w.healed is None:
                w.healed = t

    def _pending(self, t: float = math.inf) -> list[Window]:
        """Windows healed by time t (a sample taken before the heal says nothing of recovery)."""
        return [w for w in self.windows if w.healed is not None and w.healed <= t and w.recovered is None]

    # -- samples ---------------------------------------------------------------------------------

    def holders(self, s: Sample, rid: str) -> list[str]:
        if rid in self.expect.file_primitives:
            return [n for n, v in s.nodes.items() if v.link_up and rid in v.files]
        return [n for n, v in s.nodes.items() if rid in v.processes]

    def vip_holders(self, s: Sample, address: str) -> list[str]:
        return [n for n, v in s.nodes.items() if v.link_up and address in v.addresses]

    def settled(self, s: Sample) -> bool:
        """Everything runs as configured: each primitive and VIP once, each clone everywhere."""
        once = [self.holders(s, r) for r in self.expect.primitives | self.expect.file_primitives]
        once += [self.vip_holders(s, a) for a in self.expect.vips | self.expect.vrrp_vips]
        everywhere = all(rid in s.nodes[n].processes for rid in self.expect.clones for n in self.expect.nodes)
        return all(len(h) == 1 for h in once) and everywhere and set(s.nodes) >= set(self.expect.nodes)

    def _isolated_at(self, t: float) -> bool:
        return any(w.isolates and w.start <= t and (w.healed is None or t <= w.healed + self.bounds.vrrp)
                   for w in self.windows)

    def sample(self, s: Sample) -> list[Violation]:
        """Check one sample; returns the violations it raised (also kept in `violations`)."""
        self._last_t = s.t
        new: list[Violation] = []
        for rid in sorted(self.expect.primitives | self.expect.file_primitives):
            self._double(s.t, rid, self.holders(s, rid), new)
        for address in sorted(self.expect.vips):
            self._double(s.t, f"VIP {address}", self.vip_holders(s, address), new)
        for address in sorted(self.expect.vrrp_vips):
            self._vrrp(s.t, address, self.vip_holders(s, address), new)
        ok = self.settled(s)
        if not ok:
            self.settled_since = None
        elif self.settled_since is None:
            self.settled_since = s.t
        pending = self._pending(s.t)
        if pending:
            for w in pending:
                assert w.healed is not None
                if ok:
                    w.recovered = s.t
                    self.recoveries.append(s.t - w.healed)
                elif s.t - w.healed > self.bounds.recovery:
                    w.recovered = math.inf  # reported once (its window ends at the bound)
                    new.append(Violation(s.t, "recovery", f"not everything runs {self.bounds.recovery:g}s after "
                                         f"the heal of {w.kind} on {w.node}: {self._missing(s)}"))
        self.violations += new
        return new

    def _double(self, t: float, what: str, where: list[str], new: list[Violation]) -> None:
        if len(where) > 1:
            if what not in self._doubles:
                self._doubles.add(what)
                new.append(Violation(t, "double", f"{what} active on {', '.join(sorted(where))}"))
        else:
            self._doubles.discard(what)

    def _vrrp(self, t: float, address: str, where: list[str], new: list[Violation]) -> None:
        if len(where) <= 1:
            self._vrrp_since.pop(address, None)
            self._vrrp_reported.discard(address)
            return
        since = self._vrrp_since.setdefault(address, t)
        if self._isolated_at(t):
            self._vrrp_since[address] = t  # the overlap is counted from the end of the isolation
            return
        if t - since > self.bounds.vrrp and address not in self._vrrp_reported:
            self._vrrp_reported.add(address)
            new.append(Violation(t, "vrrp", f"VRRP VIP {address} on {', '.join(sorted(where))} for "
                                 f"{t - since:.2f}s (bound {self.bounds.vrrp:g}s)"))

    def _missing(self, s: Sample) -> str:
        parts = [f"{r} on {self.holders(s, r) or 'none'}" for r in sorted(self.expect.primitives
                                                                             | self.expect.file_primitives)
                 if len(self.holders(s, r)) != 1]
        parts += [f"VIP {a} on {self.vip_holders(s, a) or 'none'}" for a in sorted(self.expect.vips
                                                                                   | self.expect.vrrp_vips)
                  if len(self.vip_holders(s, a)) != 1]
        parts += [f"{c} not on {n}" for c in sorted(self.expect.clones) for n in self.expect.nodes
                  if c not in s.nodes.get(n, NodeSample(False)).processes]
        return "; ".join(parts) or "nodes missing"

    # -- requests and the configuration ---------------------------------------------------------

    def request(self, t: float, target: str, ok: bool) -> None:
        self._requests += 1
        if not ok:
            self._failed.append((t, target))

    def config(self, t: float, same: bool, detail: str = "") -> None:
        if not same:
            self.violations.append(Violation(t, "config", f"the configuration in the store changed {detail}".strip()))

    def _in_window(self, t: float) -> bool:
        for w in self.windows:
            end = w.recovered if w.recovered is not None else math.inf
            if end == math.inf and w.healed is not None and w.recovered is not None:
                end = w.healed + self.bounds.recovery  # never recovered: the window ends at the bound
            end += self.bounds.grace
            if w.start <= t <= end:
                return True
        return False

    def failed_requests(self) -> list[tuple[float, str]]:
        """(time, target) of every request that failed, inside a window or not."""
        return list(self._failed)

    def finish(self) -> Report:
        outside = [(t, target) for t, target in self._failed if not self._in_window(t)]
        violations = list(self.violations)
        if outside:
            first = ", ".join(f"{target} at {t:.2f}" for t, target in outside[:5])
            violations.append(Violation(outside[0][0], "request",
                                        f"{len(outside)} requests lost outside failover windows: {first}"))
        for w in self._pending():
            assert w.healed is not None
            violations.append(Violation(self._last_t, "recovery",
                                        f"{w.kind} on {w.node} healed at {w.healed:.2f} never recovered"))
        return Report(dict(self.faults), violations, list(self.recoveries), self._requests,
                      len(self._failed), len(outside))
