"""`hakeeper recovery list|show|retry` (the operator's view of instance recoveries) and
`hakeeper instanceha engine` (the evacuation engine; the `instanceha:evacuator` primitive runs it)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

from hakeeper.agent import operator as op
from hakeeper.agent import state as st
from hakeeper.agent.commands import _run, _store_args, open_store
from hakeeper.coord.store import Compare, Put, Store
from hakeeper.errors import InputError
from hakeeper.instanceha import recovery as rc
from hakeeper.instanceha import view
from hakeeper.instanceha.engine import Engine, Options, read_recoveries, recovery_key
from hakeeper.instanceha.model import Recovery, Settings
from hakeeper.instanceha.nova import Nova, NovaError, Service


async def _services(params: dict[str, str] | None, hosts: list[str]) -> dict[str, Service | str]:
    """Nova's record of each host's nova-compute, or why Nova could not tell (one line each)."""
    if not params or not hosts or not os.path.exists(params.get("clouds_yaml", "")):
        return {}

    def ask() -> dict[str, Service | str]:
        out: dict[str, Service | str] = {}
        try:
            nova = Nova.from_clouds_yaml(params["clouds_yaml"], params.get("cloud", ""), timeout=5.0)
        except NovaError as exc:
            return dict.fromkeys(hosts, exc.reason)
        for host in hosts:
            try:
                out[host] = nova.service(host)
            except NovaError as exc:
                out[host] = exc.reason
                if "does not answer" in exc.reason:  # the rest would wait as long for nothing
                    return {**dict.fromkeys(hosts, exc.reason), **out}
        return out

    return await asyncio.to_thread(ask)


async def _list(args: argparse.Namespace, store: Store, keys: st.Keys) -> int:
    kvs, _ = await store.get_prefix(keys.prefix)
    values = {kv.key: kv.value for kv in kvs}
    words = op.status_view(values, keys, time.time())["nodes"]
    params = view.evacuator_params(values, keys)
    ask_nova = getattr(args, "nova", True)
    services = await _services(params, [h for _, h in view.computes(params)]) if ask_nova else {}
    section = view.compute_section(values, keys, words, services)
    print(json.dumps(section, indent=2) if args.json else view.render(section))
    return 0


def _pick(recs: dict[rc.Key, tuple[Recovery, int]], node: str, failure: int | None) -> tuple[Recovery, int]:
    mine = sorted(
        (v for (n, f), v in recs.items() if n == node and (failure is None or f == failure)), key=lambda v: v[0].failure
    )
    if not mine:
        raise InputError.at(f"no recovery of {node}" + (f" for failure {failure}" if failure else ""), file="NODE")
    return mine[-1]


async def _show(args: argparse.Namespace, store: Store, keys: st.Keys) -> int:
    rec, _ = _pick(await read_recoveries(store, keys), args.node, args.failure)
    if args.json:
        print(json.dumps(rec.as_json(), indent=2))
        return 0
    print(view.summary(rec))
    print(
        f"  nova host {rec.host}; forced down {view.when(rec.forced_down_at)}; finished {view.when(rec.finished_at)}"
        + ("; un-forced-down (host back)" if rec.unforced else "")
    )
    if rec.reason:
        print(f"  {rec.reason}")
    for inst in rec.instances:
        extra = f" -> {inst.target}" if inst.target else ""
        why = f": {inst.reason}" if inst.reason else ""
        ha = " HA" if inst.ha else ""
        print(f"  {inst.name} {inst.id}{ha} {inst.state}{extra} (attempts {inst.attempts}){why}")
    return 0


async def _retry(args: argparse.Namespace, store: Store, keys: st.Keys) -> int:
    rec, rev = _pick(await read_recoveries(store, keys), args.node, args.failure)
    path = recovery_key(keys, rec.node, rec.failure)
    res = await store.txn([Compare(path, "mod", "==", rev)], [Put(path, rc.retried(rec, time.time()).dumps())])
    if not res.succeeded:
        print("the recovery changed meanwhile; run the command again", file=sys.stderr)
        return 1
    print(f"{rec.node} failure {rec.failure}: failed instances and steps will be tried again")
    return 0


def settings_from(params: dict[str, str]) -> Settings:
    def listed(name: str) -> list[str]:
        return [x.strip() for x in params.get(name, "").replace(";", ",").split(",") if x.strip()]

    try:
        return Settings(
            computes=frozenset(listed("computes")),
            host_map=dict(item.split(":", 1) for item in listed("host_map") if ":" in item),
            reserved=tuple(listed("reserved_hosts")),
            only_ha=params.get("only_ha", "false").lower() in ("true", "1", "yes"),
            parallel=max(1, int(params.get("parallel", "4"))),
            in_progress=max(0, int(params.get("in_progress", "32"))),
            retries=max(1, int(params.get("retries", "3"))),
        )
    except ValueError as exc:
        raise InputError.at(f"instanceha:evacuator parameters: {exc}", file="--params") from exc


def _engine(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.node} evacuator %(levelname)s %(message)s")
    try:
        params = {str(k): str(v) for k, v in json.loads(args.params).items()}
    except (ValueError, AttributeError) as exc:
        raise InputError.at(f"not a JSON object: {exc}", file="--params") from exc
    for name, flag in (("etcd", "etcd"), ("store", "store"), ("cluster", "cluster")):
        if params.get(name):
            setattr(args, flag, params[name])
    settings = settings_from(params)
    options = Options(ha_tag=params.get("ha_tag", "HA"), ha_flavor_key=params.get("ha_flavor_key", "hakeeper:ha"))

    def nova() -> Nova:
        return Nova.from_clouds_yaml(params["clouds_yaml"], params["cloud"])

    async def main() -> int:
        store = open_store(args)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await Engine(store, st.Keys(args.cluster), args.node, nova, settings, options).run(stop)
        finally:
            await store.close()
        return 0

    return asyncio.run(main())


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("recovery", help="instance recoveries of lost compute hosts (list, show, retry)")
    sub = p.add_subparsers(dest="recovery_command", required=True)
    a = sub.add_parser(
        "list", help="compute hosts (cluster state, nova-compute as Nova sees it, recoveries in progress), recoveries"
    )
    _store_args(a)
    a.add_argument("--json", action="store_true")
    a.add_argument("--no-nova", dest="nova", action="store_false", help="do not ask Nova for its service records")
    a.set_defaults(handler=lambda args: _run(args, lambda s, k: _list(args, s, k)))
    for name, text in (
        ("show", "one recovery, instance by instance"),
        ("retry", "try failed instances and steps of a recovery again"),
    ):
        a = sub.add_parser(name, help=text)
        _store_args(a)
        a.add_argument("node", help="the compute host's node name")
        a.add_argument("--failure", type=int, help="which failure (default: the last)")
        if name == "show":
            a.add_argument("--json", action="store_true")
            a.set_defaults(handler=lambda args: _run(args, lambda s, k: _show(args, s, k)))
        else:
            a.set_defaults(handler=lambda args: _run(args, lambda s, k: _retry(args, s, k)))

    p = subparsers.add_parser("instanceha", help="instance HA: the evacuation engine")
    sub = p.add_subparsers(dest="instanceha_command", required=True)
    a = sub.add_parser("engine", help="run the evacuation engine (the instanceha:evacuator primitive runs it)")
    _store_args(a)
    a.add_argument("--node", required=True, help="the node it runs on (its writes need this node's membership)")
    a.add_argument("--params", required=True, help="the primitive's params as a JSON object")
    a.set_defaults(handler=_engine)
