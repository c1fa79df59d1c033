"""What operator commands read and change in the store: the status view, configuration edits
(versioned, validated, compare-and-set), node and resource requests. Rendering is pure."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hakeeper.agent import history as hist
from hakeeper.agent import state as st
from hakeeper.coord.store import Compare, Delete, Put, Store, absent
from hakeeper.errors import InputError, Problem
from hakeeper.instanceha import view as instanceha_view
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
        "layout": [],
        "agents": {},
        "failures": [],
        "plan": None,
        "tickets": {},
        "attributes": {},
        "instance_ha": None,
    }
    spec = found[1] if found else None
    state = st.cluster_state(spec, values, keys, now) if spec else None
    configured = [n.name for n in spec.nodes] if spec else sorted(joined)
    # Members and nodes still reporting resources that the configuration no longer lists are kept
    # in view: the scheduler keeps them in standby until what they run has stopped.
    reporting = {node for node, _ in st.statuses(values, keys)}
    extra = sorted((joined | reporting) - set(configured)) if spec else []
    names = configured + extra
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
        elif name in joined and _fenced_since_joined(values, keys, name):
            # Its member key outlives the fence until its lease expires; the node itself is gone.
            word = "OFFLINE (fenced)"
        elif name in extra:
            word = ("online, " if name in joined else "") + "not in the configuration (nothing is placed here)"
        elif name in joined:
            word = "standby" if node_docs.get(name, {}).get("standby") else "online"
        else:
            word = "OFFLINE"
        view["nodes"][name] = word
    for (node, rsc), doc in sorted(st.statuses(values, keys).items()):
        entry = view["resources"].setdefault(rsc, {"running_on": [], "failed_on": [], "promoted_on": []})
        if node in lost_unfenced:
            continue
        if doc.get("failed"):
            entry["failed_on"].append(node)
        elif doc.get("role", "Stopped") != "Stopped":
            entry["running_on"].append(node)
            if doc.get("role") == "Promoted":
                entry["promoted_on"].append(node)
    if spec:
        for prim in spec.resources.primitives:
            view["resources"].setdefault(prim.id, {"running_on": [], "failed_on": [], "promoted_on": []})
        view["agents"] = {p.id: str(p.agent) for p in spec.resources.primitives}
    view["layout"] = resource_layout(spec, view["resources"])
    for (node, rsc), doc in sorted(st.fail_counts(values, keys).items()):
        view["failures"].append({"resource": rsc, "node": node, "count": doc.get("count"), "last": doc.get("last")})
    known = sorted({t.ticket for t in spec.constraints.ticket} if spec else set())
    held = state.tickets if state else {}
    for name in sorted(set(known) | set(held)):
        t = held.get(name) or TicketState()
        view["tickets"][name] = "revoked" if not t.granted else "standby" if t.standby else "granted"
    # What resource agents wrote with crm_attribute (promotion scores, Galera's seqno, RabbitMQ's
    # cluster membership): the first thing to read when a promotion or a bootstrap surprises.
    view["attributes"] = {node: dict(sorted(a.items())) for node, a in sorted(st.attributes(values, keys).items())}
    if instanceha_view.evacuator_params(values, keys) is not None:
        # Nova is not asked here (status must answer when Nova does not): `recovery list` does.
        view["instance_ha"] = instanceha_view.compute_section(values, keys, view["nodes"])
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


def _base(rsc: str) -> str:
    """A clone instance `p:N` is an instance of primitive p."""
    base, _, number = rsc.partition(":")
    return base if number.isdigit() else rsc


def resource_layout(spec: ClusterSpec | None, reported: Iterable[str]) -> list[dict[str, Any]]:
    """How status lists resources, in definition order: primitives on their own, groups with their
    members, clones (of a primitive or a group) as one set; then resources reported somewhere
    that the configuration no longer has (orphans)."""
    items: list[dict[str, Any]] = []
    configured: set[str] = set()
    if spec is not None:
        r = spec.resources
        groups = {g.id: g for g in r.groups}
        clones = {c.child: c for c in r.clones}
        group_of = {m: g.id for g in r.groups for m in g.members}
        seen: set[str] = set()
        for prim in r.primitives:
            configured.add(prim.id)
            top = group_of.get(prim.id, prim.id)
            clone = clones.get(top)
            if (clone.id if clone else top) in seen:
                continue
            seen.add(clone.id if clone else top)
            members = list(groups[top].members) if top in groups else [top]
            if clone is not None:
                items.append({
                    "kind": "clone",
                    "id": clone.id,
                    "child": top,
                    "members": members,
                    "promotable": bool(clone.meta.promotable),
                    "unique": bool(clone.meta.globally_unique),
                    "clone_node_max": clone.meta.clone_node_max if clone.meta.clone_node_max is not None else 1,
                })
            elif top in groups:
                items.append({"kind": "group", "id": top, "members": members})
            else:
                items.append({"kind": "primitive", "id": top})
    for rsc in sorted({_base(r) for r in reported} - configured):
        items.append({"kind": "primitive", "id": rsc, "orphan": spec is not None})
    return items


def _fenced_since_joined(values: Mapping[str, bytes], keys: st.Keys, node: str) -> bool:
    """Whether the node was fenced after its current member key was written (so that key is a
    leftover of the incarnation the fence killed)."""
    fence = st.loads(values.get(f"{keys.fence}{node}"))
    member = st.loads(values.get(keys.member(node)))
    if not isinstance(fence, dict) or not isinstance(member, dict):
        return False
    return bool(fence.get("ok")) and float(fence.get("at", 0)) >= float(member.get("started", 0))


def render_status(view: Mapping[str, Any]) -> str:
    lines = [f"Leader: {view['leader'] or 'NONE'}    configuration version: {view['config_version']}", ""]
    lines.append("Nodes:")
    for name, word in view["nodes"].items():
        lines.append(f"  * {name}: {word}")
    lines += ["", "Resources:"]
    resources: Mapping[str, Any] = view["resources"]
    agents: Mapping[str, str] = view.get("agents") or {}
    layout = view.get("layout") or resource_layout(None, resources)
    for item in layout:
        if item["kind"] == "clone":
            lines += _clone_lines(item, resources, agents, list(view["nodes"]))
        elif item["kind"] == "group":
            lines.append(f"  * Resource Group: {item['id']}:")
            lines += [_primitive_line(m, resources, agents, "    ") for m in item["members"]]
        else:
            lines.append(_primitive_line(item["id"], resources, agents, "  ", orphan=bool(item.get("orphan"))))
    if view["failures"]:
        lines += ["", "Failures:"]
        for f in view["failures"]:
            when = time.strftime("%H:%M:%S", time.localtime(f["last"])) if f.get("last") else "?"
            lines.append(f"  * {f['resource']} on {f['node']}: fail-count={f['count']} last={when}")
    if view.get("tickets"):
        lines += ["", "Tickets:"] + [f"  * {name}: {word}" for name, word in view["tickets"].items()]
    if view.get("attributes"):
        lines += ["", "Node attributes:"]
        for node, attrs in view["attributes"].items():
            lines.append(f"  * {node}: " + ", ".join(f"{name}={value}" for name, value in attrs.items()))
    if view.get("instance_ha"):
        lines += ["", *instanceha_view.render(view["instance_ha"]).splitlines()]
    plan = view.get("plan")
    if plan and plan["outstanding"]:
        lines += ["", f"Transition {plan['epoch']} in progress:"] + [f"  * {w}" for w in plan["outstanding"]]
    return "\n".join(lines)


def _entry(resources: Mapping[str, Any], rsc: str) -> Mapping[str, Any]:
    return resources.get(rsc) or {"running_on": [], "failed_on": [], "promoted_on": []}


def _primitive_line(
    rsc: str, resources: Mapping[str, Any], agents: Mapping[str, str], indent: str, orphan: bool = False
) -> str:
    entry = _entry(resources, rsc)
    running = list(entry["running_on"])
    if len(running) > 1:
        where = f"MULTIPLE ACTIVE {', '.join(running)}"
    elif running:
        role = "Promoted" if running[0] in entry.get("promoted_on", []) else "Started"
        where = f"{role} {running[0]}"
    else:
        where = "Stopped"
    if orphan:
        where = f"ORPHANED {where}"
    failed = f"  FAILED on {', '.join(entry['failed_on'])}" if entry["failed_on"] else ""
    agent = agents.get(_base(rsc), "orphan" if orphan else "?")
    return f"{indent}* {rsc}\t({agent}):\t {where}{failed}"


def _clone_lines(
    item: Mapping[str, Any], resources: Mapping[str, Any], agents: Mapping[str, str], nodes: list[str]
) -> list[str]:
    """crm_mon's clone set: the nodes each role runs on, one line per role, then failures and
    the nodes it is stopped on. Multiply active only when a node runs more instances of a member
    than clone-node-max allows (or an instance of a unique clone runs on several nodes)."""
    members: list[str] = item["members"]
    kind = " (promotable)" if item["promotable"] else " (unique)" if item["unique"] else ""
    lines = [f"  * Clone Set: {item['id']} [{item['child']}]{kind}:"]
    # Instances reported per member: anonymous clones report by the primitive's id, unique ones
    # (and older reports) by `id:N`.
    instances = {m: sorted(r for r in resources if _base(r) == m) for m in members}
    running: dict[str, set[str]] = {m: set() for m in members}
    promoted: dict[str, set[str]] = {m: set() for m in members}
    extra: list[str] = []
    for m in members:
        per_node: dict[str, int] = {}
        for r in instances[m]:
            entry = _entry(resources, r)
            running[m] |= set(entry["running_on"])
            promoted[m] |= set(entry.get("promoted_on", []))
            for n in entry["running_on"]:
                per_node[n] = per_node.get(n, 0) + 1
        extra += [
            f"    * MULTIPLE ACTIVE: {m} on {n} ({count} instances, clone-node-max {item['clone_node_max']})"
            for n, count in sorted(per_node.items())
            if count > item["clone_node_max"]
        ]
    if item["unique"]:
        # Each instance is its own resource: one line each (multiply active if on several nodes).
        for m in members:
            lines += [_primitive_line(r, resources, agents, "    ") for r in instances[m] if r != m]
        return lines + extra
    everywhere = set.intersection(*running.values()) if running else set()
    order = nodes + sorted((set().union(*running.values()) - set(nodes)) if running else set())
    if item["promotable"]:
        top = set.intersection(*promoted.values()) & everywhere if promoted else set()
        roles = [("Promoted", [n for n in order if n in top]),
                 ("Unpromoted", [n for n in order if n in everywhere - top])]
    else:
        roles = [("Started", [n for n in order if n in everywhere])]
    lines += [f"    * {role}: [ {' '.join(where)} ]" for role, where in roles if where]
    # A cloned group partly active on a node: its members there, one by one.
    for n in order:
        partial = [m for m in members if n in running[m]]
        if partial and n not in everywhere:
            lines += [f"    * {m}\t({agents.get(m, '?')}):\t Started {n} (group incomplete)" for m in partial]
    for m in members:
        failed = sorted({n for r in instances[m] for n in _entry(resources, r)["failed_on"]})
        if failed:
            lines.append(f"    * {m}\t({agents.get(m, '?')}):\t FAILED on {', '.join(failed)}")
    lines += extra
    stopped = [n for n in nodes if not any(n in running[m] for m in members)]
    if stopped:
        lines.append(f"    * Stopped: [ {' '.join(stopped)} ]")
    return lines


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


def config_doc(
    spec: ClusterSpec, version: int, source: str, by: str | None = None, old: ClusterSpec | None = None
) -> bytes:
    doc = {"version": version, "spec": spec.model_dump(mode="json"), "source": source, "at": time.time()}
    if by is not None:
        doc["by"] = by
    doc["changes"] = hist.spec_changes(old, spec)
    return st.dumps(doc)


async def current_config(store: Store, keys: st.Keys) -> tuple[bytes | None, int, ClusterSpec | None]:
    kv = await store.get(keys.config)
    if kv is None:
        return None, 0, None
    found = st.config_of({keys.config: kv.value}, keys)
    return kv.value, (found[0] if found else 0), (found[1] if found else None)


def config_writes(
    keys: st.Keys, raw: bytes | None, spec: ClusterSpec, version: int, source: str, by: str | None
) -> list[Put | Delete]:
    """The new version, the one it replaces kept in the history, and the history's oldest entry
    dropped beyond KEEP: one transaction, so no version is ever lost half-way."""
    old = st.config_of({keys.config: raw}, keys) if raw is not None else None
    ops: list[Put | Delete] = [Put(keys.config, config_doc(spec, version + 1, source, by, old[1] if old else None))]
    if raw is not None and version >= 1:
        ops.append(Put(hist.history_key(keys.prefix, version), raw))
    pruned = hist.pruned_version(version + 1)
    if pruned is not None:
        ops.append(Delete(hist.history_key(keys.prefix, pruned)))
    return ops


async def write_config(
    store: Store, keys: st.Keys, raw: bytes | None, spec: ClusterSpec, version: int, source: str, by: str | None = None
) -> bool:
    """Compare-and-set: only if the configuration is still the one that was read."""
    guard = Compare(keys.config, "value", "==", raw) if raw is not None else absent(keys.config)
    return (await store.txn([guard], config_writes(keys, raw, spec, version, source, by))).succeeded


async def edit_config(
    store: Store, keys: st.Keys, edit: Callable[[ClusterSpec], None], source: str, by: str | None = None
) -> int:
    for _ in range(10):
        raw, version, spec = await current_config(store, keys)
        if spec is None:
            raise InputError.at("no configuration applied yet (hakeeper config apply FILE)")
        edit(spec)
        problems = find_problems(spec)
        if problems:
            raise InputError([Problem(p.message, field=".".join(map(str, p.path))) for p in problems])
        if await write_config(store, keys, raw, spec, version, source, by):
            return version + 1
        await asyncio.sleep(0.05)
    raise InputError.at("the configuration kept changing underneath; try again")


@dataclass
class Preview:
    """What applying a configuration would do now: the transition (orphans labelled), and what
    it removes, which needs the operator's confirmation."""

    lines: list[str]
    removed_resources: list[str] = field(default_factory=list)
    removed_nodes: list[str] = field(default_factory=list)
    # Resources active somewhere that the new configuration does not have, "X on n1".
    orphans: list[str] = field(default_factory=list)

    @property
    def removes(self) -> bool:
        return bool(self.removed_resources or self.removed_nodes or self.orphans)

    def removal(self) -> str:
        """`resources a, b; nodes n3` (lists truncated) for a one-line confirmation or refusal."""
        parts = []
        resources = sorted(set(self.removed_resources) | {o.split(" on ", 1)[0] for o in self.orphans})
        if resources:
            parts.append(f"resource{'s' if len(resources) > 1 else ''} {names_list(resources)}")
        if self.removed_nodes:
            parts.append(f"node{'s' if len(self.removed_nodes) > 1 else ''} {names_list(self.removed_nodes)}")
        return " and ".join(parts)


