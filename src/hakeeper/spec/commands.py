"""`hakeeper validate FILE`: check a native spec, say what is in it and what cannot run here."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hakeeper.errors import InputError, Problem
from hakeeper.spec.loader import spec_from_document
from hakeeper.spec.runnable import unmonitored, unrunnable
from hakeeper.yamlsource import load_yaml


def _validate(args: argparse.Namespace) -> int:
    doc = load_yaml(args.file)
    spec = spec_from_document(doc)
    r = spec.resources
    c = spec.constraints
    print(f"{args.file}: valid: {len(spec.nodes)} nodes, {len(r.primitives)} primitives, "
          f"{len(r.groups)} groups, {len(r.clones)} clones, {len(c.location)} location, "
          f"{len(c.colocation)} colocation, {len(c.order)} order constraints")
    # A valid file can still name agents this host cannot run (an upstart job from an old
    # Pacemaker configuration, an OCF agent not installed): say so for each, with its line.
    problems, notes = [], []
    for check in unrunnable(spec):
        path = ("resources", "primitives", check.index, "agent")
        line, field = doc.line_of(path), ".".join(map(str, path))
        if check.problem is not None:
            message = f"{check.primitive} cannot run on this host: {check.problem}"
            problems.append(Problem(message, args.file, line, field))
        else:
            notes.append(Problem(f"{check.primitive} ({check.agent}): {check.note}", args.file, line, field))
    for index in unmonitored(spec):
        where = ("resources", "primitives", index)
        notes.append(Problem(f"{spec.resources.primitives[index].id} has no monitor operation: hakeeper will "
                             "not notice if it stops running (add {name: monitor, interval: 10s})",
                             args.file, doc.line_of(where), ".".join(map(str, where))))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if problems and args.strict:
        raise InputError(problems)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("validate", help="check a cluster spec (native YAML)")
    p.add_argument("file")
    p.add_argument("--strict", action="store_true",
                   help="primitives that no agent on this host can run are errors (exit status 2)")
    p.set_defaults(handler=_validate)
