"""What operator commands read and change in the store: the status view, configuration edits
(versioned, validated, compare-and-set), node and resource requests. Rendering is pure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from hakeeper.agent import state as st
from hakeeper.coord.store import Compare, Delete, Put, Store, absent
from hakeeper.errors import InputError, Problem
from hakeeper.placement import schedule
from hakeeper.resources.base import make_agent
from hakeeper.resources.stonith import device_missing
from hakeeper.spec import Clone, ClusterSpec, Group, Location, Primitive
from hakeeper.spec.checks import find_problems
from hakeeper.spec.model import TicketState
from hakeeper.spec.values import INFINITY
from hakeeper.yamlsource import YamlDocument


def status_view(values: Mapping[str, bytes], keys: st.Keys, now: float) -> dict[str, Any]:
    found = st.config_of(values, keys)
    leader = values.get(keys.leader)
    joined = {k[len(keys.members) :] for k in values if k.startswith(keys.members)}
    node_docs = {k[len(keys.nodes) :]: st.loads(v) or {} for k, v in values.items() if k.startswith(keys.nodes)}
    view: dict[str, Any] = {
        "leader": leader.decode() if leader else None,
        "config_version": found[0] if found else None,
        "nodes": {},
        "resources": {},
        "failures": [],
        "plan": None,
        "tickets": {},
    }
    spec = found[1] if found else None
    state = st.cluster_state(spec, values, keys, now) if spec else None
    names = [n.name for n in spec.nodes] if spec else sorted(joined)
    fencing = spec is not None and spec.cluster.stonith_enabled
    # Without fencing the scheduler counts what a lost node ran as stopped; so does this view.
    lost_unfenced: set[str] = set()
    for name in names:
        ns = state.nodes.get(name) if state else None
        if ns is not None and ns.unclean and fencing:
            word = "UNCLEAN (lost, awaiting fencing)"
        elif ns is not None and ns.unclean:
            word = "OFFLINE (lost; no fencing, its resources count as stopped)"
            lost_unfenced.add(name)
        elif ns is not None and ns.shutdown:
            word = "shutting down (its resources are moving away)"
        elif name in joined:
            word = "standby" if node_docs.get(name, {}).get("standby") else "online"
        else:
            word = "OFFLINE"
        view["nodes"][name] = word
    for (node, rsc), doc in sorted(st.statuses(values, keys).items()):
        entry = view["resources"].setdefault(rsc, {"running_on": [], "failed_on": []})
        if node in lost_unfenced:
            continue
        if doc.get("failed"):
            entry["failed_on"].append(node)
        elif doc.get("role", "Stopped") != "Stopped":
            entry["running_on"].append(node)
            if doc.get("role") == "Promoted":
                entry["promoted_on"] = node
    if spec:
        for prim in spec.resources.primitives:
            view["resources"].setdefault(prim.id, {"running_on": [], "failed_on": []})
    for (node, rsc), doc in sorted(st.fail_counts(values, keys).items()):
        view["failures"].append({"resource": rsc, "node": node, "count": doc.get("count"), "last": doc.get("last")})
    known = sorted({t.ticket for t in spec.constraints.ticket} if spec else set())
    held = state.tickets if state else {}
    for name in sorted(set(known) | set(held)):
        t = held.get(name) or TicketState()
        view["tickets"][name] = "revoked" if not t.granted else "standby" if t.standby else "granted"
    plan = st.loads(values.get(keys.plan))
    if isinstance(plan, dict):
        done = st.done_marks(values, keys, int(plan.get("epoch", 0)))
        view["plan"] = {
            "epoch": plan.get("epoch"),
            "leader": plan.get("leader"),
            "summary": plan.get("summary", []),
            "outstanding": sorted(" ".join(w).strip() for w in st.remaining(plan, done)),
        }
    return view


def render_status(view: Mapping[str, Any]) -> str:
    lines = [f"Leader: {view['leader'] or 'NONE'}    configuration version: {view['config_version']}", ""]
    lines.append("Nodes:")
    for name, word in view["nodes"].items():
        lines.append(f"  * {name}: {word}")
    lines += ["", "Resources:"]
    for rsc, entry in sorted(view["resources"].items()):
        where = ", ".join(entry["running_on"]) or "Stopped"
        word = "Started" if entry["running_on"] else ""
        if len(entry["running_on"]) > 1:
            word = "MULTIPLE ACTIVE"
        failed = f"  FAILED on {', '.join(entry['failed_on'])}" if entry["failed_on"] else ""
        lines.append(f"  * {rsc}\t{word} {where}{failed}".rstrip())
    if view["failures"]:
        lines += ["", "Failures:"]
        for f in view["failures"]:
            when = time.strftime("%H:%M:%S", time.localtime(f["last"])) if f.get("last") else "?"
            lines.append(f"  * {f['resource']} on {f['node']}: fail-count={f['count']} last={when}")
    if view.get("tickets"):
        lines += ["", "Tickets:"] + [f"  * {name}: {word}" for name, word in view["tickets"].items()]
    plan = view.get("plan")
    if plan and plan["outstanding"]:
        lines += ["", f"Transition {plan['epoch']} in progress:"] + [f"  * {w}" for w in plan["outstanding"]]
    return "\n".join(lines)


# ----- configuration -----


def check_agents(spec: ClusterSpec, doc: YamlDocument | None = None, file: str | None = None) -> None:
    """Every primitive's agent must exist here, or nothing is applied (InputError names the line)."""
    problems = []
    for i, prim in enumerate(spec.resources.primitives):
        path = ("resources", "primitives", i, "agent")
        if prim.agent.cls == "stonith":
            reason = device_missing(prim.agent.type)
        else:
            try:
                reason = make_agent(prim.id, str(prim.agent), prim.params, "/nonexistent").installed()
            except ValueError as exc:
                reason = str(exc)
        if reason:
            line = doc.line_of(path) if doc is not None else None
            problems.append(Problem(f"{prim.id}: {reason}", file, line, ".".join(map(str, path))))
    if problems:
        raise InputError(problems)


