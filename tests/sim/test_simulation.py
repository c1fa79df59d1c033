"""The cluster simulation in CI: regression seeds first, then thousands of seeds, each checked after
every step; a run is reproducible from its seed; and a checker does fail on a broken decision."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import pytest

from hakeeper.agent.core import types as t
from hakeeper.coord.store import Delete, Put

from .brain import SimAgent
from .regressions import REGRESSIONS, known_bug
from .run import run_many
from .scenario import Fault, SimConfig, run_seed

# 2,000 seeds in all: most with lease expiry alone, some with heartbeats (node-timeout 1.5 s),
# which cost about 2.6 times as many events each.
SEEDS = int(os.environ.get("HAKEEPER_SIM_SEEDS", "1700"))
HEARTBEAT_SEEDS = int(os.environ.get("HAKEEPER_SIM_HEARTBEAT_SEEDS", "300"))


def test_the_same_seed_gives_the_same_trace() -> None:
    cfg = SimConfig(promotable=False)
    a, b = run_seed(7, cfg), run_seed(7, cfg)
    assert a.ok and a.trace == b.trace and a.steps == b.steps and len(a.trace) > 30
    assert run_seed(8, cfg).trace != a.trace


@pytest.mark.parametrize("seed,bug", REGRESSIONS, ids=[f"seed{s}" for s, _ in REGRESSIONS])
def test_regression_seed(seed: int, bug: Any) -> None:
    out = run_seed(seed, SimConfig().for_seed(seed))
    if bug is None:
        assert out.ok, out.report()
        return
    if out.ok or not bug.matches(out.message):
        pytest.fail(
            f"seed {seed} no longer shows known bug {bug.name}: {out.message or 'passes'}; "
            "if it was fixed, mark the entry fixed (bug=None) in tests/sim/regressions.py"
        )
    pytest.xfail(f"known bug {bug.name} ({bug.owner}): {out.message}")


@pytest.mark.timeout(900)  # ~80 s on two idle cores; far longer on a loaded machine
@pytest.mark.parametrize("node_timeout,count", [(0.0, SEEDS), (1.5, HEARTBEAT_SEEDS)], ids=["lease", "heartbeats"])
def test_many_seeds(node_timeout: float, count: int) -> None:
    """Every failure must be a known, listed bug; a new kind of failure fails with its trace."""
    t0 = time.perf_counter()
    outs = run_many(0, count, jobs=2, node_timeout=node_timeout)
    took = time.perf_counter() - t0
    unknown = [o for o in outs if not o.ok and known_bug(o.message) is None]
    counts: dict[str, int] = {}
    for o in outs:
        if not o.ok:
            bug = known_bug(o.message)
            counts[bug.name if bug else "unknown"] = counts.get(bug.name if bug else "unknown", 0) + 1
    print(f"{len(outs)} seeds (node-timeout {node_timeout}) in {took:.1f}s; failures by known bug: {counts}")
    assert len(outs) == count
    assert not unknown, "\n\n".join(o.report() for o in unknown[:3])


def test_heartbeats_fence_a_paused_node_long_before_its_lease_would_expire() -> None:
    """A 3 s pause of n2 (which runs db) is shorter than the 5 s lease: without heartbeats
    nothing happens; with node-timeout 1.5 s the leader suspects n2, fences it, and db runs
    elsewhere, never on two nodes (the checkers run after every step)."""
    pause = (Fault(8.0, "pause", "n2", 3.0),)
    cfg = SimConfig(promotable=False, faults=pause, op_fail_rate=0.0)
    lease_only = run_seed(3, cfg)
    assert lease_only.ok, lease_only.report()
    assert not any("fencing n2" in what for _, _, what in lease_only.trace)
    beats = run_seed(3, dataclasses.replace(cfg, node_timeout=1.5))
    assert beats.ok, beats.report()
    fenced = [at for at, _, what in beats.trace if "fencing n2" in what]
    assert fenced and 8.0 + 1.5 <= fenced[0] < 8.0 + 3.0, beats.shortened()


class FencesWithoutFencing(SimAgent):
    """A deliberately broken leader: it records a fence as done without asking any device (the
    mistake the stonith checkers exist for). Test-only; hakeeper's code is not touched: the real
    LeaderCore is told at once that its Fence succeeded."""

    def handle(self, now: float, inp: t.Input) -> list[t.Effect]:
        out = []
        for effect in super().handle(now, inp):
            if isinstance(effect, t.Fence):
                out += self.handle(now, t.FenceDone(effect.token, True, "pretended", 0.0))
            else:
                out.append(effect)
        return out


def test_a_checker_catches_a_broken_decision_with_seed_and_trace() -> None:
    # n2 runs db (it prefers n2); a 14 s pause outlives its lease, so the leader must fence it.
    pause = (Fault(8.0, "pause", "n2", 14.0),)
    cfg = SimConfig(promotable=False, faults=pause, op_fail_rate=0.0)
    assert run_seed(3, cfg).ok  # the real decisions: fenced for real, db moves once n2 is off
    broken = run_seed(3, dataclasses.replace(cfg, make_brain=FencesWithoutFencing))
    assert not broken.ok
    # vip or db (both ran on n2), whichever the real core's plan starts first elsewhere.
    rsc = broken.message.split(" ", 1)[0]
    assert rsc in ("vip", "db") and broken.message.startswith(f"{rsc} active on 2 nodes: "), broken.message
    assert "n2" in broken.message.split(": ", 1)[1], broken.message
    report = broken.report()
    assert report.startswith("seed 3: ") and "pause n2" in report and f"start {rsc} begins" in report
    assert "python3 -m tests.sim --seed 3" in report


def test_the_lost_node_checker_fails_a_start_before_the_fence() -> None:
    """The same broken fence, seen by the second checker: a fence record written without fencing
    clears the node; so here the leader 'fences' by deleting the reports alone, no record."""

    class DropsReports(SimAgent):
        def handle(self, now: float, inp: t.Input) -> list[t.Effect]:
            out: list[t.Effect] = []
            for effect in super().handle(now, inp):
                if isinstance(effect, t.Fence):
                    # The core forgets this fence (as if it had ended) and the reports go.
                    self.leader.fencing.pop(effect.victim, None)
                    keys = self.node.keys
                    prefix = f"{keys.status}{effect.victim}/"
                    done = Put(keys.done_of(self.node.executed_epoch or 1, 0), b'{"ok":true}')
                    out.append(t.Txn(0, (), (Delete(prefix, prefix=True), done), "drop reports"))
                else:
                    out.append(effect)
            return out

    cfg = SimConfig(promotable=False, faults=(Fault(8.0, "pause", "n2", 14.0),), op_fail_rate=0.0)
    out = run_seed(3, dataclasses.replace(cfg, make_brain=DropsReports))
    assert not out.ok and "while n2, lost with it Started, is not fenced yet" in out.message, out.message
