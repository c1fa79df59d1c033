"""Commands of the Ceph part (issue 15).

    hakeeper ceph plan PROFILE [--json]     what apply would change, per host (nothing: "up to date")
    hakeeper ceph apply PROFILE             pools, cephx users, keyrings, configs, libvirt secret
    hakeeper ceph verify PROFILE [--json]   each service's identity exercised for real

PROFILE is a controller profile with a `storage:` section (hakeeper.ceph.model). Exit status: 0
done / nothing to do / every check passed; 1 a host failed or a check failed; 2 bad input
(the profile, an unreachable cluster, a value Ceph refused).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict
from typing import Any

from hakeeper.errors import InputError


def _load(args: argparse.Namespace) -> tuple[Any, Any, str, bool]:
    from hakeeper.ceph.model import load_wiring
    from hakeeper.ceph.observe import admin_for, secret_uuid

    wiring = load_wiring(args.profile)
    admin = admin_for(wiring)
    known = secret_uuid(wiring.state)
    return wiring, admin, known or str(uuid.uuid4()), known is None


def _plan(args: argparse.Namespace) -> int:
    from hakeeper.ceph.apply import describe_plan
    from hakeeper.ceph.observe import survey

    wiring, admin, secret, fresh = _load(args)
    # Apply makes the UUID; until then the plan names it by what it will be, not by a throwaway value.
    found = survey(wiring, admin, "NEW-UUID" if fresh else secret)
    if args.json:
        changes = [{"host": c.host, "kind": type(c).__name__, "change": c.describe()} for c in found.plan.changes]
        print(json.dumps({"changes": changes, "notes": [list(n) for n in found.plan.notes],
                          "secret_uuid": None if fresh else secret}, indent=2))
        return 0
    if fresh:
        print(f"state: the libvirt secret's UUID (NEW-UUID below) will be made and kept in {wiring.state}")
    lines = describe_plan(found.plan)
    print("\n".join(lines) if found.plan.changes else "\n".join(["up to date", *lines]))
    return 0


def _apply(args: argparse.Namespace) -> int:
    from hakeeper.ceph.apply import apply

    wiring, admin, secret, fresh = _load(args)
    outcome = apply(wiring, admin, secret, record_uuid=fresh)
    for line in outcome.applied:
        print(line)
    if not outcome.applied:
        print("up to date")
    for host, note in outcome.notes:
        print(f"note: {host}: {note}")
    for host, why in outcome.failed.items():
        print(f"error: {host}: nothing changed on this host: {why}", file=sys.stderr)
    return 1 if outcome.failed else 0


def _verify(args: argparse.Namespace) -> int:
    from hakeeper.ceph.verify import verify

    wiring, admin, secret, fresh = _load(args)
    if fresh:
        raise InputError.at("no libvirt secret UUID recorded yet: run hakeeper ceph apply first",
                            file=wiring.state, field="storage.state")
    checks = verify(wiring, admin, secret)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            print(c.line())
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ceph", help="Ceph RBD for Glance, Cinder and Nova: plan, apply, verify")
    sub = parser.add_subparsers(dest="ceph_command", metavar="COMMAND", required=True)
    for name, handler, text in (
        ("plan", _plan, "what apply would change, per host"),
        ("apply", _apply, "create pools and users, write keyrings and configs, define the libvirt secret"),
        ("verify", _verify, "exercise each service's cephx identity and check keyrings and UUIDs"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("profile", help="controller profile with a storage: section")
        if name != "apply":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(handler=handler)