def config_doc(spec: ClusterSpec, version: int, source: str) -> bytes:
    return st.dumps({"version": version, "spec": spec.model_dump(mode="json"), "source": source, "at": time.time()})


async def current_config(store: Store, keys: st.Keys) -> tuple[bytes | None, int, ClusterSpec | None]:
    kv = await store.get(keys.config)
    if kv is None:
        return None, 0, None
    found = st.config_of({keys.config: kv.value}, keys)
    return kv.value, (found[0] if found else 0), (found[1] if found else None)


async def write_config(
    store: Store, keys: st.Keys, raw: bytes | None, spec: ClusterSpec, version: int, source: str
) -> bool:
    """Compare-and-set: only if the configuration is still the one that was read."""
    guard = Compare(keys.config, "value", "==", raw) if raw is not None else absent(keys.config)
    return (await store.txn([guard], [Put(keys.config, config_doc(spec, version + 1, source))])).succeeded


async def edit_config(store: Store, keys: st.Keys, edit: Callable[[ClusterSpec], None], source: str) -> int:
    for _ in range(10):
        raw, version, spec = await current_config(store, keys)
        if spec is None:
            raise InputError.at("no configuration applied yet (hakeeper config apply FILE)")
        edit(spec)
        problems = find_problems(spec)
        if problems:
            raise InputError([Problem(p.message, field=".".join(map(str, p.path))) for p in problems])
        if await write_config(store, keys, raw, spec, version, source):
            return version + 1
        await asyncio.sleep(0.05)
    raise InputError.at("the configuration kept changing underneath; try again")


async def preview(store: Store, keys: st.Keys, spec: ClusterSpec) -> list[str]:
    """The transition this configuration would cause now (the leader computes the same)."""
    kvs, _ = await store.get_prefix(keys.prefix)
    values = {kv.key: kv.value for kv in kvs}
    plan = schedule(spec, st.cluster_state(spec, values, keys, time.time()))
    return plan.summary or ["(no changes)"]


def _locations_without(spec: ClusterSpec, prefix: str) -> None:
    spec.constraints.location = [c for c in spec.constraints.location if not c.id.startswith(prefix)]


def prefer(rsc: str, node: str) -> Callable[[ClusterSpec], None]:
    def edit(spec: ClusterSpec) -> None:
        _known(spec, rsc, node)
        _locations_without(spec, f"cli-prefer-{rsc}")
        spec.constraints.location.append(Location(id=f"cli-prefer-{rsc}", resource=rsc, node=node, score=INFINITY))

    return edit


def ban(rsc: str, node: str) -> Callable[[ClusterSpec], None]:
    def edit(spec: ClusterSpec) -> None:
        _known(spec, rsc, node)
        cid = f"cli-ban-{rsc}-on-{node}"
        _locations_without(spec, cid)
        spec.constraints.location.append(Location(id=cid, resource=rsc, node=node, score=-INFINITY))

    return edit


def clear(rsc: str) -> Callable[[ClusterSpec], None]:
    def edit(spec: ClusterSpec) -> None:
        _locations_without(spec, f"cli-prefer-{rsc}")
        _locations_without(spec, f"cli-ban-{rsc}-on-")

    return edit


def target_role(rsc: str, role: str | None) -> Callable[[ClusterSpec], None]:
    def edit(spec: ClusterSpec) -> None:
        _known(spec, rsc, None)
        for item in all_resources(spec):
            if item.id == rsc:
                item.meta.target_role = role  # type: ignore[assignment]

    return edit


def all_resources(spec: ClusterSpec) -> list[Primitive | Group | Clone]:
    r = spec.resources
    return [*r.primitives, *r.groups, *r.clones]


def _known(spec: ClusterSpec, rsc: str, node: str | None) -> None:
    if rsc not in {x.id for x in all_resources(spec)}:
        raise InputError.at(f"no resource {rsc!r} in the configuration", field="resource")
    if node is not None and node not in {n.name for n in spec.nodes}:
        raise InputError.at(f"no node {node!r} in the configuration", field="node")


async def cleanup(store: Store, keys: st.Keys, rsc: str, node: str | None) -> list[str]:
    """Forget rsc's fail counts (on one node or all) and ask those nodes to probe again."""
    kvs, _ = await store.get_prefix(keys.prefix)
    values = {kv.key: kv.value for kv in kvs}
    ops: list[Any] = []
    nodes = set()
    members = {n for (n, r) in st.fail_counts(values, keys) if r == rsc} | {
        n for (n, r), d in st.statuses(values, keys).items() if r == rsc and d.get("failed")
    }
    for n in sorted(members):
        if node is None or n == node:
            ops.append(Delete(keys.fail_of(n, rsc)))
            ops.append(Put(keys.reprobe + n, st.dumps({"resource": rsc, "at": time.time()})))
            nodes.add(n)
    if ops:
        await store.txn([], ops)
    return sorted(nodes)
