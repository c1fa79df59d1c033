"""The truth of the simulated world: what really runs where, resource agents and fence devices.

The agents' own view (their reports in the store, their `local_running`) may be wrong; the
checkers judge by what is here. A resource counts as active from the moment its start begins
until its stop has succeeded (conservative: a half-started process may already hold the VIP or
the data), and as promoted from the moment its promote begins until its demote has succeeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hakeeper.resources.result import Result, Status

Role = str  # "Started", "Unpromoted" or "Promoted"


@dataclass
class OpFaults:
    """Faults the nemesis injects into one node's resource operations, until a time."""

    fail_until: dict[str, float] = field(default_factory=dict)  # op -> time
    slow_until: dict[str, float] = field(default_factory=dict)


@dataclass
class Truth:
    # node -> {resource id as the node's reports name it (primitive, or clone instance child:N): role}
    active: dict[str, dict[str, Role]] = field(default_factory=dict)

    def on(self, node: str) -> dict[str, Role]:
        return self.active.setdefault(node, {})

    def where(self, rsc: str) -> dict[str, Role]:
        return {n: r[rsc] for n, r in self.active.items() if rsc in r}


@dataclass(frozen=True)
class OpPlan:
    """How one resource operation will go: how long, and its result (decided when it begins)."""

    duration: float
    result: Result


class ResourceAgents:
    """Simulated resource agents: start/stop/promote/demote/monitor with durations and failures."""

    def __init__(
        self,
        rng: random.Random,
        truth: Truth,
        fail_rate: float,
        max_duration: float,
        randomly_failing: frozenset[str] = frozenset({"start", "stop", "promote", "demote", "monitor"}),
    ) -> None:
        self.rng = rng
        self.truth = truth
        self.fail_rate = fail_rate
        self.randomly_failing = randomly_failing  # the operations the random failures may hit
        self.max_duration = max_duration
        self.faults: dict[str, OpFaults] = {}
        self.slow_ops_end = 0.0  # when the last operation a slow-op fault slowed down ends

    def begin(self, node: str, rsc: str, op: str, timeout: float, promotable: bool, now: float) -> OpPlan:
        """Start `op` on `rsc` at `node` now: changes the truth that begins now and says how it ends."""
        faults = self.faults.get(node, OpFaults())
        duration = self.rng.uniform(0.01, self.max_duration)
        if faults.slow_until.get(op, -1.0) > now:
            duration *= 20
            self.slow_ops_end = max(self.slow_ops_end, now + min(duration, timeout))
        failing = faults.fail_until.get(op, -1.0) > now or (
            self.rng.random() < self.fail_rate and op in self.randomly_failing
        )
        here = self.truth.on(node)
        if op in ("start", "promote"):
            # Active (promoted) from the first moment: the checkers must see any overlap.
            here[rsc] = "Promoted" if op == "promote" else ("Unpromoted" if promotable else "Started")
        if duration > timeout:
            return OpPlan(timeout, Result(Status.TIMEOUT, None, f"{op} timed out", timeout))
        if op == "monitor":
            role = here.get(rsc)
            if failing and role is not None:
                return OpPlan(duration, Result(Status.ERROR, 1, "monitor failed", duration))
            status = Status.NOT_RUNNING if role is None else Status.PROMOTED if role == "Promoted" else Status.SUCCESS
            return OpPlan(
                duration, Result(status, {Status.NOT_RUNNING: 7, Status.PROMOTED: 8}.get(status, 0), "", duration)
            )
        if failing:
            return OpPlan(duration, Result(Status.ERROR, 1, f"{op} failed", duration))
        return OpPlan(duration, Result(Status.SUCCESS, 0, "", duration))

    def end(self, node: str, rsc: str, op: str, result: Result, promotable: bool) -> None:
        """The operation ended with `result`: the truth that changes at its end."""
        here = self.truth.on(node)
        ok = result.status is Status.SUCCESS
        if op == "start" and result.status is Status.ERROR:
            here.pop(rsc, None)  # a clean failure: nothing was left running
        elif op == "stop" and ok:
            here.pop(rsc, None)
        elif op == "demote" and ok and rsc in here:
            here[rsc] = "Unpromoted"
        elif op == "promote" and not ok and rsc in here and result.status is Status.ERROR:
            here[rsc] = "Unpromoted" if promotable else "Started"


@dataclass
class FenceDevice:
    """One stonith device: succeeds, fails until a time, or is slow until a time."""

    fail_until: float = -1.0
    slow_until: float = -1.0

    def plan(self, rng: random.Random, now: float) -> tuple[float, bool]:
        took = rng.uniform(0.5, 3.0) * (10 if self.slow_until > now else 1)
        return took, self.fail_until <= now + took
