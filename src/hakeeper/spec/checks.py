"""Cross-reference checks on a spec: what pydantic cannot see field by field.

Each problem carries the path of the offending value (as in the YAML document), so the loader can
name its line; importers map the same paths to their own source lines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hakeeper.spec.model import ClusterSpec, ResourceSet

SpecPath = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecProblem:
    path: SpecPath
    message: str


def find_problems(spec: ClusterSpec) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    problems += _duplicate_ids(spec)
    problems += _structure(spec)
    problems += _constraint_references(spec)
    problems += _order_cycles(spec)
    problems += _state_references(spec)
    return problems


def resource_ids(spec: ClusterSpec) -> set[str]:
    r = spec.resources
    return {p.id for p in r.primitives} | {g.id for g in r.groups} | {c.id for c in r.clones}


def _duplicate_ids(spec: ClusterSpec) -> list[SpecProblem]:
    problems = []
    seen: dict[str, SpecPath] = {}
    r, c = spec.resources, spec.constraints
    entries: list[tuple[str, SpecPath]] = []
    entries += (
        [(p.id, ("resources", "primitives", i, "id")) for i, p in enumerate(r.primitives)]
        + [(g.id, ("resources", "groups", i, "id")) for i, g in enumerate(r.groups)]
        + [(k.id, ("resources", "clones", i, "id")) for i, k in enumerate(r.clones)]
        + [(x.id, ("constraints", "location", i, "id")) for i, x in enumerate(c.location)]
        + [(x.id, ("constraints", "colocation", i, "id")) for i, x in enumerate(c.colocation)]
        + [(x.id, ("constraints", "order", i, "id")) for i, x in enumerate(c.order)]
        + [(x.id, ("constraints", "ticket", i, "id")) for i, x in enumerate(c.ticket)]
    )
    for ident, path in entries:
        if ident in seen:
            first = ".".join(str(p) for p in seen[ident])
            problems.append(SpecProblem(path, f"duplicate id {ident!r} (first defined at {first})"))
        else:
            seen[ident] = path
    nodes: set[str] = set()
    for i, node in enumerate(spec.nodes):
        if node.name in nodes:
            problems.append(SpecProblem(("nodes", i, "name"), f"duplicate node {node.name!r}"))
        nodes.add(node.name)
    return problems


def _structure(spec: ClusterSpec) -> list[SpecProblem]:
    problems = []
    primitives = {p.id for p in spec.resources.primitives}
    groups = {g.id for g in spec.resources.groups}
    owner: dict[str, str] = {}
    for i, group in enumerate(spec.resources.groups):
        if not group.members:
            problems.append(SpecProblem(("resources", "groups", i, "members"), "a group needs members"))
        for j, member in enumerate(group.members):
            path: SpecPath = ("resources", "groups", i, "members", j)
            if member not in primitives:
                what = "a group" if member in groups else "unknown"
                problems.append(SpecProblem(path, f"group member {member!r} is {what}; members are primitives"))
            elif member in owner:
                problems.append(SpecProblem(path, f"{member!r} is already a member of {owner[member]!r}"))
            else:
                owner[member] = group.id
    cloned: dict[str, str] = {}
    for i, clone in enumerate(spec.resources.clones):
        path = ("resources", "clones", i, "child")
        if clone.child not in primitives and clone.child not in groups:
            problems.append(SpecProblem(path, f"clone child {clone.child!r} is not a primitive or group"))
        elif clone.child in owner:
            problems.append(SpecProblem(
                path, f"{clone.child!r} is a member of group {owner[clone.child]!r}; clone the group instead"))
        elif clone.child in cloned:
            problems.append(SpecProblem(path, f"{clone.child!r} is already cloned by {cloned[clone.child]!r}"))
        else:
            cloned[clone.child] = clone.id
    return problems


def _set_problems(sets: list[ResourceSet], known: set[str], path: SpecPath) -> list[SpecProblem]:
    problems = []
    for i, rset in enumerate(sets):
        if not rset.resources:
            problems.append(SpecProblem((*path, "sets", i, "resources"), "a resource set needs resources"))
        for j, rsc in enumerate(rset.resources):
            if rsc not in known:
                problems.append(SpecProblem((*path, "sets", i, "resources", j), f"unknown resource {rsc!r}"))
    return problems


def _constraint_references(spec: ClusterSpec) -> list[SpecProblem]:
    known = resource_ids(spec)
    problems = []

    def ref(name: str | None, path: SpecPath) -> None:
        if name is not None and name not in known:
            problems.append(SpecProblem(path, f"unknown resource {name!r}"))

    for i, loc in enumerate(spec.constraints.location):
        path: SpecPath = ("constraints", "location", i)
        ref(loc.resource, (*path, "resource"))
        problems.extend(_set_problems(loc.sets, known, path))
        targets = sum(x is not None for x in (loc.resource, loc.resource_pattern)) + bool(loc.sets)
        if targets != 1:
            problems.append(SpecProblem(path, "a location names exactly one of resource, resource-pattern, sets"))
        if loc.rules and (loc.node is not None or loc.score is not None):
            problems.append(SpecProblem(path, "a location has either node and score, or rules"))
        if not loc.rules and (loc.node is None or loc.score is None):
            problems.append(SpecProblem(path, "a location without rules needs node and score"))
    for i, col in enumerate(spec.constraints.colocation):
        path = ("constraints", "colocation", i)
        ref(col.resource, (*path, "resource"))
        ref(col.with_resource, (*path, "with"))
        problems.extend(_set_problems(col.sets, known, path))
        if bool(col.sets) == (col.resource is not None or col.with_resource is not None):
            problems.append(SpecProblem(path, "a colocation has either resource and with, or sets"))
        elif not col.sets and (col.resource is None or col.with_resource is None):
            problems.append(SpecProblem(path, "a colocation needs both resource and with"))
    for i, order in enumerate(spec.constraints.order):
        path = ("constraints", "order", i)
        ref(order.first, (*path, "first"))
        ref(order.then, (*path, "then"))
        problems.extend(_set_problems(order.sets, known, path))
        if bool(order.sets) == (order.first is not None or order.then is not None):
            problems.append(SpecProblem(path, "an order has either first and then, or sets"))
        elif not order.sets and (order.first is None or order.then is None):
            problems.append(SpecProblem(path, "an order needs both first and then"))
    for i, tc in enumerate(spec.constraints.ticket):
        path = ("constraints", "ticket", i)
        ref(tc.resource, (*path, "resource"))
        problems.extend(_set_problems(tc.sets, known, path))
        if bool(tc.sets) == (tc.resource is not None):
            problems.append(SpecProblem(path, "a ticket constraint names either resource or sets"))
        if not tc.ticket:
            problems.append(SpecProblem((*path, "ticket"), "a ticket constraint needs a ticket name"))
    return problems


def _order_cycles(spec: ClusterSpec) -> list[SpecProblem]:
    """A cycle of mandatory orders can never be satisfied: refuse it, naming one constraint in it."""
    edges: dict[tuple[str, str], list[tuple[tuple[str, str], int]]] = defaultdict(list)
    for i, order in enumerate(spec.constraints.order):
        if order.kind != "Mandatory":
            continue
        pairs: list[tuple[str, str, str, str]] = []
        if order.first and order.then:
            pairs.append((order.first, order.first_action, order.then, order.effective_then_action))
        for a, b in zip(order.sets, order.sets[1:], strict=False):
            for x in a.resources:
                for y in b.resources:
                    pairs.append((x, a.action or "start", y, b.action or "start"))
        for rset in order.sets:
            if rset.sequential:
                for x, y in zip(rset.resources, rset.resources[1:], strict=False):
                    pairs.append((x, rset.action or "start", y, rset.action or "start"))
        for first, fa, then, ta in pairs:
            edges[(first, fa)].append(((then, ta), i))
    state: dict[tuple[str, str], int] = {}  # 1 = on the current path, 2 = done

    def visit(node: tuple[str, str]) -> int | None:
        state[node] = 1
        for succ, idx in edges.get(node, []):
            if state.get(succ) == 1:
                return idx
            if succ not in state:
                found = visit(succ)
                if found is not None:
                    return found
        state[node] = 2
        return None

    for start in list(edges):
        if start not in state:
            idx = visit(start)
            if idx is not None:
                oid = spec.constraints.order[idx].id
                return [SpecProblem(("constraints", "order", idx),
                                    f"order {oid!r} closes a cycle of mandatory orders")]
    return []


def _state_references(spec: ClusterSpec) -> list[SpecProblem]:
    if spec.state is None:
        return []
    problems = []
    nodes = {n.name for n in spec.nodes}
    primitives = {p.id for p in spec.resources.primitives}
    for name in spec.state.nodes:
        if name not in nodes:
            problems.append(SpecProblem(("state", "nodes", name), f"unknown node {name!r}"))
    for i, status in enumerate(spec.state.resources):
        base = status.resource.split(":", 1)[0]
        # An orphan is by definition no longer configured: the scheduler stops it.
        if base not in primitives and not status.orphan:
            problems.append(SpecProblem(("state", "resources", i, "resource"),
                                        f"unknown primitive {status.resource!r}"))
        if status.node not in nodes:
            problems.append(SpecProblem(("state", "resources", i, "node"), f"unknown node {status.node!r}"))
    return problems
