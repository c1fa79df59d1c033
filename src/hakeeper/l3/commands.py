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


def _physical(text: str) -> tuple[str, str]:
    network, sep, dev = text.partition("=")
    if not sep or not network or not dev:
        raise argparse.ArgumentTypeError(f"{text!r}: want NETWORK=INTERFACE (the HA network is 'ha')")
    return network, dev


def l3_agent(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging

    from hakeeper.l3.agent import AgentOptions, serve
    from hakeeper.l3.specfile import load_router_spec

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s hakeeper-l3[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    spec = load_router_spec(args.spec)
    nodes = tuple(n for n in args.nodes.split(",") if n)
    if args.node not in nodes:
        print(f"hakeeper l3-agent: --node {args.node} is not in --nodes", file=sys.stderr)
        return EXIT_BAD_INPUT
    physical = dict(args.physical or [])
    # The HA network: each project's own (`ha:PROJECT`) where mapped, the shared `ha` otherwise.
    shared_ha = any(f"ha:{r.project}" not in physical for r in spec.routers) or not spec.routers
    needed = ({"ha"} if shared_ha else set()) | {i.subnet for r in spec.routers for i in r.interfaces} | {
        r.gateway.network for r in spec.routers if r.gateway}
    missing = sorted(needed - set(physical))
    if missing:
        print(f"hakeeper l3-agent: no --physical NETWORK=INTERFACE for {', '.join(missing)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    opts = AgentOptions(args.node, nodes, physical, args.netns_prefix, args.state_file, args.garp_master_delay,
                        args.cluster)

    async def main() -> None:
        store = _open_store(args) if (args.etcd or args.store) else None
        try:
            await serve(spec, opts, store)
        finally:
            if store is not None:
                await store.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def _open_store(args: argparse.Namespace) -> Any:
    from hakeeper.agent.commands import open_store

    return open_store(args)


def _store_options(p: argparse.ArgumentParser, required: bool) -> None:
    need = "" if required else " (optional: without it, states go to --state-file only)"
    p.add_argument("--etcd", default=os.environ.get("HAKEEPER_ETCD"), help="etcd endpoints HOST:PORT[,...]" + need)
    p.add_argument("--store", default=os.environ.get("HAKEEPER_STORE"), help="embedded store socket" + need)
    p.add_argument("--cluster", default=os.environ.get("HAKEEPER_CLUSTER", "hakeeper"), help="key prefix name")
    p.add_argument("--timeout", type=float, default=2.0, help="store request timeout, seconds")


async def _reports(args: argparse.Namespace) -> list[Any]:
    from hakeeper.l3.hosting import Report, report_key

    store = _open_store(args)
    try:
        kvs, _ = await store.get_prefix(report_key(args.cluster))
    finally:
        await store.close()
    return [Report.decode(kv.value) for kv in kvs]


def list_hosting(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import time

    from hakeeper.l3.hosting import hosting, hosting_table

    rows = hosting(asyncio.run(_reports(args)), args.router, time.time())
    if not rows:
        print(f"hakeeper router list-hosting: no network node reports router {args.router}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{"id": r.id, **r.as_json()} for r in rows], indent=1))
    else:
        sys.stdout.write(hosting_table(rows))
    return 0


def list_routers(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import time

    from hakeeper.l3.hosting import summary, table

    routers = summary(asyncio.run(_reports(args)), time.time())
    if args.json:
        print(json.dumps([{"id": r.id, "name": r.name, "active": list(r.active), "replicas": r.replicas}
                          for r in routers], indent=1))
    else:
        sys.stdout.write(table(["id", "name", "active", "replicas"],
                               [[r.id, r.name, ",".join(r.active) or "-", str(r.replicas)] for r in routers]))
    return 0


def register(subparsers: Any) -> None:
    _register_import(subparsers)
    p = subparsers.add_parser("l3-agent", help="serve every HA router scheduled on this network node")
    p.add_argument("--node", required=True, help="this network node's name")
    p.add_argument("--nodes", required=True, help="every network node, comma-separated")
    p.add_argument("--spec", required=True, metavar="FILE", help="the router spec (YAML)")
    p.add_argument("--physical", action="append", type=_physical, metavar="NETWORK=INTERFACE",
                   help="the node's interface for a network (repeat; 'ha' is the HA network)")
    p.add_argument("--netns-prefix", default="", help="prefix of the router namespaces' names")
    p.add_argument("--state-file", help="JSON file with every router's ha_state on this node")
    p.add_argument("--garp-master-delay", type=float, default=60.0,
                   help="seconds before the second gratuitous ARP burst after a takeover (Neutron: 60)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _store_options(p, required=False)
    p.set_defaults(handler=l3_agent)
    r = subparsers.add_parser("router", help="HA routers: which network nodes host them, and their states")
    sub = r.add_subparsers(dest="router_command", required=True)
    h = sub.add_parser("list-hosting", help="Neutron's l3-agent-list-hosting-router table")
    h.add_argument("router", metavar="ROUTER", help="router id or name")
    h.add_argument("--json", action="store_true")
    _store_options(h, required=True)
    h.set_defaults(handler=list_hosting)
    ls = sub.add_parser("list", help="every router, its active node and its alive replicas")
    ls.add_argument("--json", action="store_true")
    _store_options(ls, required=True)
    ls.set_defaults(handler=list_routers)
