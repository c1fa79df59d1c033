"""How much of Pacemaker's own regression suite the CIB importer reads the way Pacemaker does.

For every `xml/NAME.xml` of the suite (Pacemaker 2.1.5, data under ../shared, never copied into the
repository), import it and compare what the import says is happening NOW (node states, which
resource runs where in which role, which has failed) with the "Current cluster status" block that
Pacemaker itself printed into `summary/NAME.summary`. Prints the fraction reproduced per tier.

    python3 bench/import_conformance.py [--suite DIR] [--show N] [NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from hakeeper.conformance.current_status import compare  # noqa: E402
from hakeeper.conformance.suite import default_suite_dir  # noqa: E402

DEFAULT_SUITE = default_suite_dir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--show", type=int, default=0, help="print the first N differences")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    if not (args.suite / "index.tsv").exists():
        print(f"suite not found at {args.suite}", file=sys.stderr)
        return 2
    with open(args.suite / "index.tsv") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if not args.names or r["name"] in args.names]
    per_tier: dict[str, Counter[str]] = {}
    shown = 0
    started = time.perf_counter()
    for row in rows:
        verdict, detail = compare(row["name"], args.suite)
        per_tier.setdefault(row["tier"], Counter())[verdict] += 1
        if verdict != "ok" and shown < args.show:
            shown += 1
            print(f"{row['name']} (tier {row['tier']}): {verdict}: {detail}")
    elapsed = time.perf_counter() - started
    total: Counter[str] = Counter()
    print(f"{'tier':>6} {'CIBs':>5} {'same':>5} {'differs':>8} {'unsupported':>12} {'error':>6}  reproduced")
    for tier in sorted(per_tier):
        c = per_tier[tier]
        total.update(c)
        n = sum(c.values())
        print(f"{tier:>6} {n:>5} {c['ok']:>5} {c['differs']:>8} {c['unsupported']:>12} {c['error']:>6}"
              f"  {c['ok'] / n:7.1%}")
    n = sum(total.values())
    print(f"{'all':>6} {n:>5} {total['ok']:>5} {total['differs']:>8} {total['unsupported']:>12} "
          f"{total['error']:>6}  {total['ok'] / max(n, 1):7.1%}   ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
