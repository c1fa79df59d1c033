"""`hakeeper rabbitmq status|forget`: the RabbitMQ tier as its brokers report it, and the operator's
path for a node removed for good (view.py holds the decisions and why forget is the operator's).

Both read the configuration from the store (the rabbitmq primitive: its nodes and Erlang cookie),
each node's boot report and which agents are online, then ask every broker for its
`cluster_status` (concurrently; a CLI call starts an Erlang VM). Run them where the brokers' short
names resolve, as on any controller. The cookie goes to a private temporary HOME for the calls and
is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from hakeeper.rabbitmq.view import Broker, broker_from_status, parse_boot_report, plan_forget, render

if TYPE_CHECKING:
    from hakeeper.agent.state import Keys
    from hakeeper.coord.store import Store
    from hakeeper.spec.model import ClusterSpec, Primitive

CLI_TIMEOUT = 30.0


def rabbitmq_primitive(spec: ClusterSpec, chosen: str | None) -> Primitive:
    """The native rabbitmq primitive: the one given, or the only one configured."""
    from hakeeper.errors import InputError

    found = {p.id: p for p in spec.resources.primitives if p.agent.cls == "rabbitmq"}
    if chosen is not None:
        if chosen not in found:
            raise InputError.at(f"no rabbitmq primitive of that id; configured: {sorted(found) or 'none'}",
                                field="--resource")
        return found[chosen]
    if len(found) != 1:
        what = "none is configured" if not found else f"several are configured, name one: {sorted(found)}"
        raise InputError.at(f"needs the rabbitmq primitive: {what}", field="--resource")
    return next(iter(found.values()))


def cluster_nodes(spec: ClusterSpec, primitive: Primitive) -> list[str]:
    listed = [n.strip() for n in primitive.params.get("nodes", "").split(",") if n.strip()]
    return listed or [n.name for n in spec.nodes]


@contextlib.contextmanager
def cookie_home(cookie: str) -> Iterator[str]:
    """A private HOME holding the Erlang cookie (mode 400, as Erlang demands), removed after."""
    home = tempfile.mkdtemp(prefix="hkrabbitmq-cli-")
    try:
        path = os.path.join(home, ".erlang.cookie")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as f:
            f.write(cookie)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def rabbitmqctl(home: str, node: str, *args: str, timeout: float = CLI_TIMEOUT) -> tuple[int, str]:
    from hakeeper.rabbitmq.agent import BIN
    from hakeeper.resources import runner

    out = await runner.run([os.path.join(BIN, "rabbitmqctl"), "-n", node, *args], timeout,
                           env={**os.environ, "HOME": home})
    return (-1 if out.rc is None else out.rc), out.output


async def ask_broker(home: str, node: str, online: bool, boot_raw: str | None, last_monitor: str | None) -> Broker:
    rc, text = await rabbitmqctl(home, f"rabbit@{node}", "cluster_status", "--formatter", "json")
    status: object = None
    if rc == 0 and "{" in text:
        with contextlib.suppress(ValueError):
            status = json.loads(text[text.index("{"):])
    lines = [line for line in text.strip().splitlines() if line.strip()]
    error = lines[-1][:200] if lines else f"rabbitmqctl exited {rc}"
    return broker_from_status(node, online, parse_boot_report(boot_raw), status, error, last_monitor)


async def survey(
    home: str, nodes: list[str], online: set[str], attrs: Mapping[str, Mapping[str, str]], rid: str
) -> list[Broker]:
    return list(await asyncio.gather(
        *(ask_broker(home, n, n in online, attrs.get(n, {}).get(f"{rid}-boot"), attrs.get(n, {}).get(f"{rid}-cluster"))
          for n in nodes)
    ))


async def _read(args: argparse.Namespace, store: Store, keys: Keys) -> tuple[Primitive, list[str], list[Broker]]:
    from hakeeper.agent import state as st
    from hakeeper.errors import InputError

    kvs, _ = await store.get_prefix(keys.prefix)
    values = {kv.key: kv.value for kv in kvs}
    found = st.config_of(values, keys)
    if found is None:
        raise InputError.at("the store holds no configuration (hakeeper config apply)", field="--cluster")
    spec = found[1]
    primitive = rabbitmq_primitive(spec, args.resource)
    nodes = cluster_nodes(spec, primitive)
    if not primitive.params.get("cookie"):
        raise InputError.at(f"the {primitive.id} primitive has no cookie parameter", field="--resource")
    with cookie_home(primitive.params["cookie"]) as home:
        brokers = await survey(home, nodes, st.members(values, keys), st.attributes(values, keys), primitive.id)
    return primitive, nodes, brokers


def _status(args: argparse.Namespace) -> int:
    from hakeeper.agent.commands import _run

    async def body(store: Store, keys: Keys) -> int:
        primitive, _, brokers = await _read(args, store, keys)
        if args.json:
            print(json.dumps({"resource": primitive.id, "brokers": [asdict(b) for b in brokers]}, indent=2))
        else:
            print(render(primitive.id, brokers))
        return 0

    return _run(args, body)


def _forget(args: argparse.Namespace) -> int:
    from hakeeper.agent.commands import _run

    async def body(store: Store, keys: Keys) -> int:
        primitive, nodes, brokers = await _read(args, store, keys)
        plan = plan_forget(args.node, brokers, nodes)
        if args.dry_run:
            print(f"would {plan.describe()}")
            return 0
        with cookie_home(primitive.params["cookie"]) as home:
            rc, text = await rabbitmqctl(home, plan.via, "forget_cluster_node", plan.node)
        if rc != 0:
            print(f"error: forget_cluster_node {plan.node} through {plan.via}: {text.strip()[-400:]}",
                  file=sys.stderr)
            return 1
        print(f"done: {plan.describe()}")
        return 0

    return _run(args, body)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hakeeper.agent.commands import _store_args

    p = subparsers.add_parser("rabbitmq", help="the RabbitMQ tier: brokers' clusters, forgetting a removed node")
    sub = p.add_subparsers(dest="rabbitmq_command", required=True)
    s = sub.add_parser("status", help="per broker: members, running nodes, alarms, partitions, boot report")
    _store_args(s)
    s.add_argument("--resource", help="the rabbitmq primitive (default: the only one configured)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_status)
    f = sub.add_parser("forget", help="remove NODE, gone for good, from the RabbitMQ cluster")
    _store_args(f)
    f.add_argument("node", metavar="NODE", help="the node (r3 or rabbit@r3); its broker must not run")
    f.add_argument("--resource", help="the rabbitmq primitive (default: the only one configured)")
    f.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    f.set_defaults(handler=_forget)
