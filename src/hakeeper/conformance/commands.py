"""`hakeeper conformance DIR`: run Pacemaker's scheduler regression suite against hakeeper."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hakeeper.conformance.report import render_doc, render_text
from hakeeper.conformance.runner import run_case, tier_figures
from hakeeper.conformance.suite import load_index
from hakeeper.errors import InputError, Problem


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "conformance", help="compare hakeeper's plans with Pacemaker 2.1.5's regression suite",
        description="Run every case of the suite (index.tsv, xml/, summary/) and compare "
                    "hakeeper's Transition Summary with crm_simulate's, whitespace aside. A "
                    "case passes when the lines match exactly; the action-level figure ignores "
                    "reasons and order.")
    p.add_argument("dir", help="the suite, e.g. ../shared/pacemaker-scheduler-2.1.5")
    p.add_argument("--tier", type=int, action="append", default=[],
                   help="only cases of this tier (repeatable)")
    p.add_argument("--max-tier", type=int, help="only cases of this tier and below")
    p.add_argument("--case", action="append", default=[], help="only this case (repeatable)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--failures", action="store_true", help="print the differing lines too")
    p.add_argument("--write-doc", metavar="FILE", help="write the figures as Markdown to FILE")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    cases = load_index(root)
    if args.tier:
        cases = [c for c in cases if c.tier in args.tier]
    if args.max_tier:
        cases = [c for c in cases if c.tier <= args.max_tier]
    if args.case:
        known = {c.name for c in cases}
        unknown = [n for n in args.case if n not in known]
        if unknown:
            raise InputError([Problem(f"no such case: {', '.join(unknown)}", str(root), None,
                                      "--case")])
        cases = [c for c in cases if c.name in args.case]
    results = [run_case(c) for c in cases]
    figures = tier_figures(results)
    if args.json:
        print(json.dumps({"tiers": figures, "cases": [r.as_json() for r in results]}, indent=1))
    else:
        print(render_text(results, figures, args.failures))
    if args.write_doc:
        Path(args.write_doc).write_text(render_doc(results, figures), encoding="utf-8")
    return 0
