"""What a failover looked like from the client's side: pure analysis of request samples and events.

Times are CLOCK_MONOTONIC seconds, shared by the probe (another process) and the demo. The outage
is what a client saw: from the first request that failed to the first one that succeeded after it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    t: float  # when the request was sent
    ok: bool
    node: str | None
    ms: float
    err: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Sample:
        node = d.get("node")
        err = d.get("err")
        return cls(float(str(d["t"])), bool(d["ok"]), str(node) if node is not None else None,
                   float(str(d.get("ms", 0.0))), str(err) if err is not None else None)


@dataclass(frozen=True)
class Failover:
    crashed: str
    crash_at: float
    detected_at: float | None = None  # a backup took over (its speaker entered MASTER)
    new_holder: str | None = None
    moved_at: float | None = None  # the VIP was seen on the new holder
    first_failed_at: float | None = None
    first_good_at: float | None = None  # the first success after the last failure
    sent: int = 0
    lost: int = 0
    # Requests lost when the crashed node came back and (preempting) took the VIP again.
    rejoin_lost: int | None = None

    @property
    def outage_ms(self) -> float:
        if self.first_failed_at is None:
            return 0.0
        if self.first_good_at is None:
            return float("nan")
        return (self.first_good_at - self.first_failed_at) * 1000

    def at(self, t: float | None) -> str:
        return "-" if t is None else f"+{(t - self.crash_at) * 1000:.0f} ms"


def analyse(samples: Sequence[Sample], crashed: str, crash_at: float, until: float,
            detected_at: float | None = None, new_holder: str | None = None,
            moved_at: float | None = None) -> Failover:
    """The failover that began at `crash_at`, judged on the requests sent from shortly before it
    (a request in flight at the crash can fail too) up to `until`. The outage runs from the first
    failed request to the first good one after the last failure: a straggler that fails after a
    success still belongs to the outage."""
    window = sorted((s for s in samples if crash_at - 0.5 <= s.t < until), key=lambda s: s.t)
    failed = [s.t for s in window if not s.ok]
    first_failed = failed[0] if failed else None
    first_good = None
    if failed:
        first_good = next((s.t for s in window if s.ok and s.t > failed[-1]), None)
    return Failover(crashed, crash_at, detected_at, new_holder, moved_at, first_failed, first_good,
                    sent=len(window), lost=sum(1 for s in window if not s.ok))


def count_lost(samples: Sequence[Sample], start: float, end: float) -> int:
    return sum(1 for s in samples if start <= s.t < end and not s.ok)


def median(values: Iterable[float]) -> float:
    vals = [v for v in values if v == v]  # NaN (never recovered) left out
    return statistics.median(vals) if vals else float("nan")


def summary_line(rounds: Sequence[Failover]) -> str:
    outage = median(r.outage_ms for r in rounds)
    lost = median(r.lost for r in rounds)
    sent = sum(r.sent for r in rounds)
    per = ", ".join(f"{r.outage_ms:.0f} ms/{r.lost} lost" for r in rounds)
    rejoin = [r.rejoin_lost for r in rounds if r.rejoin_lost is not None]
    if rejoin:
        per += f"; on rejoin {sum(rejoin)} lost in all"
    return (f"summary: outage {outage:.0f} ms, requests lost {lost:.0f} (median of {len(rounds)} "
            f"failover{'s' if len(rounds) != 1 else ''}: {per}; {sent} requests in the windows)")
