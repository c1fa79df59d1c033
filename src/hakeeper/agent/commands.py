"""`hakeeper agent|status|node|resource|config|events|store`: the node agent and operator commands.

Every command reaches the store through --etcd HOST:PORT[,...] (or $HAKEEPER_ETCD) or, for
single-host setups, --store PATH (a `hakeeper store serve` Unix socket, or $HAKEEPER_STORE).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import getpass
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hakeeper.agent import history as hist
from hakeeper.agent import operator as op
from hakeeper.agent import state as st
from hakeeper.agent.heartbeat import DEFAULT_NODE_TIMEOUT
from hakeeper.coord.durable import DEFAULT_DATA_DIR, open_embedded
from hakeeper.coord.etcd import EtcdStore, parse_endpoints
from hakeeper.coord.lease import DEFAULT_LEASE_TTL
from hakeeper.coord.localserver import LocalServer, RemoteStore
from hakeeper.coord.secrets import Redactor, install_log_redaction, mask_spec, refuse_masked
from hakeeper.coord.settings import add_security_args, apply_config, etcd_security
from hakeeper.coord.store import Store, StoreError
from hakeeper.coord.watch import Mirror, follow
from hakeeper.errors import InputError
from hakeeper.spec import ClusterSpec
from hakeeper.spec.crm_render import render_crm
from hakeeper.spec.loader import dump_spec, spec_from_document
from hakeeper.yamlsource import load_yaml

EXIT_UNAVAILABLE = 3


def _store_args(p: argparse.ArgumentParser) -> None:
    # Defaults are read in open_store, so an error can say whether the flag or the variable was wrong.
    p.add_argument(
        "--etcd", help="etcd endpoints HOST:PORT[,HOST:PORT...] ([ADDR]:PORT for IPv6; default $HAKEEPER_ETCD)"
    )
    p.add_argument("--store", help="embedded store socket, single host (default $HAKEEPER_STORE)")
    p.add_argument("--cluster", default=os.environ.get("HAKEEPER_CLUSTER", "hakeeper"), help="key prefix name")
    p.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        help="store request timeout per endpoint, seconds (an agent wants it well under its TTL)",
    )
    add_security_args(p)  # --config, --cacert/--cert/--key, --etcd-user/--etcd-password-file


NO_STORE = (
    "no store given: pass --etcd HOST:PORT[,...] (or set HAKEEPER_ETCD) to use an etcd cluster, "
    "or --store SOCKET (or set HAKEEPER_STORE) to use the embedded store that "
    "`hakeeper store serve --socket SOCKET` runs"
)


_STORES = (("store", "--store", "HAKEEPER_STORE"), ("etcd", "--etcd", "HAKEEPER_ETCD"))


def _store_choice(args: argparse.Namespace) -> tuple[str, str, str] | None:
    """("etcd"|"store", value, the flag or variable it came from): a flag wins over either
    variable, and --store over --etcd."""
    given = [(kind, getattr(args, kind), flag) for kind, flag, _ in _STORES]
    given += [(kind, os.environ.get(variable) or "", variable) for kind, _, variable in _STORES]
    return next(((kind, value, source) for kind, value, source in given if value), None)


def open_store(args: argparse.Namespace) -> Store:
    apply_config(args)  # what no flag or variable gives, from the config file
    choice = _store_choice(args)
    if choice is None:
        raise InputError.at(NO_STORE, file="--etcd/--store")
    kind, value, source = choice
    if kind == "store":
        return RemoteStore(value, timeout=args.timeout)
    return EtcdStore(parse_endpoints(value, source), timeout=args.timeout, security=etcd_security(args))


def _unavailable_hint(args: argparse.Namespace) -> str:
    choice = _store_choice(args)
    if choice is None:
        return ""
    kind, value, source = choice
    if kind == "store":
        return f" (is `hakeeper store serve --socket {value}` running? {source} names the socket)"
    return f" (is etcd running and reachable at {value}? {source} lists its client endpoints)"


def _run(args: argparse.Namespace, body: Callable[[Store, st.Keys], Awaitable[int]]) -> int:
    async def main() -> int:
        store = open_store(args)
        try:
            return await body(store, st.Keys(args.cluster))
        except StoreError as exc:
            message = " ".join(str(exc).split())  # one line, whatever gRPC put in it
            print(f"error: store unavailable: {message}{_unavailable_hint(args)}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        finally:
            await store.close()

    return asyncio.run(main())


def operator_identity() -> str:
    """user@host of whoever runs the command, recorded with each configuration version."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