_SUMMARY_LINE = re.compile(r"^(\s*\* \S+\s+)(\S+)(.*)$")


def preview_of(spec: ClusterSpec, values: Mapping[str, bytes], keys: st.Keys, now: float) -> Preview:
    """The transition this configuration would cause from the store's current values (the leader
    computes the same), with stops of resources it no longer configures labelled "(orphan)", and
    what it removes from the configuration in the store. Pure."""
    found = st.config_of(values, keys)
    changes = hist.spec_changes(found[1] if found else None, spec)
    removed_resources, removed_nodes = hist.removed(changes)
    # Nodes dropped from the configuration stay in the scheduler's view (standby) while they run
    # something, so what they run is stopped; the leader schedules with the same input.
    plan = schedule(*st.scheduler_input(spec, values, keys, now))
    configured = {p.id for p in spec.resources.primitives}
    lines = []
    for line in plan.summary:
        match = _SUMMARY_LINE.match(line)
        if match and _base(match.group(2)) not in configured and match.group(1).split()[1] != "Fence":
            line = f"{match.group(1)}{match.group(2)} (orphan){match.group(3)}"
        lines.append(line)
    stopping = {(a.resource, a.node) for a in plan.actions if a.task == "stop" and a.resource}
    stopping |= {(_base(r), n) for r, n in stopping if r}
    orphans = []
    for (node, rsc), doc in sorted(st.statuses(values, keys).items()):
        if _base(rsc) in configured or not st.active(doc):
            continue
        orphans.append(f"{rsc} on {node}")
        if (rsc, node) not in stopping and (_base(rsc), node) not in stopping:
            why = "its node is no longer configured" if node in removed_nodes else "the scheduler plans no stop"
            lines.append(f"  * Orphan {rsc} (active on {node}) is not stopped by this transition: {why}")
    active = {o.split(" on ", 1)[0] for o in orphans} | {_base(o.split(" on ", 1)[0]) for o in orphans}
    lines += [
        f"  * Remove resource {r} from the configuration (not active anywhere)"
        for r in removed_resources
        if r not in active and not any(_base(a.resource or "") == r for a in plan.actions)
    ]
    lines += [f"  * Remove node {n} from the configuration" for n in removed_nodes]
    return Preview(lines or ["(no changes)"], removed_resources, removed_nodes, orphans)


