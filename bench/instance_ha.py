"""Host death -> every instance ACTIVE elsewhere, against real Nova (novalab: Nova 34, fake driver)
with hakeeper agents on the controller and both computes (instanceha/halab.py).

For 10 and 100 instances: boot them on one compute, pull its plug (every process of its namespace
SIGKILLed, link down) and time, from that moment:
  detection    until the leader began to fence (heartbeat silence, node-timeout 1.5 s)
  fencing      the fence device's own time (stonith:netns)
  force-down   fence confirmed -> nova-compute forced down (the engine notices, one API call)
  evacuation   forced down -> the last evacuate call Nova accepted (listing, claims, calls)
  nova         the last accepted call -> every instance ACTIVE on the other host (Nova's own work)
  total        the plug pulled -> every instance ACTIVE elsewhere
and checks from Nova's migration records that each instance was evacuated exactly once.

Anchors (not run here, their documented defaults): Masakari's host monitor reports after its
60 s monitoring interval and the engine then waits 180 s (wait_period_after_service_update)
before the first evacuation: >= 240 s. Pacemaker's NovaEvacuate checks every 10 s (its monitor).

Needs root and scripts/setup-nova. Run: python3 bench/instance_ha.py [--sizes 10,100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hakeeper.instanceha.halab import HaCluster
from hakeeper.instanceha.novalab.lab import NovaLab

MASAKARI_FIRST_EVACUATION = 240.0  # s: 60 s monitoring interval + 180 s wait after the service update
NOVAEVACUATE_MONITOR = 10.0  # s


def recovery(ha: HaCluster, node: str, after: float) -> dict[str, Any] | None:
    mine = [r for r in ha.recoveries() if r["node"] == node and r["fenced_at"] >= after]
    return mine[-1] if mine else None


# Who spends the machine's CPU while a host's instances are evacuated: each process is put in
# the first group whose word its command line holds.
GROUPS = (
    ("nova-api", "[nova-api]"), ("placement", "[placement-api]"), ("neutron", "[neutron-api]"),
    ("glance", "[glance-api]"), ("nova-compute", "nova-compute"), ("nova-conductor", "nova-conductor"),
    ("nova-scheduler", "nova-scheduler"),
    ("nova-api", "nova-api"), ("nova-api", "nova.wsgi"), ("placement", "placement"), ("neutron", "neutron"),
    ("glance", "glance"), ("mariadb", "mariadbd"), ("mariadb", "mysqld"), ("rabbitmq", "beam.smp"),
    ("hakeeper", "hakeeper"), ("etcd", "etcd"),
)


Sample = dict[str, tuple[str, float]]  # "pid:starttime" -> (command line, CPU seconds so far)


def cpu_sample(services: dict[int, str]) -> Sample:
    """Every process's CPU seconds (user + system) so far, keyed so a reused pid is another
    process; "all" is the machine's busy time from /proc/stat (every process, the kernel).
    `services`: the lab's service processes (pid -> name); their children count as theirs."""
    tick = os.sysconf("SC_CLK_TCK")
    out: Sample = {}
    parents: dict[str, tuple[str, str]] = {}  # pid -> (its parent's pid, its command line)
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[f"{pid}:{fields[19]}"] = (cmd, (int(fields[11]) + int(fields[12])) / tick)
        parents[pid] = (fields[1], cmd)
    # A gunicorn worker renames itself ("gunicorn: worker [gunicorn]"), its master too: both are
    # named by the lab's service the master was started as (nova-api, placement-api, ...).
    for key, (cmd, spent) in list(out.items()):
        pid = key.split(":")[0]
        owner = services.get(int(pid)) or services.get(int(parents.get(pid, ("0", ""))[0] or 0))
        if owner is not None:
            out[key] = (f"[{owner}] {cmd}", spent)
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    out["all"] = ("", (sum(cpu) - cpu[3] - cpu[4]) / tick)  # less idle and iowait
    return out


def cpu_spent(before: Sample, after: Sample) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """CPU seconds per group between the samples, for the processes alive at the second (a process
    that died meanwhile, the victim's, is not counted), and the busiest unmatched commands."""
    groups: dict[str, float] = {}
    other: dict[str, float] = {}
    for key, (cmd, cpu) in after.items():
        spent = cpu - before.get(key, (cmd, 0.0))[1]
        group = "all" if key == "all" else next((g for g, word in GROUPS if word in cmd), "other")
        groups[group] = groups.get(group, 0.0) + spent
        if group == "other":
            other[cmd[:70]] = other.get(cmd[:70], 0.0) + spent
    top = sorted(((v, c) for c, v in other.items() if v > 0.5), reverse=True)[:5]
    return {g: v for g, v in groups.items() if v > 0.05}, top


