"""Galera failover under hakeeper with Pacemaker's unmodified galera agent (root; mariadb-server,
galera-4, etcd-server, resource-agents).

Three real MariaDB Galera nodes in network namespaces (hakeeper.galera.lab). An independent
writer (hakeeper.galera.checker) inserts numbered rows with autocommit, 100 a second, and records
every acknowledged row.

Part 1, one node killed (rounds, victims in turn): the writer writes through the victim; its
mysqld_safe and mariadbd are SIGKILLed. Measured:
  writes resume   kill -> first row acknowledged through a surviving node (the writer moves on
                  at the first error, as a client behind a VIP whose address moves)
and hakeeper bringing the node back, from the agents' logs:
  detection       kill -> the victim's agent reports the failed monitor
  decision        failed monitor -> the leader publishes the recovery plan
  action          plan -> the instance promoted again (stop, start with --wsrep-recover,
                  promote: rejoin by IST)
Part 2, one node powered off (links down, every process SIGKILLed): the longest stall of the
writer, which writes through the two survivors (Galera blocks commits until they evict the
silent member: evs.suspect_timeout), and the rejoin after power on.
Part 3, full outage: g1 loses power (links down, every process SIGKILLed) while g2 and g3 go on
taking writes, then g2 and g3 at once; all come back (g1 first); measured: last node back ->
first acknowledged write, and rows acknowledged vs present on every node.

No real peer runs here (Pacemaker and corosync are not installed), so no ratio is printed; the
anchors are the issue's (Fuel: 14.7 s of Keystone downtime when MySQL died on one node; Pacemaker
needs every node back after a full outage).

    python3 bench/galera_failover.py [--rounds 5] [--power-rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hakeeper.galera import checker
from hakeeper.galera.lab import CHECK_PASSWORD, CHECK_USER, GaleraLab, galera_spec

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) hakeeper\.agent INFO (.*)$")


def events(lab: GaleraLab, after: float) -> list[tuple[float, str, str]]:
    """(wall time, node, message) of every agent's INFO lines after `after`, in time order."""
    out = []
    for n in lab.names:
        path = Path(lab.workdir, f"{n}.agent.log")
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            m = STAMP.match(line)
            if m:
                at = datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if at >= after:
                    out.append((at, m[2], m[3]))
    return sorted(out)


def first(evs: list[tuple[float, str, str]], pattern: str, after: float) -> float | None:
    return next((at for at, _, msg in evs if at >= after and re.search(pattern, msg)), None)


def wait_ack(writer: checker.Writer, since: float, timeout: float, hosts: list[str] | None = None) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = writer.first_ack_after(since, hosts)
        if got is not None:
            return got
        time.sleep(0.02)
    raise SystemExit(f"no write acknowledged {timeout:g}s after the fault")


