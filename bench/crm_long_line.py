"""`import crm` time against line length: one primitive whose params line is very long, either
one huge value or many short name=value words, 100 KB and 1 MB (and 10 MB with --big).
No peer: crmsh reads such a file with shlex too, so it is no yardstick.

    python3 bench/crm_long_line.py [--big]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from hakeeper.importers.crm import parse_crm  # noqa: E402


def line(kind: str, size: int) -> str:
    if kind == "one value":
        return f'primitive p ocf:heartbeat:Dummy params big="{"x" * size}" op monitor interval=10s\n'
    words = " ".join(f"k{i:08d}=v" for i in range(size // 11))
    return f"primitive p ocf:heartbeat:Dummy params {words} op monitor interval=10s\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", action="store_true", help="also 10 MB")
    args = parser.parse_args()
    sizes = [100_000, 1_000_000] + ([10_000_000] if args.big else [])
    for kind in ("one value", "many words"):
        for size in sizes:
            text = "node n1\n" + line(kind, size)
            began = time.perf_counter()
            parse_crm(text, "long.crm")
            print(f"{kind:10}  {len(text) / 1e6:6.2f} MB line  {time.perf_counter() - began:7.3f} s", flush=True)


if __name__ == "__main__":
    main()
