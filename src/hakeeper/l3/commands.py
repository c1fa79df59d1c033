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
    import logging

    from hakeeper.l3.agent import AgentOptions
    from hakeeper.l3.specfile import load_router_spec

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s hakeeper-l3[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    from hakeeper.l3.dhcp import closed_parent

    closed = closed_parent(args.dhcp_dir)
    if closed is not None:
        print(f"hakeeper l3-agent: --dhcp-dir {args.dhcp_dir}: {closed} is not searchable by others: dnsmasq, "
              "which reads its hosts file as 'nobody', could not read it", file=sys.stderr)
        return EXIT_BAD_INPUT
    physical = dict(args.physical or [])
    if args.spec is None:
        # The routers come from the store and may change: every network the node serves needs
        # its --physical mapping, checked as routers arrive.
        if not (args.etcd or args.store):
            print("hakeeper l3-agent: give --spec FILE, or --store/--etcd to follow the routers there",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        opts = AgentOptions(args.node, (), physical, args.netns_prefix, args.state_file, args.garp_master_delay,
                            args.cluster, args.pid_file, args.node_lost_after, args.events_file, args.metrics,
                            dhcp_dir=args.dhcp_dir)
        return _run_agent(args, None, opts)
    spec = load_router_spec(args.spec)
    nodes = tuple(n for n in (args.nodes or "").split(",") if n)
    if args.node not in nodes:
        print(f"hakeeper l3-agent: --node {args.node} is not in --nodes", file=sys.stderr)
        return EXIT_BAD_INPUT
    # The HA network: each project's own (`ha:PROJECT`) where mapped, the shared `ha` otherwise.
    shared_ha = any(f"ha:{r.project}" not in physical for r in spec.routers) or not spec.routers
    needed = ({"ha"} if shared_ha else set()) | {i.subnet for r in spec.routers for i in r.interfaces} | {
        r.gateway.network for r in spec.routers if r.gateway}
    missing = sorted(needed - set(physical))
    if missing:
        print(f"hakeeper l3-agent: no --physical NETWORK=INTERFACE for {', '.join(missing)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    opts = AgentOptions(args.node, nodes, physical, args.netns_prefix, args.state_file, args.garp_master_delay,
                        args.cluster, args.pid_file, events_file=args.events_file, metrics=args.metrics,
                        dhcp_dir=args.dhcp_dir)
    return _run_agent(args, spec, opts)


def _run_agent(args: argparse.Namespace, spec: Any, opts: Any) -> int:
    import asyncio
    import contextlib

    from hakeeper.l3.agent import serve

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
    p.add_argument("--nodes", help="every network node, comma-separated (with --spec)")
    p.add_argument("--spec", metavar="FILE", help="the router spec (YAML); without it, the routers in the store")
    p.add_argument("--physical", action="append", type=_physical, metavar="NETWORK=INTERFACE",
                   help="the node's interface for a network (repeat; 'ha' is the HA network)")
    p.add_argument("--netns-prefix", default="", help="prefix of the router namespaces' names")
    p.add_argument("--state-file", help="JSON file with every router's ha_state on this node")
    p.add_argument("--garp-master-delay", type=float, default=60.0,
                   help="seconds before the second gratuitous ARP burst after a takeover (Neutron: 60)")
    p.add_argument("--pid-file", help="this agent's pid; an agent started with the pid file of a running one "
                   "takes its routers over without a failover (a restart: start the new one, the old one stops)")
    p.add_argument("--node-lost-after", type=float, default=20.0, metavar="SECONDS",
                   help="with the store: a network node whose agent has not reported for this long is lost, "
                   "and its routers get a replica elsewhere (Neutron's agent_down_time)")
    p.add_argument("--events-file", metavar="FILE", help="append each event (transition with its cause, node "
                   "lost or back, dual-active alarm) to FILE as a JSON line")
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics there")
    p.add_argument("--dhcp-dir", default="/run/hakeeper/dhcp", metavar="DIR",
                   help="where this node's dnsmasq instances keep their hosts, lease and pid files")
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
    _register_edits(sub)


# -- changing the routers in the store -------------------------------------------------------------
def _edit(args: argparse.Namespace, edit: Any = None, spec: Any = None, nodes: Any = None) -> int:
    import asyncio

    from hakeeper.l3.routerstore import update

    async def main() -> Any:
        store = _open_store(args)
        try:
            return await update(store, args.cluster, edit=edit, spec=spec, nodes=nodes)
        finally:
            await store.close()

    stored = asyncio.run(main())
    placed = stored.schedule.routers
    for r in stored.spec.routers:
        if getattr(args, "router", None) in (r.id, r.name) or getattr(args, "name", None) == r.name:
            p = placed.get(r.id)
            where = f" on {', '.join(p.nodes)} (VRID {p.vrid}, {p.network.name})" if p else ""
            print(f"router {r.name} ({r.id}){where}")
    return 0


def router_init(args: argparse.Namespace) -> int:
    from hakeeper.l3.specfile import load_router_spec

    spec = load_router_spec(args.spec)
    nodes = tuple(n for n in args.nodes.split(",") if n)
    if not nodes:
        print("hakeeper router init: --nodes lists no node", file=sys.stderr)
        return EXIT_BAD_INPUT
    _edit(args, spec=spec, nodes=nodes)
    print(f"{len(spec.routers)} router(s) on {', '.join(nodes)} in the store")
    return 0


def router_change(args: argparse.Namespace) -> int:
    import uuid

    from hakeeper.l3 import edits

    cmd = args.router_command
    if cmd == "create":
        edit = edits.create(args.id or str(uuid.uuid4()), args.name, args.project)
    elif cmd == "delete":
        edit = edits.delete(args.router)
    elif cmd == "add-interface":
        edit = edits.add_interface(args.router, args.subnet, args.address)
    elif cmd == "remove-interface":
        edit = edits.remove_interface(args.router, args.subnet)
    elif cmd == "set-gateway":
        edit = edits.set_gateway(args.router, args.network, args.address, args.upstream)
    else:
        edit = edits.add_floating_ip(args.router, args.external, args.fixed)
    rc = _edit(args, edit=edit)
    if cmd == "delete":
        print(f"router {args.router} deleted")
    return rc


def _register_edits(sub: Any) -> None:
    i = sub.add_parser("init", help="put a router spec and the network nodes into the store")
    i.add_argument("--spec", required=True, metavar="FILE", help="settings and routers (YAML)")
    i.add_argument("--nodes", required=True, help="the network nodes, comma-separated")
    _store_options(i, required=True)
    i.set_defaults(handler=router_init)
    c = sub.add_parser("create", help="a new router (Neutron: router-create)")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--id", help="its id (default: a new UUID)")
    c.add_argument("--project", default="admin", help="its project: routers of one project share an HA network")
    d = sub.add_parser("delete", help="delete a router")
    ai = sub.add_parser("add-interface", help="an interface on a project subnet (Neutron: router-interface-add)")
    ai.add_argument("--subnet", required=True)
    ai.add_argument("--address", required=True, help="the subnet's gateway address, ADDR/PREFIX")
    ri = sub.add_parser("remove-interface", help="remove the interface on a subnet")
    ri.add_argument("--subnet", required=True)
    g = sub.add_parser("set-gateway", help="the external gateway (Neutron: router-gateway-set)")
    g.add_argument("--network", required=True, help="the external network")
    g.add_argument("--address", required=True, help="the router's address on it, ADDR/PREFIX")
    g.add_argument("--upstream", required=True, help="the next hop on the external network")
    f = sub.add_parser("add-floating-ip", help="a floating IP NAT'd to a fixed address behind the router")
    f.add_argument("--external", required=True)
    f.add_argument("--fixed", required=True)
    for p in (d, ai, ri, g, f):
        p.add_argument("router", metavar="ROUTER", help="router id or name")
    for p in (c, d, ai, ri, g, f):
        _store_options(p, required=True)
        p.set_defaults(handler=router_change)