async def preview(store: Store, keys: st.Keys, spec: ClusterSpec) -> Preview:
    kvs, _ = await store.get_prefix(keys.prefix)
    return preview_of(spec, {kv.key: kv.value for kv in kvs}, keys, time.time())


def names_list(names: Iterable[str], limit: int = 12) -> str:
    """`a, b, c` or `a, b, c, ... (40 more)`: a list that keeps an error on one readable line."""
    items = list(names)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def unknown(what: str, name: str, known: Iterable[str], where: str) -> InputError:
    """One line: no such node/resource/ticket, and the ones there are."""
    names = sorted(set(known))
    listing = f"known: {names_list(names)}" if names else f"no {what} is known yet"
    return InputError.at(f"no {what} {name!r}; {listing}", file=where, field=what)


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
        # A resource removed since it was moved may still have its constraints: those count too.
        def ours(c: Location) -> bool:
            return c.resource == rsc and c.id.startswith(("cli-prefer-", "cli-ban-"))

        if rsc not in {x.id for x in all_resources(spec)} and not any(ours(c) for c in spec.constraints.location):
            raise unknown("resource", rsc, (x.id for x in all_resources(spec)), "the configuration")
        spec.constraints.location = [c for c in spec.constraints.location if not ours(c)]

    return edit


