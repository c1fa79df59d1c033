"""The `hakeeper` command. Each part of hakeeper registers its own subcommands.

A part provides `register(subparsers)` in its `commands` module; the handler it sets with
`set_defaults(handler=...)` takes the parsed arguments and returns an exit status. Bad operator
input surfaces as InputError and becomes a message on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hakeeper import __version__
from hakeeper.errors import EXIT_BAD_INPUT, InputError

# One line per part; a part's module defines register(subparsers).
COMMAND_MODULES: list[str] = [
    "hakeeper.spec.commands",
    "hakeeper.vrrp.commands",
    "hakeeper.importers.commands",
    "hakeeper.placement.commands",
    "hakeeper.conformance.commands",
    "hakeeper.openstack.commands",
    "hakeeper.agent.commands",
    "hakeeper.l3.commands",
    "hakeeper.galera.commands",
    "hakeeper.backup.commands",
    "hakeeper.rabbitmq.commands",
    "hakeeper.instanceha.commands",
    "hakeeper.ceph.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hakeeper",
        description="High availability for OpenStack-style control planes.",
    )
    parser.add_argument("--version", action="version", version=f"hakeeper {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(handler(args) or 0)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
