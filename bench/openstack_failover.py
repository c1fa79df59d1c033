"""Controller failover as a client sees it: `hakeeper demo` rounds, per VRRP speaker.

    sudo python3 bench/openstack_failover.py [--rounds 5]

Three controller namespaces with haproxy and stand-in APIs, a client sending a request through the
VIP every 20 ms; the VIP holder is SIGKILLed and its link taken down, `--rounds` times. Prints the
median outage (first failed request to the first good one after the last failure) and requests
lost, with keepalived (the real peer) and, when this build has it, hakeeper's own VRRP speaker on
the same profile in the same run, and their ratio. Bounded: every run has a timeout.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)


def run(speaker: str, rounds: int) -> tuple[float, float] | None:
    r = subprocess.run([sys.executable, "-m", "hakeeper", "demo", "--no-live", "--quick", "--rounds", str(rounds),
                        "--speaker", speaker], capture_output=True, text=True, timeout=60 + 20 * rounds,
                       env={**os.environ, "PYTHONPATH": SRC})
    m = re.search(r"^RESULT outage_ms=(\S+) lost=(\S+) ", r.stdout, re.M)
    if r.returncode != 0 or not m:
        print(f"{speaker}: failed (exit {r.returncode})\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
        return None
    summary = next((ln for ln in r.stdout.splitlines() if ln.startswith("summary:")), "")
    print(f"{speaker:>10}: {summary}")
    return float(m.group(1)), float(m.group(2))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        return 1
    from hakeeper.openstack.stack import hakeeper_speaker_available

    print(f"controller failover, {args.rounds} rounds each, VRRPv3 advert 0.1 s, haproxy checks every 200 ms, "
          "requests every 20 ms (median outage ms / median requests lost)")
    peer = run("keepalived", args.rounds)
    if not hakeeper_speaker_available():
        print("  hakeeper: no VRRP speaker in this build (hakeeper.vrrp); keepalived figures only")
        return 0 if peer else 1
    ours = run("hakeeper", args.rounds)
    if peer and ours:
        ratio = ours[0] / peer[0] if peer[0] else float("nan")
        print(f"     ratio: hakeeper/keepalived outage {ratio:.2f}")
    return 0 if peer and ours else 1


if __name__ == "__main__":
    sys.exit(main())
