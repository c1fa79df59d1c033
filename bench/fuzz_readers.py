"""Fuzz every operator reader with many more inputs than the test suite, and print the figures.

    python3 bench/fuzz_readers.py [--count 5000] [--reader validate ...] [--repro DIR] [--seed 9]

For each reader: its structured malformed inputs (the classes of issue 9) plus COUNT byte-level
mutations of the seed corpus, each run in a forked child bounded to 500 MB and 10 s, through
`hakeeper.cli.main` (tests/fuzz/fuzzrun.py). Prints per reader: inputs tried, inputs that broke the
contract, failures by symptom, the slowest run and the largest memory growth; then every
(reader, class, symptom) with examples. Exit status 1 if any input broke the contract.
There is no peer to compare with here: keepalived, crmsh and crm_simulate read other formats or
do not bound their inputs the same way.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "fuzz")]

import fuzzgen  # noqa: E402
import fuzzrun  # noqa: E402
from fuzzreport import save_reproducer, summary  # noqa: E402

MB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="mutated seeds per reader")
    parser.add_argument("--reader", action="append", choices=sorted(fuzzgen.READERS),
                        help="only this reader (repeatable); default all")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--repro", type=Path, help="save every failing input under this directory")
    args = parser.parse_args()

    fuzzrun.preload()
    rows = []
    failed_all: list[fuzzrun.Outcome] = []
    with tempfile.TemporaryDirectory(prefix="hakeeper-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        marker = f"SECRET-MARKER-{secrets.token_hex(8)}"
        secret = tmp / "shadow"
        secret.write_text(f"root:{marker}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
        sock = tmp / "store.sock"
        store = subprocess.Popen([sys.executable, "-m", "hakeeper", "store", "serve", "--memory",
                                  "--socket", str(sock)],
                                 env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not sock.exists():
                if store.poll() is not None:
                    raise SystemExit("the embedded store did not start")
                time.sleep(0.05)
            fuzzrun.STORE_SOCKET = str(sock)
            for reader in args.reader or sorted(fuzzgen.READERS):
                rows.append(run_reader(reader, args, tmp, str(secret), marker, failed_all))
        finally:
            store.terminate()
            store.wait(timeout=10)

    print(f"{'reader':<16} {'inputs':>7} {'failed':>7} {'max s':>7} {'max MB':>7}  failures by symptom")
    for reader, n, failed, max_s, max_mb, symptoms in rows:
        by = ", ".join(f"{k}: {v}" for k, v in symptoms.most_common()) or "-"
        print(f"{reader:<16} {n:>7} {failed:>7} {max_s:>7.2f} {max_mb:>7.0f}  {by}")
    total = sum(r[1] for r in rows)
    print(f"{'total':<16} {total:>7} {sum(r[2] for r in rows):>7}")
    print("\nmax MB: peak resident memory of a run above the forked parent's; limits 500 MB, 10 s")
    if failed_all:
        print("\nBy reader, input class and symptom:")
        print(summary(failed_all))
    return 1 if failed_all else 0


def run_reader(reader: str, args: argparse.Namespace, tmp: Path, secret: str, marker: str,
               failed_all: list[fuzzrun.Outcome]) -> tuple[str, int, int, float, float, Counter[str]]:
    rnd = random.Random(f"{reader}:{args.seed}")
    cases = fuzzgen.cases(reader, rnd, secret, args.count)
    symptoms: Counter[str] = Counter()
    failed = 0
    max_s = max_mb = 0.0
    work = tmp / reader
    work.mkdir()
    for i, case in enumerate(cases):
        o = fuzzrun.run_case(case, work / f"c{i}", marker)
        subprocess.run(["rm", "-rf", str(work / f"c{i}")], check=False)  # 1 MB inputs add up
        max_s = max(max_s, o.seconds)
        max_mb = max(max_mb, (o.max_rss - o.base_rss) / MB)
        if o.failures:
            failed += 1
            failed_all.append(o)
            symptoms.update(o.failures)
            if args.repro:
                save_reproducer(args.repro, o)
    print(f"{reader}: {len(cases)} inputs, {failed} broke the contract", file=sys.stderr, flush=True)
    return reader, len(cases), failed, max_s, max_mb, symptoms


if __name__ == "__main__":
    sys.exit(main())
