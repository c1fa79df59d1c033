"""`hakeeper validate FILE`: check a native spec and say what is in it."""

from __future__ import annotations

import argparse
from typing import Any

from hakeeper.spec.loader import load_spec


def _validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)
    r = spec.resources
    c = spec.constraints
    print(f"{args.file}: valid: {len(spec.nodes)} nodes, {len(r.primitives)} primitives, "
          f"{len(r.groups)} groups, {len(r.clones)} clones, {len(c.location)} location, "
          f"{len(c.colocation)} colocation, {len(c.order)} order constraints")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("validate", help="check a cluster spec (native YAML)")
    p.add_argument("file")
    p.set_defaults(handler=_validate)
