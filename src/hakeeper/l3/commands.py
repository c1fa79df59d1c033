"""`hakeeper import neutron`, `hakeeper router ...` and `hakeeper l3-agent`.

`import` belongs to the importers part (`hakeeper import KIND FILE`); neutron joins it as one more
KIND with its own options (`--neutron-conf`, `--l3-agent-ini`) and is dispatched here, as chef-env
is by the openstack part.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from hakeeper.errors import EXIT_BAD_INPUT

NEUTRON_HELP = "neutron: L3 HA settings from neutron.conf (--neutron-conf) and l3_agent.ini (--l3-agent-ini)"


def _write_private(path: str, text: str) -> None:
    """The settings hold the VRRP password: the file is created 0600, then renamed into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def import_neutron(args: argparse.Namespace) -> int:
    from hakeeper.l3.model import RouterSpec
    from hakeeper.l3.neutron import read_neutron
    from hakeeper.l3.specfile import dump_router_spec

    if not args.neutron_conf:
        print("hakeeper import neutron: --neutron-conf FILE is required", file=sys.stderr)
        return EXIT_BAD_INPUT
    imported = read_neutron(args.neutron_conf, args.l3_agent_ini)
    for w in imported.warnings:
        print(f"warning: {w}", file=sys.stderr)
    text = dump_router_spec(RouterSpec(settings=imported.settings))
    if args.output:
        _write_private(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _register_import(subparsers: Any) -> None:
    imp = subparsers.choices.get("import")
    original = None
    if imp is None:
        imp = subparsers.add_parser("import", help="import a configuration from another tool")
        imp.add_argument("kind", choices=["neutron"], help=NEUTRON_HELP)
        imp.add_argument("-o", "--output", help="write here (default: standard output)")
    else:
        kind = next(a for a in imp._actions if a.dest == "kind")  # argparse keeps actions only here
        kind.choices = [*(kind.choices or []), "neutron"]
        kind.help = f"{kind.help}; {NEUTRON_HELP}"
        original = imp.get_default("handler")
        # neutron takes its files as options: the FILE the other kinds need becomes optional here
        # and is demanded in dispatch for them.
        for action in imp._actions:
            if action.dest == "file":
                action.nargs = "?"
                action.default = None
    imp.add_argument("--neutron-conf", metavar="FILE", help="neutron: neutron.conf")
    imp.add_argument("--l3-agent-ini", metavar="FILE", help="neutron: l3_agent.ini")

    def dispatch(args: argparse.Namespace) -> int:
        if args.kind == "neutron":
            if getattr(args, "file", None):
                print("hakeeper import neutron: give the files as --neutron-conf/--l3-agent-ini", file=sys.stderr)
                return EXIT_BAD_INPUT
            return import_neutron(args)
        if args.neutron_conf or args.l3_agent_ini:
            print("hakeeper import: --neutron-conf/--l3-agent-ini belong to neutron", file=sys.stderr)
            return EXIT_BAD_INPUT
        if getattr(args, "file", None) is None:
            print(f"hakeeper import {args.kind}: FILE is required", file=sys.stderr)
            return EXIT_BAD_INPUT
        if original is None:
            return EXIT_BAD_INPUT
        return int(original(args))

    imp.set_defaults(handler=dispatch)


def register(subparsers: Any) -> None:
    _register_import(subparsers)