# ----- agent and store server -----


def _agent(args: argparse.Namespace) -> int:
    from hakeeper.agent.daemon import Agent
    from hakeeper.agent.metrics import Metrics

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format=f"%(asctime)s {args.node} %(name)s %(levelname)s %(message)s",
    )
    # `kill -USR1 <agent>` writes every thread's stack to the log: a stuck agent explains itself.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    metrics = Metrics(args.node)
    if args.metrics:
        metrics.serve(args.metrics)

    async def body(store: Store, keys: st.Keys) -> int:
        agent = Agent(
            store,
            args.node,
            cluster=args.cluster,
            ttl=args.lease_ttl,
            state_dir=args.state_dir,
            metrics=metrics,
            node_timeout=args.node_timeout,
        )
        install_log_redaction(agent.spec)  # no secret parameter's value in the agent's log
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(agent.shutdown()))
        await agent.run()
        return 0

    return _run(args, body)


def _store_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO)

    async def main() -> int:
        # The server claims the path itself: it never removes what it did not create.
        store = open_embedded(None if args.memory else args.data, args.cluster)
        server = LocalServer(args.socket, store)
        try:
            await server.start()
        except BaseException:
            await store.close()
            raise
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"embedded store serving on {args.socket}", flush=True)
        await stop.wait()
        await server.close()
        return 0

    return asyncio.run(main())


# ----- status and events -----


