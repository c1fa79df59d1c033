"""How long an etcd raft election stalls every lease refresh, against the agent's budget (root;
etcd-server).

Why it matters: while etcd elects a new raft leader no lease can be refreshed, and an agent cannot
tell that from being cut off in a minority, so it stops its resources after 75% of the lease TTL
without a refresh (coord/lease.py). The TTL must let an election pass: budget = 0.75 TTL minus
the refresh period (the last refresh can be that old when the stall begins).

Three etcd members in network namespaces (hakeeper.netlab). Each round finds the raft leader,
kills its member (SIGKILL), and writes through the surviving members with etcdctl (300 ms command
timeout, ~30 ms resolution) until a write succeeds; then restarts the member. Run once with the
timings hakeeper recommends (50/500 ms) and once with etcd's defaults (100/1000 ms); `--load N`
adds N busy processes, as on a loaded CI machine.

    python3 bench/etcd_election_stall.py [--rounds 8] [--load 0] [--ttl 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hakeeper.agent.nscluster import NsCluster
from hakeeper.coord.lease import DEFAULT_LEASE_TTL

ENV = {**os.environ, "ETCDCTL_API": "3"}


def stall_once(cl: NsCluster) -> float:
    lead = cl.raft_leader()
    if lead is None:
        raise RuntimeError("no raft leader")
    survivors = ",".join(cl.members[n].endpoint for n in cl.names if n != lead)
    t0 = time.monotonic()
    cl.members[lead].stop()
    while time.monotonic() - t0 < 30:
        put = ["etcdctl", "--endpoints", survivors, "--command-timeout=300ms", "put", "bench", "x"]
        if subprocess.run(put, capture_output=True, env=ENV).returncode == 0:
            break
    took = time.monotonic() - t0
    cl.start_member(lead)
    return took


def run(timings: tuple[int, int], rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="hk-stall-") as d:
        cl = NsCluster(d, tag="e", subnet=34, tls=False)  # bare etcdctl below, plain etcd measured
        try:
            for m in cl.members.values():
                m.timings = timings
            cl.etcd.start(timeout=30)
            out = []
            for _ in range(rounds):
                time.sleep(2)  # a settled cluster: the restarted member caught up
                out.append(stall_once(cl))
            return out
        finally:
            cl.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--load", type=int, default=0, help="busy processes running meanwhile")
    ap.add_argument("--ttl", type=int, default=DEFAULT_LEASE_TTL)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    budget = 0.75 * args.ttl - args.ttl / 5
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        print(f"raft leader killed -> first write through a survivor; {args.rounds} rounds, load {args.load}")
        print(f"agent budget at lease TTL {args.ttl} s: {budget:.2f} s (0.75 TTL - TTL/5)")
        for timings in ((50, 500), (100, 1000)):
            got = run(timings, args.rounds)
            over = sum(1 for g in got if g >= budget)
            print(
                f"etcd heartbeat/election {timings[0]}/{timings[1]} ms: median {statistics.median(got):.2f} s, "
                f"max {max(got):.2f} s, over budget {over}/{len(got)}  ({' '.join(f'{g:.2f}' for g in got)})"
            )
    finally:
        for h in hogs:
            h.kill()


if __name__ == "__main__":
    main()