def target_role(rsc: str, role: str | None) -> Callable[[ClusterSpec], None]:
    def edit(spec: ClusterSpec) -> None:
        _known(spec, rsc, None)
        for item in all_resources(spec):
            if item.id == rsc:
                item.meta.target_role = role  # type: ignore[assignment]

    return edit


def primitives_of(spec: ClusterSpec, rsc: str) -> set[str]:
    """The primitives a resource id stands for: itself, a group's members, a clone's child's."""
    groups = {g.id: g.members for g in spec.resources.groups}
    clones = {c.id: c.child for c in spec.resources.clones}
    top = clones.get(rsc, rsc)
    return set(groups.get(top, [top])) | {rsc}


def all_resources(spec: ClusterSpec) -> list[Primitive | Group | Clone]:
    r = spec.resources
    return [*r.primitives, *r.groups, *r.clones]


def _known(spec: ClusterSpec, rsc: str, node: str | None) -> None:
    if rsc not in {x.id for x in all_resources(spec)}:
        raise unknown("resource", rsc, (x.id for x in all_resources(spec)), "the configuration")
    if node is not None and node not in {n.name for n in spec.nodes}:
        raise unknown("node", node, (n.name for n in spec.nodes), "the configuration")


async def cleanup(store: Store, keys: st.Keys, rsc: str, node: str | None) -> list[str]:
    """Forget rsc's fail counts (on one node or all) and ask those nodes to probe again."""
    kvs, _ = await store.get_prefix(keys.prefix)
    values = {kv.key: kv.value for kv in kvs}
    found = st.config_of(values, keys)
    spec = found[1] if found else None
    reports = st.statuses(values, keys)
    fails = st.fail_counts(values, keys)
    # Known: configured, or reported somewhere (an orphan's failures can be cleaned up too).
    known = {x.id for x in all_resources(spec)} if spec is not None else set()
    known |= {r for (_, r) in [*reports, *fails]}
    if rsc not in known:
        raise unknown("resource", rsc, known, "the configuration or the status")
    known_nodes = {n.name for n in spec.nodes} if spec is not None else set()
    known_nodes |= {n for (n, _) in [*reports, *fails]}
    if node is not None and node not in known_nodes:
        raise unknown("node", node, known_nodes, "the configuration")
    targets = primitives_of(spec, rsc) if spec is not None else {rsc}
    ops: list[Any] = []
    nodes = set()
    pairs = {(n, r) for (n, r) in fails if r in targets} | {
        (n, r) for (n, r), d in reports.items() if r in targets and d.get("failed")
    }
    for n, r in sorted(pairs):
        if node is None or n == node:
            ops.append(Delete(keys.fail_of(n, r)))
            nodes.add(n)
    # One probe request per node (a transaction may not name a key twice).
    ops += [Put(keys.reprobe + n, st.dumps({"resource": rsc, "at": time.time()})) for n in sorted(nodes)]
    if ops:
        await store.txn([], ops)
    return sorted(nodes)