def _status(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        if not args.watch:
            kvs, _ = await store.get_prefix(keys.prefix)
            _print_status({kv.key: kv.value for kv in kvs}, keys, args.json)
            return 0
        mirror = Mirror()
        async for update in follow(store, keys.prefix):
            mirror.apply(update)
            if not args.json:
                print("\033[2J\033[H", end="")
            _print_status(mirror.values, keys, args.json)
        return 0

    return _run(args, body)


def _print_status(values: dict[str, bytes], keys: st.Keys, as_json: bool) -> None:
    view = op.status_view(values, keys, time.time())
    found = st.config_of(values, keys)
    view = Redactor.for_spec(found[1] if found else None).doc(view)  # no secret parameter printed
    print(json.dumps(view, indent=2, sort_keys=True) if as_json else op.render_status(view), flush=True)


def _events(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        kvs, rev = await store.get_prefix(keys.events)
        redact = Redactor.for_spec((await op.current_config(store, keys))[2])  # no secret printed
        for kv in kvs[-args.last :] if args.last > 0 else []:
            _print_event(redact.doc(st.loads(kv.value)), args.json)
        if not kvs:
            # On stderr, so --json output stays a stream of events only.
            print("no events yet; waiting for some" if args.follow else "no events", file=sys.stderr, flush=True)
        if args.follow:
            async for batch in store.watch_prefix(keys.events, rev + 1):
                for e in batch:
                    if e.kind == "put":
                        _print_event(redact.doc(st.loads(e.value)), args.json)
        return 0

    return _run(args, body)


def _print_event(doc: Any, as_json: bool) -> None:
    if not isinstance(doc, dict):
        return
    if as_json:
        print(json.dumps(doc, sort_keys=True), flush=True)
        return
    at = doc.get("at") or 0
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"
    rsc = f" {doc['rsc']}" if doc.get("rsc") else ""
    print(f"{when} {doc.get('node')} {doc.get('kind')}{rsc}: {doc.get('message')}", flush=True)


# ----- configuration, nodes, resources -----


def _config_apply(args: argparse.Namespace) -> int:
    doc = load_yaml(args.file)
    spec = spec_from_document(doc)
    op.check_agents(spec, doc, args.file)
    refuse_masked(spec, args.file)  # placeholders from `config show` are not passwords

    async def body(store: Store, keys: st.Keys) -> int:
        return await _apply(store, keys, spec, args, os.path.abspath(args.file), args.file)

    return _run(args, body)


async def _apply(
    store: Store, keys: st.Keys, spec: ClusterSpec, args: argparse.Namespace, source: str, where: str
) -> int:
    """Preview, confirm what the configuration removes, then compare-and-set it in."""
    raw, version, _ = await op.current_config(store, keys)
    preview = await op.preview(store, keys, spec)
    print(f"Transition this configuration causes (version {version} -> {version + 1}):")
    for line in preview.lines:
        print(f"  {line.strip()}")
    if args.dry_run:
        print("dry run: nothing applied")
        return 0
    if preview.removes and not args.yes:
        removal = preview.removal()
        if not sys.stdin.isatty():
            raise InputError.at(
                f"this configuration removes {removal}; nothing applied: pass --yes to apply it anyway",
                file=where,
            )
        answer = await asyncio.to_thread(input, f"This removes {removal}. Apply it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing applied")
            return 1
    if not await op.write_config(store, keys, raw, spec, version, source, operator_identity()):
        print("error: the configuration changed while applying; nothing applied, try again", file=sys.stderr)
        return 1
    print(f"applied configuration version {version + 1}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        spec = await _version_spec(store, keys, args.version)
        spec = spec if args.show_secrets else mask_spec(spec)
        print(render_crm(spec) if args.crm else dump_spec(spec), end="")
        return 0

    return _run(args, body)


async def _version_spec(store: Store, keys: st.Keys, version: int | None) -> ClusterSpec:
    """The configuration in the store (`version` None) or one of its kept versions."""
    _, current, spec = await op.current_config(store, keys)
    if spec is None:
        raise InputError.at("no configuration applied yet (hakeeper config apply FILE)", file="the store")
    if version is None or version == current:
        return spec
    kv = await store.get(hist.history_key(keys.prefix, version))
    found = hist.version_of(kv.value) if kv is not None else None
    if found is None:
        kvs, _ = await store.get_prefix(hist.history_prefix(keys.prefix))
        kept = [str(v.version) for v in hist.versions({k.key: k.value for k in kvs}, keys.prefix)]
        raise op.unknown("version", str(version), [*kept, str(current)], "the configuration history")
    return ClusterSpec.model_validate(found.spec)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _config_history(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        kvs, _ = await store.get_prefix(hist.history_prefix(keys.prefix))
        values = {kv.key: kv.value for kv in kvs}
        current = await store.get(keys.config)
        if current is not None:
            values[keys.config] = current.value
        entries = hist.versions(values, keys.prefix)
        if args.json:
            print(json.dumps([{k: v for k, v in vars(e).items() if k != "spec"} for e in entries], indent=2))
        elif not entries:
            print("no configuration applied yet", file=sys.stderr)
        else:
            print(hist.render_history(entries, _when))
        return 0

    return _run(args, body)


def _config_rollback(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        spec = await _version_spec(store, keys, args.version)
        op.check_agents(spec, None, f"configuration version {args.version}")
        where = f"configuration version {args.version}"
        return await _apply(store, keys, spec, args, f"rollback to version {args.version}", where)

    return _run(args, body)


def _node(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        _, _, spec = await op.current_config(store, keys)
        if spec is None:
            raise InputError.at("no configuration applied yet (hakeeper config apply FILE)", file="the store")
        if args.node not in {n.name for n in spec.nodes}:
            raise op.unknown("node", args.node, (n.name for n in spec.nodes), "the configuration")
        await store.put(keys.node(args.node), st.dumps({"standby": args.action == "standby", "at": time.time()}))
        print(f"{args.node}: {args.action}")
        return 0

    return _run(args, body)


def _ticket(args: argparse.Namespace) -> int:
    """Grant, revoke, put in standby or activate a ticket (crm_ticket's -g/-r/-s/-a)."""

    async def body(store: Store, keys: st.Keys) -> int:
        _, _, spec = await op.current_config(store, keys)
        held, _ = await store.get_prefix(keys.tickets)
        # Known: named by a ticket constraint, or already in the store (granted or revoked before).
        known = {t.ticket for t in spec.constraints.ticket} if spec is not None else set()
        known |= {kv.key[len(keys.tickets) :] for kv in held}
        if args.ticket not in known:
            raise op.unknown("ticket", args.ticket, known, "the configuration's ticket constraints")
        key = keys.ticket(args.ticket)
        old = st.loads(kv.value if (kv := await store.get(key)) is not None else None) or {}
        doc = {"granted": bool(old.get("granted")), "standby": bool(old.get("standby"))}
        if args.action == "grant":
            doc.update(granted=True, standby=False)
        elif args.action == "revoke":
            doc.update(granted=False, standby=False)
        else:
            doc["standby"] = args.action == "standby"
        await store.put(key, st.dumps({**doc, "at": time.time()}))
        print(f"{args.ticket}: {args.action}")
        return 0

    return _run(args, body)


def _resource(args: argparse.Namespace) -> int:
    async def body(store: Store, keys: st.Keys) -> int:
        rsc, node, src = args.resource, args.node, f"hakeeper resource {args.action}"
        by = operator_identity()
        if args.action in ("move", "ban") and node is None:
            raise InputError.at(f"{args.action} needs a node: hakeeper resource {args.action} RESOURCE NODE",
                                file="command line", field="node")
        if args.action not in ("move", "ban", "cleanup") and node is not None:
            raise InputError.at(f"{args.action} takes no node (given {node!r})", file="command line", field="node")
        if args.action == "move":
            version = await op.edit_config(store, keys, op.prefer(rsc, node), src, by)
        elif args.action == "ban":
            version = await op.edit_config(store, keys, op.ban(rsc, node), src, by)
        elif args.action == "clear":
            version = await op.edit_config(store, keys, op.clear(rsc), src, by)
        elif args.action == "cleanup":
            nodes = await op.cleanup(store, keys, rsc, node)
            print(f"{rsc}: cleaned up on {', '.join(nodes) or 'no node'}")
            return 0
        else:
            return await _restart(store, keys, rsc, args.wait, by)
        print(f"{rsc}: {args.action} applied as configuration version {version}")
        return 0

    return _run(args, body)


async def _restart(store: Store, keys: st.Keys, rsc: str, wait: float, by: str) -> int:
    _, _, spec = await op.current_config(store, keys)
    original = None
    if spec is not None:
        original = next((x.meta.target_role for x in op.all_resources(spec) if x.id == rsc), None)
    await op.edit_config(store, keys, op.target_role(rsc, "Stopped"), "hakeeper resource restart", by)
    deadline = time.monotonic() + wait
    members = _members_of(spec, rsc)
    while time.monotonic() < deadline:
        kvs, _ = await store.get_prefix(keys.status)
        if not any(kv.key.rsplit("/", 1)[-1] in members for kv in kvs):
            break
        await asyncio.sleep(0.2)
    else:
        print(f"warning: {rsc} did not stop within {wait:g}s; starting it again anyway", file=sys.stderr)
    await op.edit_config(store, keys, op.target_role(rsc, original), "hakeeper resource restart", by)
    print(f"{rsc}: restarted")
    return 0


def _members_of(spec: Any, rsc: str) -> set[str]:
    if spec is None:
        return {rsc}
    for g in spec.resources.groups:
        if g.id == rsc:
            return set(g.members)
    return {rsc}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("agent", help="run the node agent (membership, monitors, plan execution)")
    _store_args(p)
    p.add_argument("--node", required=True, help="this node's name, as in the configuration")
    p.add_argument(
        "--lease-ttl",
        type=int,
        default=DEFAULT_LEASE_TTL,
        help="membership lease TTL, seconds: a node that cannot refresh it for 75%% of it stops its resources, "
        "so it must outlast an etcd raft election (default %(default)s; 8 or more with etcd's default timings)",
    )
    p.add_argument("--state-dir", default="/run/hakeeper", help="pidfiles and OCF state (per node below it)")
    p.add_argument(
        "--node-timeout",
        type=float,
        default=DEFAULT_NODE_TIMEOUT,
        help="the leader declares a node failed when its heartbeat is silent this long, seconds "
        "(only with stonith enabled; 0: lease expiry only)",
    )
    p.add_argument("--metrics", help="serve Prometheus metrics on HOST:PORT")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_agent)

    p = subparsers.add_parser("store", help="the embedded store for single-host clusters")
    sub = p.add_subparsers(dest="store_command", required=True)
    s = sub.add_parser("serve", help="serve an embedded store on a Unix socket")
    s.add_argument("--socket", required=True)
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--data", default=DEFAULT_DATA_DIR,
        help=f"keep the store on disk in this directory (default {DEFAULT_DATA_DIR})",
    )
    where.add_argument(
        "--memory", action="store_true",
        help="keep the store in memory only: a restart loses it (tests and demos)",
    )
    s.add_argument("--cluster", default=os.environ.get("HAKEEPER_CLUSTER", "hakeeper"),
                   help="the cluster name recorded in the data file (another cluster's file is refused)")
    s.set_defaults(handler=_store_serve)

    p = subparsers.add_parser("status", help="nodes, resources, failures and the leader (like crm_mon)")
    _store_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="print again on every change")
    p.set_defaults(handler=_status)

    p = subparsers.add_parser("events", help="what happened, when and why")
    _store_args(p)
    p.add_argument("--last", type=int, default=50)
    p.add_argument("--follow", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_events)

    p = subparsers.add_parser("config", help="the cluster configuration in the store")
    sub = p.add_subparsers(dest="config_command", required=True)
    a = sub.add_parser("apply", help="validate a spec, show the transition it causes, apply it atomically")
    _store_args(a)
    a.add_argument("file")
    a.add_argument("--dry-run", action="store_true", help="validate and show the transition only")
    a.add_argument("--yes", action="store_true", help="apply even when it removes resources or nodes (no question)")
    a.set_defaults(handler=_config_apply)
    a = sub.add_parser("show", help="print the configuration in the store (hakeeper YAML, or crm shell with --crm)")
    _store_args(a)
    a.add_argument("--crm", action="store_true", help="crm shell syntax, as `crm configure show` prints it")
    a.add_argument("--version", type=int, help="an earlier version kept in the history (see config history)")
    a.add_argument("--show-secrets", action="store_true", help="print secret parameters' values (masked otherwise)")
    a.set_defaults(handler=_config_show)
    a = sub.add_parser("history", help="the configuration's versions: when, by whom, what changed")
    _store_args(a)
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=_config_history)
    a = sub.add_parser("rollback", help="apply an earlier version again (same preview and confirmation as apply)")
    _store_args(a)
    a.add_argument("version", type=int, help="the version to go back to (see config history)")
    a.add_argument("--dry-run", action="store_true", help="show the transition only")
    a.add_argument("--yes", action="store_true", help="apply even when it removes resources or nodes (no question)")
    a.set_defaults(handler=_config_rollback)

    p = subparsers.add_parser("node", help="put a node in standby or back online")
    _store_args(p)
    p.add_argument("action", choices=["standby", "online"])
    p.add_argument("node")
    p.set_defaults(handler=_node)

    p = subparsers.add_parser("ticket", help="grant, revoke, standby or activate a ticket (multi-site)")
    _store_args(p)
    p.add_argument("action", choices=["grant", "revoke", "standby", "activate"])
    p.add_argument("ticket")
    p.set_defaults(handler=_ticket)

    p = subparsers.add_parser("resource", help="move, ban, clear, cleanup or restart a resource")
    _store_args(p)
    p.add_argument("action", choices=["move", "ban", "clear", "cleanup", "restart"])
    p.add_argument("resource")
    p.add_argument("node", nargs="?")
    p.add_argument("--wait", type=float, default=60.0, help="restart: how long to wait for the stop")
    p.set_defaults(handler=_resource)