def one_run(ha: HaCluster, count: int, victim: str, batch: int) -> dict[str, float]:
    booting = time.monotonic()
    ids: list[str] = []
    # In batches: 100 boots at once kept the lab's etcd and the compute's agent from the CPU long
    # enough (load ~30) that its heartbeat went silent and the host was fenced mid-boot.
    for first in range(0, count, batch):
        ids += ha.boot(min(batch, count - first), victim, name=f"b{count}x{first}", timeout=900)
    calls = -(-count // batch)
    took = time.monotonic() - booting
    print(f"{count} servers ACTIVE on {victim} {took:.1f} s after {calls} create call(s)", flush=True)
    services = {d.pid: name for name, d in ha.lab.daemons.items() if d.alive()}
    cpu_before = cpu_sample(services)
    dead_at = ha.power_off(victim)
    # Polled once a second (an earlier version listed every server twice a second: a load on
    # Nova's API of its own); a listing of the victim's servers while any is left there.
    spread = ha.wait_moved(ids, victim, timeout=900)
    active_at = time.time()
    spent, unmatched = cpu_spent(cpu_before, cpu_sample(services))
    cores = os.cpu_count() or 1
    print(f"CPU from the kill until every instance ACTIVE elsewhere: the machine busy {spent.get('all', 0.0):.1f} s "
          f"of {cores * (active_at - dead_at):.1f} s ({cores} cores); by process (CPU s, per instance): "
          + ", ".join(f"{g} {v:.1f} ({v / count:.2f})" for g, v in sorted(spent.items(), key=lambda kv: -kv[1])
                      if g != "all"), flush=True)
    print("  of which other: " + "; ".join(f"{v:.1f} {c}" for v, c in unmatched), flush=True)
    print(f"evacuated to: {', '.join(f'{h} {n}' for h, n in sorted(spread.items()))}", flush=True)
    counts = ha.evacuations(ids)
    twice = [i for i, n in counts.items() if n != 1]
    ha.wait(lambda: (recovery(ha, victim, dead_at) or {}).get("phase") == "done", 60, "the recovery recorded done")
    rec = recovery(ha, victim, dead_at)
    assert rec is not None
    fenced = [e for e in ha.events() if e["kind"] == "fenced" and e.get("victim") == victim and e["at"] >= dead_at]
    fence_seconds = float(fenced[0].get("seconds", 0.0)) if fenced else 0.0
    fenced_at = float(rec["fenced_at"])
    last_issued = max(float(i["issued_at"]) for i in rec["instances"])
    return {
        "instances": count,
        "detection": fenced_at - fence_seconds - dead_at,
        "fencing": fence_seconds,
        "force-down": float(rec["forced_down_at"]) - fenced_at,
        "evacuation": last_issued - float(rec["forced_down_at"]),
        "nova": active_at - last_issued,
        "total": active_at - dead_at,
        "not-exactly-once": float(len(twice)),
    }


def revive(ha: HaCluster, node: str, after: float) -> None:
    ha.power_on(node)
    ha.wait(lambda: (recovery(ha, node, after) or {}).get("unforced") is True, 180, f"{node} un-forced-down")
    ha.lab.wait_compute(node, up=True, timeout=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10,100")
    p.add_argument("--parallel", type=int, default=8, help="the evacuator's evacuate calls in flight")
    p.add_argument(
        "--in-progress", type=int, default=32, help="the evacuator's evacuations in Nova's hands at once (0: no bound)"
    )
    p.add_argument("--boot-batch", type=int, default=25, help="servers per create call while booting")
    p.add_argument("--node-timeout", default="1500ms", help="the cluster's node-timeout (heartbeat silence)")
    p.add_argument("--keep", action="store_true", help="keep the cluster's directory (agent and engine logs)")
    p.add_argument(
        "--computes", type=int, default=2, help="compute hosts: one dies, Nova's scheduler spreads its instances"
    )
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    # SIGTERM (and SIGINT, which a shell's background job ignores) end the run through the
    # `finally` below, so the lab's namespaces, processes and fence gates are removed.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-instanceha-"))
    with NovaLab(computes=args.computes, subnet=4, keep_workdir=args.keep) as lab:
        ha = HaCluster(
            lab, workdir, tag="ihabench", parallel=args.parallel, node_timeout=args.node_timeout,
            in_progress=args.in_progress,
        )
        try:
            t0 = time.monotonic()
            ha.start()
            print(f"lab up (Nova {lab.timings.get('cold_start', 0):.0f} s, cluster {time.monotonic() - t0:.0f} s)")
            for n, size in enumerate(sizes):
                victim = lab.compute_names[n % len(lab.compute_names)]
                began = time.time()
                row = one_run(ha, size, victim, args.boot_batch)
                rows.append(row)
                print(_line(row), flush=True)
                revive(ha, victim, began)
        finally:
            ha.close()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    print()
    for row in rows:
        print(
            f"{int(row['instances'])} instances ACTIVE elsewhere {row['total']:.1f} s after the host died; "
            f"Masakari's defaults wait >= {MASAKARI_FIRST_EVACUATION:.0f} s before the first evacuation "
            f"({MASAKARI_FIRST_EVACUATION / row['total']:.0f}x), NovaEvacuate's monitor alone is "
            f"{NOVAEVACUATE_MONITOR:.0f} s"
        )
    return 1 if any(r["not-exactly-once"] for r in rows) else 0


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _line(row: dict[str, float]) -> str:
    parts = " ".join(f"{k} {row[k]:.2f}s" for k in ("detection", "fencing", "force-down", "evacuation", "nova"))
    wrong = int(row["not-exactly-once"])
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{int(row['instances'])} instances: total {row['total']:.2f}s = {parts}; not exactly once: {wrong}; "
            f"load average {load}")


if __name__ == "__main__":
    sys.exit(main())
