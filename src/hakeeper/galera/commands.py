"""`hakeeper galera status|bootstrap`: the Galera tier as the store sees it, and the operator's
forced bootstrap after a node is lost for good.

Both read what Pacemaker's galera agent publishes through hakeeper's crm_attribute: per node
`<rsc>-last-committed` (its seqno), `<rsc>-safe-to-bootstrap`, `<rsc>-no-grastate`,
`<rsc>-bootstrap` and the promotion score `master-<rsc>`, plus the role hakeeper's agents report.

Why an operator command: after a full outage the agent waits until EVERY node has reported its
seqno before it picks one (a missing node may be the most advanced). If a node never comes back,
someone must decide to go on without it. `bootstrap NODE` is that decision: it needs no `--force`
when NODE is the node the agent itself would pick; otherwise it refuses, says which nodes may
hold transactions NODE lacks, and with `--force` goes ahead. It acts the way the agent does: it
asks NODE's agent (an attribute request, applied by that node only while it is online) to set
`<rsc>-bootstrap=true` and its promotion score, so hakeeper promotes it and the unmodified agent
bootstraps it; the others join it when they return.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from hakeeper.galera import live
from hakeeper.galera.bootstrap import Position, decide, parse_grastate

if TYPE_CHECKING:
    from hakeeper.agent.state import Keys
    from hakeeper.coord.store import Store

Role = Literal["Promoted", "Unpromoted", "Stopped", "FAILED"]
GALERA_AGENT = "ocf:heartbeat:galera"
# What the agent publishes for "no commit yet" / -1 (an unsigned -1).
UNSIGNED_MINUS_ONE = 2**64 - 1
# The agent publishes no history UUID, only a seqno: positions read from the store carry this
# stand-in (any non-zero UUID), so `decide` compares seqnos and never treats them as empty.
STORE_HISTORY = "ffffffff-ffff-ffff-ffff-ffffffffffff"


@dataclass(frozen=True)
class NodeRow:
    node: str
    online: bool
    role: Role
    seqno: int | None  # None: not reported (the agent clears it once the node is promoted)
    safe_to_bootstrap: bool | None
    bootstrap: bool  # the agent chose this node to bootstrap
    no_grastate: bool
    score: str | None  # promotion score


def galera_resource(primitives: Mapping[str, str], chosen: str | None) -> str:
    """The galera primitive (id -> agent): the one given, or the only one configured."""
    from hakeeper.errors import InputError

    galeras = sorted(p for p, agent in primitives.items() if agent == GALERA_AGENT)
    if chosen is not None:
        if chosen not in galeras:
            raise InputError.at(f"no {GALERA_AGENT} primitive of that id; configured: {galeras or 'none'}",
                                field="--resource")
        return chosen
    if len(galeras) != 1:
        what = "none is configured" if not galeras else f"several are configured, name one: {galeras}"
        raise InputError.at(f"needs the {GALERA_AGENT} primitive: {what}", field="--resource")
    return galeras[0]


def _seqno(raw: str | None) -> int | None:
    if raw is None or not raw.strip().lstrip("-").isdigit():
        return None
    value = int(raw)
    return -1 if value >= UNSIGNED_MINUS_ONE else value


def rows(
    rsc: str,
    nodes: list[str],
    online: set[str],
    attrs: Mapping[str, Mapping[str, str]],
    roles: Mapping[str, Role],
) -> list[NodeRow]:
    """One row per configured node, from its attributes and reported role (pure)."""
    out = []
    for n in nodes:
        a = attrs.get(n, {}) if n in online else {}
        safe = a.get(f"{rsc}-safe-to-bootstrap")
        out.append(
            NodeRow(
                node=n,
                online=n in online,
                role=roles.get(n, "Stopped") if n in online else "Stopped",
                seqno=_seqno(a.get(f"{rsc}-last-committed")),
                safe_to_bootstrap=None if safe is None else safe.strip() == "1",
                bootstrap=a.get(f"{rsc}-bootstrap", "").strip() == "true",
                no_grastate=a.get(f"{rsc}-no-grastate", "").strip() == "true",
                score=a.get(f"master-{rsc}"),
            )
        )
    return out


def render(rsc: str, table: list[NodeRow]) -> str:
    lines = [f"Galera ({rsc}):", f"  {'node':<12} {'state':<8} {'role':<11} {'seqno':>10}  safe_to_bootstrap  notes"]
    for r in table:
        notes = [w for w, on in (("chosen to bootstrap", r.bootstrap), ("no grastate.dat", r.no_grastate)) if on]
        if r.score is not None:
            notes.append(f"promotion score {r.score}")
        seqno = "-" if r.seqno is None else str(r.seqno)
        safe = "-" if r.safe_to_bootstrap is None else "yes" if r.safe_to_bootstrap else "no"
        state = "online" if r.online else "OFFLINE"
        lines.append(f"  {r.node:<12} {state:<8} {r.role:<11} {seqno:>10}  {safe:<17}  {', '.join(notes)}".rstrip())
    primary = [r.node for r in table if r.role == "Promoted"]
    lines.append(f"  primary component: {', '.join(primary)}" if primary else "  primary component: none")
    return "\n".join(lines)


@dataclass(frozen=True)
class BootstrapPlan:
    node: str
    seqno: int
    forced: bool
    may_lose: tuple[str, ...]  # nodes that may hold transactions the chosen node lacks

    def describe(self) -> str:
        text = f"bootstrap {self.node} at seqno {self.seqno}"
        if self.may_lose:
            text += f"; transactions only {', '.join(self.may_lose)} hold(s) will be LOST"
        return text


def plan_bootstrap(
    table: list[NodeRow], node: str, force: bool, grastate: Position | None = None
) -> BootstrapPlan:
    """Whether NODE may bootstrap (pure). Refusals are InputErrors naming the argument: nothing
    is written. `grastate`: NODE's own grastate.dat, when the operator gives it (checks the
    history UUID, which the agent does not publish)."""
    from hakeeper.errors import InputError

    by_node = {r.node: r for r in table}
    if node not in by_node:
        raise InputError.at(f"unknown node; configured: {sorted(by_node)}", field="NODE")
    running = [r.node for r in table if r.role == "Promoted"]
    if running:
        raise InputError.at(f"a primary component runs on {', '.join(running)}: nothing to bootstrap, "
                            "returning nodes join it", field="NODE")
    me = by_node[node]
    if not me.online:
        raise InputError.at(f"{node} is offline: its agent must run to start the database there", field="NODE")
    if grastate is not None and not grastate.has_history:
        raise InputError.at(f"{node}'s grastate.dat has no cluster history (zero UUID): bootstrapping it "
                            "would start an empty cluster", field="NODE")
    if me.seqno is None:
        raise InputError.at(f"{node} has not reported its position (seqno) yet: wait for its start to "
                            "finish (hakeeper galera status)", field="NODE")
    positions: dict[str, Position | None] = {
        r.node: None if r.seqno is None else Position(STORE_HISTORY, r.seqno, bool(r.safe_to_bootstrap))
        for r in table
    }
    nodes = [r.node for r in table]
    forced = decide(positions, nodes, force=node)
    if not forced.may_lose:  # every node reported and none is ahead: what the agent would pick
        return BootstrapPlan(node, me.seqno, False, ())
    unforced = decide(positions, nodes)
    if not force:
        why = unforced.reason if unforced.node is None else f"{unforced.node} is more advanced ({unforced.reason})"
        raise InputError.at(
            f"refused without --force: {why}; bootstrapping {node} at seqno {me.seqno} may lose "
            f"what {', '.join(forced.may_lose) or 'no node'} hold(s) beyond it",
            field="NODE",
        )
    return BootstrapPlan(node, me.seqno, True, forced.may_lose)


# ----- the shell: store in, text out -----


def _table(args: argparse.Namespace, values: Mapping[str, bytes]) -> tuple[str, list[NodeRow], dict[str, str]]:
    from hakeeper.agent import state as st
    from hakeeper.errors import InputError

    keys = st.Keys(args.cluster)
    found = st.config_of(values, keys)
    if found is None:
        raise InputError.at("the store holds no configuration (hakeeper config apply)", field="--cluster")
    spec = found[1]
    rsc = galera_resource({p.id: str(p.agent) for p in spec.resources.primitives}, args.resource)
    roles: dict[str, Role] = {}
    for (node, name), doc in st.statuses(values, keys).items():
        if name.partition(":")[0] != rsc:
            continue
        reported = doc.get("role")
        roles[node] = (
            "FAILED" if doc.get("failed")
            else "Promoted" if reported == "Promoted"
            else "Unpromoted" if reported in ("Started", "Unpromoted")
            else "Stopped"
        )
    params = next(dict(p.params) for p in spec.resources.primitives if p.id == rsc)
    table = rows(rsc, [n.name for n in spec.nodes], st.members(values, keys), st.attributes(values, keys), roles)
    return rsc, table, params


def _status(args: argparse.Namespace) -> int:
    from hakeeper.agent.commands import _run
    from hakeeper.errors import InputError, read_input_text

    if args.vip and not args.defaults_file:
        raise InputError.at("--vip needs --defaults-file (the client user and password to connect with)",
                            field="--defaults-file")
    if args.defaults_file:
        read_input_text(args.defaults_file)  # unreadable: exit 2 naming it, before any connection

    async def body(store: Store, keys: Keys) -> int:
        kvs, _ = await store.get_prefix(keys.prefix)
        rsc, table, params = _table(args, {kv.key: kv.value for kv in kvs})
        nodes = [r.node for r in table]
        probes = [] if args.no_probe else live.probe(live.node_addresses(params, nodes), nodes, args.check_port)
        writer, why = live.vip_writer(args.vip, args.defaults_file) if args.vip else (None, None)
        if args.json:
            by_node = {p.node: p for p in probes}
            doc = {
                "resource": rsc,
                "nodes": [{**asdict(r), "live": asdict(by_node[r.node]) if r.node in by_node else None,
                           "vip_writer": r.node == writer} for r in table],
                "vip": None if not args.vip else {"address": args.vip, "writer": writer, "error": why},
            }
            print(json.dumps(doc, indent=2))
        else:
            print(render(rsc, table))
            if probes or args.vip:
                print(live.render_live(probes, args.vip, writer, why))
        return 0

    return _run(args, body)


def _bootstrap(args: argparse.Namespace) -> int:
    from hakeeper.agent import state as st
    from hakeeper.agent.commands import _run
    from hakeeper.coord.store import Compare, Put
    from hakeeper.errors import read_input_text
    from hakeeper.resources.pacemaker_cli import requests_prefix

    grastate = parse_grastate(read_input_text(args.grastate), args.grastate) if args.grastate else None

    async def body(store: Store, keys: Keys) -> int:
        kvs, _ = await store.get_prefix(keys.prefix)
        values = {kv.key: kv.value for kv in kvs}
        rsc, table, _ = _table(args, values)
        plan = plan_bootstrap(table, args.node, args.force, grastate)
        if args.dry_run:
            print(f"would {plan.describe()}")
            return 0
        # Guard: nothing about the galera instances changed since they were read (no node
        # promoted or stopped meanwhile) and NODE is still the incarnation that reported.
        guards = [
            Compare(k, "value", "==", v) for k, v in values.items()
            if k.startswith(keys.status) and k[len(keys.status):].partition("/")[2].partition(":")[0] == rsc
        ]
        member = keys.member(plan.node)
        guards.append(Compare(member, "value", "==", values[member]))
        target = requests_prefix(keys.prefix, plan.node)
        ops = [
            Put(target + f"{rsc}-bootstrap", st.dumps({"value": "true", "from": "operator"})),
            Put(target + f"master-{rsc}", st.dumps({"value": "100", "from": "operator"})),
        ]
        if not (await store.txn(guards, ops)).succeeded:
            print("error: the cluster changed while deciding; run the command again", file=sys.stderr)
            return 1
        print(f"requested: {plan.describe()}; hakeeper promotes it, the galera agent bootstraps it")
        return 0

    return _run(args, body)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hakeeper.agent.commands import _store_args

    p = subparsers.add_parser("galera", help="the Galera tier: positions per node, forced bootstrap")
    sub = p.add_subparsers(dest="galera_command", required=True)
    s = sub.add_parser("status", help="per node: role, last committed seqno, safe_to_bootstrap")
    _store_args(s)
    s.add_argument("--resource", help="the galera primitive (default: the only one configured)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-probe", action="store_true",
                   help="only the store's view: do not ask each node's clustercheck for its wsrep state")
    s.add_argument("--check-port", type=int, default=9200, help="the nodes' clustercheck port (default 9200)")
    s.add_argument("--vip", metavar="ADDR[:PORT]", help="the MySQL VIP: show which node a client of it lands on")
    s.add_argument("--defaults-file", metavar="FILE",
                   help="a MySQL option file ([client] user, password) for --vip; the password is never printed")
    s.set_defaults(handler=_status)
    b = sub.add_parser("bootstrap", help="start a new primary component from NODE after a full outage")
    _store_args(b)
    b.add_argument("node", metavar="NODE")
    b.add_argument("--resource", help="the galera primitive (default: the only one configured)")
    b.add_argument("--force", action="store_true",
                   help="even when another node may be more advanced (its extra transactions are lost)")
    b.add_argument("--grastate", metavar="FILE", help="NODE's grastate.dat, to check its history UUID too")
    b.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    b.set_defaults(handler=_bootstrap)
    from hakeeper.galera import clustercheck

    clustercheck.add_parser(sub)