def kill_round(lab: GaleraLab, victim: str) -> dict[str, float]:
    others = [n for n in lab.names if n != victim]
    writer = checker.Writer([lab.addr[n] for n in [victim, *others]], CHECK_USER, CHECK_PASSWORD)
    writer.start()
    try:
        time.sleep(1)
        wall, killed = time.time(), time.monotonic()
        lab.kill_database(victim)
        resumed = wait_ack(writer, killed, 60, [lab.addr[n] for n in others]) - killed
        deadline = time.monotonic() + 150
        while True:
            evs = events(lab, wall)
            failed = first(evs, rf"monitor-failed: galera: .* on {victim}", wall)
            plan = first(evs, rf"plan: .*(Recover|Start) +galera:\d+ +\(.*{victim}", failed or wall)
            promoted = first(evs, rf"promote: galera: promote on {victim}: success", plan or wall)
            if failed and plan and promoted:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{victim} not recovered by hakeeper: {evs[-5:]}")
            time.sleep(0.5)
        lab.wait_quiet(150, quiet=3)
    finally:
        writer.stop()
    verdict = checker.verify(lab.addr, writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    if not verdict.ok:
        raise SystemExit(f"DATA LOST: {verdict.describe()}")
    return {
        "writes resume": resumed,
        "longest stall": writer.longest_gap(killed, killed + 10),
        "detection": failed - wall,
        "decision": plan - failed,
        "action": promoted - plan,
        "rejoined": promoted - wall,
        "acked": float(verdict.acknowledged),
    }


def power_round(lab: GaleraLab, victim: str) -> dict[str, float]:
    """The victim loses power (link down, every process SIGKILLed: no TCP reset reaches the
    others) while the writer writes through the survivors: Galera stalls every commit until the
    survivors evict the silent member (evs.suspect_timeout, 5 s by default)."""
    others = [n for n in lab.names if n != victim]
    writer = checker.Writer([lab.addr[n] for n in others], CHECK_USER, CHECK_PASSWORD)
    writer.start()
    try:
        time.sleep(1)
        off = time.monotonic()
        lab.power_off(victim)
        time.sleep(15)
        stall = writer.longest_gap(off, off + 15)
        lab.power_on(victim)
        on = time.monotonic()
        lab.wait_quiet(180, quiet=3)
        back = time.monotonic() - on - 3
    finally:
        writer.stop()
    verdict = checker.verify(lab.addr, writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    if not verdict.ok:
        raise SystemExit(f"DATA LOST: {verdict.describe()}")
    return {"longest stall": stall, "rejoined after power on": back, "acked": float(verdict.acknowledged)}


def outage(lab: GaleraLab) -> dict[str, float]:
    behind, *ahead = lab.names
    writer = checker.Writer([lab.addr[n] for n in ahead], CHECK_USER, CHECK_PASSWORD)
    writer.start()
    time.sleep(1)
    lab.power_off(behind)
    time.sleep(3)  # the two others go on: g1 is now behind
    for n in ahead:
        lab.power_off(n)
    writer.stop()
    time.sleep(lab.ttl + 1)
    for n in lab.names:
        lab.power_on(n)
    back = time.monotonic()
    probe = checker.Writer([lab.addr[n] for n in lab.names], CHECK_USER, CHECK_PASSWORD)
    probe.start()
    try:
        writable = wait_ack(probe, back, 180) - back
        lab.wait_quiet(180, quiet=3)
        all_synced = time.monotonic() - back
    finally:
        probe.stop()
    acked = writer.acknowledged() | probe.acknowledged()
    verdict = checker.verify(lab.addr, acked, CHECK_USER, CHECK_PASSWORD)
    lost = sum(len(m) for m in verdict.missing.values())
    print(f"  rows acknowledged {verdict.acknowledged}; present per node {verdict.present}; "
          f"lost {lost}; nodes agree {len(set(verdict.checksums.values())) == 1}")
    if not verdict.ok:
        raise SystemExit(f"DATA LOST: {verdict.describe()}")
    return {"writable": writable, "all synced": all_synced}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--power-rounds", type=int, default=3)
    ap.add_argument("--provider-options", default="gcache.size=16M",
                    help="wsrep_provider_options, e.g. LAN failure detection: 'gcache.size=16M; "
                    "evs.suspect_timeout=PT2S; evs.inactive_timeout=PT4S; evs.install_timeout=PT4S; "
                    "evs.keepalive_period=PT0.5S' (default: Galera's timings)")
    args = ap.parse_args()
    lab = GaleraLab(tempfile.mkdtemp(prefix="hkg-bench-", dir="/tmp"), tag="gb", subnet=1,
                    provider_options=args.provider_options)
    print(f"wsrep_provider_options: {args.provider_options}")
    try:
        lab.start()
        t0 = time.monotonic()
        lab.apply(galera_spec(lab))
        first_node = lab.wait_synced(1, 150)[0]
        lab.create_check_user(first_node)
        checker.prepare(lab.addr[first_node], CHECK_USER, CHECK_PASSWORD)
        lab.wait_quiet(150, quiet=3)
        print(f"formation: {time.monotonic() - t0 - 3:.1f}s from config apply to three nodes Synced and promoted")
        rounds = []
        for i in range(args.rounds):
            victim = lab.names[i % len(lab.names)]
            r = kill_round(lab, victim)
            rounds.append(r)
            print(f"  round {i + 1} ({victim} killed): " + ", ".join(f"{k} {v:.2f}s" for k, v in r.items()
                                                                     if k != "acked")
                  + f"; {int(r['acked'])} rows acknowledged, all present")
        print(f"one database killed, median of {len(rounds)}:")
        for key in ("writes resume", "longest stall", "detection", "decision", "action", "rejoined"):
            print(f"  {key:<14} {statistics.median(r[key] for r in rounds):6.2f}s")
        powered = []
        for i in range(args.power_rounds):
            victim = lab.names[i % len(lab.names)]
            r = power_round(lab, victim)
            powered.append(r)
            print(f"  power round {i + 1} ({victim} powered off): writes stalled {r['longest stall']:.2f}s, "
                  f"rejoined {r['rejoined after power on']:.1f}s after power on; "
                  f"{int(r['acked'])} rows acknowledged, all present")
        if powered:
            print(f"one node powered off, median of {len(powered)}: writes stalled "
                  f"{statistics.median(r['longest stall'] for r in powered):.2f}s")
        print("full outage (g1 first, then g2+g3; all back, g1 first):")
        o = outage(lab)
        print(f"  writable {o['writable']:.1f}s after the last node is back; all three synced {o['all synced']:.1f}s")
    finally:
        lab.close()
        print(f"logs: {lab.workdir}")


if __name__ == "__main__":
    main()
