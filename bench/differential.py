"""Agreement rate of hakeeper's importer + scheduler with crm_simulate on seeded random clusters.

    python3 bench/differential.py --cases 500            # agreement rate, mismatches by kind and feature
    python3 bench/differential.py --seed 17 --show       # one case: both answers and the CIB
    python3 bench/differential.py --cases 500 --save DIR # also write each mismatching CIB to DIR

Runs from the worktree with PYTHONPATH=src. Stops by itself: each crm_simulate run is bounded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from hakeeper.conformance.differential import CaseResult, run_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--seed", type=int, help="run this one seed only")
    parser.add_argument("--show", action="store_true", help="print every mismatch in full (with its CIB)")
    parser.add_argument("--save", type=Path, help="directory for the CIBs of mismatching cases")
    parser.add_argument("--crm-simulate", default="crm_simulate")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.cases))
    results: list[CaseResult] = []
    started = time.perf_counter()
    for seed in seeds:
        result = run_case(seed, binary=args.crm_simulate)
        results.append(result)
        if not result.agrees:
            print(result.report(with_cib=args.show) if args.show or args.seed is not None
                  else f"seed {seed} [{result.category}]: " + "; ".join(
                      f"{d.resource} ours {d.ours} pacemaker {d.pacemaker}" for d in result.differences)
                  + (" hakeeper raised " + (result.error or "").strip().splitlines()[-1] if result.error else ""))
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"seed-{seed}.xml").write_bytes(result.cib)
    elapsed = time.perf_counter() - started
    _summary(results, elapsed)
    return 0 if all(r.agrees for r in results) else 1


def _summary(results: list[CaseResult], elapsed: float) -> None:
    agree = sum(r.agrees for r in results)
    errors = sum(r.error is not None for r in results)
    print(f"\n{len(results)} cases in {elapsed:.1f} s: {agree} agree ({100 * agree / max(1, len(results)):.1f}%), "
          f"{len(results) - agree - errors} differ, {errors} hakeeper errors")
    theirs = sum(r.pacemaker_seconds for r in results)
    ours = sum(r.our_seconds for r in results)
    print(f"time per case: crm_simulate -R {1000 * theirs / max(1, len(results)):.1f} ms, "
          f"hakeeper import+schedule {1000 * ours / max(1, len(results) - errors):.1f} ms")
    categories = Counter(r.category for r in results if not r.agrees)
    if categories:
        print("mismatching cases by category: " + ", ".join(f"{k}: {n}" for k, n in categories.most_common()))
    kinds = Counter(d.kind for r in results for d in r.differences)
    if kinds:
        print("differences by kind (primitives): " + ", ".join(f"{k}: {n}" for k, n in kinds.most_common()))
    seen = Counter(f for r in results for f in r.features)
    bad = Counter(f for r in results if not r.agrees for f in r.features)
    print(f"\n{'feature':<22}{'cases':>7}{'mismatch':>10}{'rate':>8}")
    for feature, count in sorted(seen.items(), key=lambda item: -bad[item[0]] / item[1]):
        print(f"{feature:<22}{count:>7}{bad[feature]:>10}{100 * bad[feature] / count:>7.0f}%")


if __name__ == "__main__":
    sys.exit(main())
