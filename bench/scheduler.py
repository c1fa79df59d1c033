"""Scheduler benchmark: hakeeper against Pacemaker 2.1.5's crm_simulate on the same CIBs.

    PYTHONPATH=src python3 bench/scheduler.py                  # 3x100 and 16x1000 (a few minutes)
    PYTHONPATH=src python3 bench/scheduler.py --large          # also 32x5000 and 64x10000
    PYTHONPATH=src python3 bench/scheduler.py --sizes 64x10000 --situations node-failure --keep /tmp/cibs

For each size (nodes x primitives) and situation ("initial": nothing has run yet; "node-failure":
everything runs with a full status history and one node is lost) it renders one CIB
(`conformance.scalegen`) and measures, each in a child process of its own:

- crm_simulate -R (decisions only): wall time and peak RSS (ru_maxrss of the child);
- hakeeper: CIB import + schedule, and schedule alone (timed inside the child, interpreter start-up
  excluded), with the child's peak RSS; with --trace, a second run gives the Python heap peak of
  schedule alone (tracemalloc, which slows it, so its time is not used).

Both are bounded by --timeout (default 300 s); a run past it is reported as not finished. The last
column is the share of primitives both engines place on the same nodes.

With --history running, the node-failure CIB keeps only the history of what runs (no probe results
for the resources a node does not run), a status about a tenth of the full one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hakeeper.conformance.cibxml import render_cib
from hakeeper.conformance.crmsim import (
    CrmSimulateError,
    Placement,
    crm_simulate_command,
    placement_from_result,
)
from hakeeper.conformance.differential import normalise
from hakeeper.conformance.measured import run_measured
from hakeeper.conformance.scalegen import SITUATIONS, scale_cluster

DEFAULT_SIZES = "3x100,16x1000"
LARGE_SIZES = "32x5000,64x10000"


def _child(cib: Path, out: Path, trace: bool) -> None:
    """Runs in the measured child: import and schedule one CIB, write the figures as JSON."""
    importer = importlib.import_module("hakeeper.importers.cib")
    scheduler = importlib.import_module("hakeeper.placement")
    start = time.perf_counter()
    spec = importer.read_cib(cib)
    imported = time.perf_counter()
    if trace:
        tracemalloc.start()
    plan = scheduler.schedule_cib(spec, spec.state)
    done = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    out.write_text(json.dumps({
        "import_s": imported - start, "schedule_s": done - imported, "traced_peak": traced,
        "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "placement": normalise(plan.placement),
    }))


@dataclass
class Row:
    size: str
    situation: str
    cib_mib: float
    crm_s: float | None = None
    crm_kib: int | None = None
    crm_note: str = ""
    ours_s: float | None = None  # import + schedule
    sched_s: float | None = None
    ours_kib: int | None = None
    sched_traced: int | None = None
    ours_note: str = ""
    agree: float | None = None


def _ours(cib: Path, work: Path, timeout: float, trace: bool) -> tuple[dict[str, Any] | None, str]:
    out = work / ("trace.json" if trace else "ours.json")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(cib), "--out", str(out)]
    if trace:
        cmd.append("--trace")
    run = run_measured(cmd, timeout=timeout, env=dict(os.environ))
    if run.timed_out:
        return None, f"did not finish in {timeout:g} s"
    if run.returncode != 0:
        last = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return None, f"failed: {last[0][:100]}"
    figures: dict[str, Any] = json.loads(out.read_text())
    figures["child_rss_kib"] = run.max_rss_kib
    return figures, ""


def _crm(cib: Path, work: Path, timeout: float, primitives: list[str]) -> tuple[Placement | None, Row]:
    row = Row("", "", 0.0)
    shadow = work / "shadow"
    shadow.mkdir(exist_ok=True)
    run = run_measured(crm_simulate_command(cib), timeout=timeout,
                       env={**os.environ, "LC_ALL": "C", "CIB_shadow_dir": str(shadow)})
    if run.timed_out:
        row.crm_note = f"did not finish in {timeout:g} s"
        row.crm_kib = run.max_rss_kib  # reached when it was stopped
        return None, row
    row.crm_s, row.crm_kib = run.seconds, run.max_rss_kib
    if run.returncode != 0:
        row.crm_note = f"exit {run.returncode}"
        return None, row
    try:
        return placement_from_result(run.stdout, primitives).placement, row
    except CrmSimulateError as exc:
        row.crm_note = str(exc)[:60]
        return None, row


def measure(nodes: int, prims: int, situation: str, *, keep: Path | None, timeout: float, trace: bool,
            skip_crm: bool, full_history: bool = True) -> Row:
    with tempfile.TemporaryDirectory(prefix="hakeeper-bench-") as tmp:
        work = Path(tmp)
        probes = full_history and situation == "node-failure"
        short = "" if probes or situation != "node-failure" else "-running-only"
        cib = (keep or work) / f"{nodes}x{prims}-{situation}{short}.xml"
        spec = scale_cluster(nodes, prims, situation)
        primitives = [p.id for p in spec.resources.primitives]
        if not cib.exists():
            cib.parent.mkdir(parents=True, exist_ok=True)
            cib.write_bytes(render_cib(spec, probe_everywhere=probes))
        row = Row(f"{nodes}x{prims}", situation + short, cib.stat().st_size / 2**20)
        theirs: Placement | None = None
        if not skip_crm:
            theirs, crm = _crm(cib, work, timeout, primitives)
            row.crm_s, row.crm_kib, row.crm_note = crm.crm_s, crm.crm_kib, crm.crm_note
        else:
            row.crm_note = "skipped"
        ours, note = _ours(cib, work, timeout, trace=False)
        row.ours_note = note
        if ours is not None:
            row.ours_s = ours["import_s"] + ours["schedule_s"]
            row.sched_s = ours["schedule_s"]
            row.ours_kib = ours["child_rss_kib"]
            if theirs is not None:
                mine = normalise(ours["placement"], primitives)
                same = sum(mine.get(p, []) == theirs.get(p, []) for p in primitives)
                row.agree = same / len(primitives)
        if trace and ours is not None:
            traced, _ = _ours(cib, work, timeout, trace=True)
            row.sched_traced = traced["traced_peak"] if traced else None
        return row


def _s(value: float | None, note: str) -> str:
    return f"{value:.2f} s" if value is not None and not note else (note or "-")


def _mib(kib: int | None, stopped: bool = False) -> str:
    if kib is None:
        return "-"
    return f"{'>' if stopped else ''}{kib / 1024:.0f} MiB"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a is not None and b else "-"


def print_table(rows: list[Row]) -> None:
    header = ["size", "situation", "CIB", "crm_simulate", "crm RSS", "hakeeper imp+sched", "sched only",
              "hakeeper RSS", "sched heap", "time ratio", "mem ratio", "same placement"]
    table = [header]
    for r in rows:
        table.append([
            r.size, r.situation, f"{r.cib_mib:.1f} MiB", _s(r.crm_s, r.crm_note),
            _mib(r.crm_kib, "did not finish" in r.crm_note),
            _s(r.ours_s, r.ours_note), _s(r.sched_s, r.ours_note), _mib(r.ours_kib),
            f"{r.sched_traced / 2**20:.0f} MiB" if r.sched_traced is not None else "-",
            _ratio(r.crm_s, r.ours_s) if not r.crm_note else "-",
            _ratio(r.crm_kib, r.ours_kib) if not r.crm_note else "-",
            f"{100 * r.agree:.1f}%" if r.agree is not None else "-",
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"NODESxPRIMITIVES,... (default {DEFAULT_SIZES})")
    parser.add_argument("--large", action="store_true", help=f"add {LARGE_SIZES}")
    parser.add_argument("--situations", default=",".join(SITUATIONS))
    parser.add_argument("--timeout", type=float, default=300.0, help="per run, seconds (default 300)")
    parser.add_argument("--trace", action="store_true", help="also measure schedule's heap peak (tracemalloc)")
    parser.add_argument("--no-crm-simulate", action="store_true", help="measure hakeeper only")
    parser.add_argument("--keep", type=Path, help="directory to keep (and reuse) the generated CIBs")
    parser.add_argument("--history", choices=("full", "running"), default="full",
                        help="node-failure status: probe results everywhere (full, default) or only the "
                             "history of what runs")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.out, args.trace)
        return 0
    sizes = args.sizes.split(",") + (LARGE_SIZES.split(",") if args.large else [])
    print(f"# {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}")
    rows: list[Row] = []
    for size in sizes:
        nodes, prims = (int(x) for x in size.lower().split("x"))
        for situation in args.situations.split(","):
            row = measure(nodes, prims, situation, keep=args.keep, timeout=args.timeout, trace=args.trace,
                          skip_crm=args.no_crm_simulate, full_history=args.history == "full")
            rows.append(row)
            print(f"# {row.size} {situation}: crm_simulate {_s(row.crm_s, row.crm_note)}, "
                  f"hakeeper {_s(row.ours_s, row.ours_note)}", flush=True)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
