"""The simulation as a tool: `python3 -m tests.sim --seeds 2000` (or `--seed N` for one run's
trace; `--node-timeout 1.5` with heartbeats). Prints one line per failing seed with its
shortened trace, and the totals; exit status 1 if any seed failed."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from .scenario import Outcome, SimConfig, run_seed

# The leader's core logs every store error it sees (a timeout during a simulated partition); the
# trace has them already. Errors (an unreadable plan) still show.
logging.getLogger("hakeeper.leader").setLevel(logging.ERROR)


def _one(seed: int, node_timeout: float = 0.0) -> Outcome:
    out = run_seed(seed, SimConfig(node_timeout=node_timeout).for_seed(seed))
    if out.ok:
        out.trace = []  # only failures travel back between processes
    return out


def run_many(first: int, count: int, jobs: int, node_timeout: float = 0.0) -> list[Outcome]:
    """Seeds first..first+count-1; `node_timeout` > 0 makes the agents beat and the leader suspect
    silent nodes (the cluster option node-timeout), 0 leaves lease expiry alone to detect them."""
    seeds = range(first, first + count)
    if jobs <= 1:
        return [_one(s, node_timeout) for s in seeds]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(functools.partial(_one, node_timeout=node_timeout), seeds, chunksize=25))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tests.sim", description=__doc__)
    ap.add_argument("--seed", type=int, help="run one seed and print its whole trace")
    ap.add_argument("--seeds", type=int, default=200, help="how many seeds to run")
    ap.add_argument("--first", type=int, default=0, help="the first seed")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--node-timeout", type=float, default=0.0, help="heartbeats: the cluster option node-timeout (s)")
    args = ap.parse_args(argv)
    if args.seed is not None:
        out = _one_full(args.seed, args.node_timeout)
        for at, who, what in out.trace:
            print(f"{at:9.3f} {who:9} {what}")
        print(f"seed {args.seed}: {'ok' if out.ok else out.message} ({out.steps} steps, {out.sim_time:.1f}s simulated)")
        return 0 if out.ok else 1
    t0 = time.perf_counter()
    outs = run_many(args.first, args.seeds, args.jobs, args.node_timeout)
    took = time.perf_counter() - t0
    failed = [o for o in outs if not o.ok]
    for o in failed:
        print(o.report(), end="\n\n")
    steps = sum(o.steps for o in outs)
    simulated = sum(o.sim_time for o in outs)
    print(
        f"{len(outs)} seeds from {args.first} in {took:.1f}s ({len(outs) / took:.0f} seeds/s, {args.jobs} jobs): "
        f"{len(failed)} failed; {steps} events, {simulated / 3600:.1f} simulated hours"
    )
    return 1 if failed else 0


def _one_full(seed: int, node_timeout: float = 0.0) -> Outcome:
    return run_seed(seed, SimConfig(node_timeout=node_timeout).for_seed(seed))


if __name__ == "__main__":
    sys.exit(main())
