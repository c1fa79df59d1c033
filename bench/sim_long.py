"""The long run of the cluster simulation (issue 10): many seeds, every failure classified.

    python3 bench/sim_long.py --seeds 100000 --jobs 2
    python3 bench/sim_long.py --seeds 10000 --node-timeout 1.5   # with heartbeats

Prints, per chunk and in total: seeds, wall and CPU time, seeds per second, simulated hours, and
the failures by known bug (tests/sim/regressions.py); a failure that matches no known bug is
printed whole (seed, message, shortened trace) and listed at the end: that is a new finding.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.sim.regressions import known_bug
from tests.sim.run import run_many


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=100_000)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--node-timeout", type=float, default=0.0, help="heartbeats: the cluster option node-timeout (s)")
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), os.times()
    done, events, simulated = 0, 0, 0.0
    by_bug: dict[str, list[int]] = {}
    unknown: list[int] = []
    while done < args.seeds:
        n = min(args.chunk, args.seeds - done)
        outs = run_many(args.first + done, n, args.jobs, args.node_timeout)
        done += n
        for o in outs:
            events += o.steps
            simulated += o.sim_time
            if o.ok:
                continue
            bug = known_bug(o.message)
            if bug is None:
                unknown.append(o.seed)
                print(o.report(), end="\n\n", flush=True)
            else:
                by_bug.setdefault(bug.name, []).append(o.seed)
        wall = time.perf_counter() - t0
        now = os.times()
        cpu = (now.children_user + now.children_system + now.user + now.system) - (
            c0.children_user + c0.children_system + c0.user + c0.system
        )
        counts = ", ".join(f"{k} {len(v)}" for k, v in sorted(by_bug.items()))
        print(
            f"{done} seeds: {wall:.0f}s wall, {cpu:.0f}s CPU ({done / wall:.1f} seeds/s, "
            f"{cpu / done * 1000:.0f} ms CPU per seed), {events} events, {simulated / 3600:.1f} simulated hours; "
            f"known bugs: {counts or 'none'}; unknown: {len(unknown)}",
            flush=True,
        )
    for name, seeds in sorted(by_bug.items()):
        print(f"{name}: {len(seeds)} seeds, first {seeds[:5]}")
    if unknown:
        print(f"UNKNOWN failures: {unknown[:50]}")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
