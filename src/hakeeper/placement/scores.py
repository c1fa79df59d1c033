"""Node scores per resource from location constraints, rules, stickiness and fail counts.

Rules follow Pacemaker's rule expressions over node attributes (the node's own, the transient ones
from the state, and the built-ins #uname, #id and #kind). A rule with `score-attribute` scores a
node with the value of that attribute there.
"""

from __future__ import annotations

import re

from hakeeper.placement.cluster import NEG, CloneE, Cluster, Entity, GroupE, NodeInfo, Rsc, leaf_primitives
from hakeeper.spec.dates import date_matches
from hakeeper.spec.model import ClusterSpec, DateExpression, Expression, Location, Rule
from hakeeper.spec.values import INFINITY, add_scores, parse_score


def _compare(expr: Expression, actual: str | None) -> bool:
    op = expr.operation
    if op == "defined":
        return actual is not None
    if op == "not_defined":
        return actual is None
    if actual is None or expr.value is None:
        return op == "ne" and actual is None and expr.value is not None
    kind = expr.type
    if kind == "string" and op in ("lt", "gt", "lte", "gte"):
        # Pacemaker's default type for comparisons is numeric ("number" when a value has a
        # decimal point, else "integer"); the spec cannot tell "string" from "not given".
        kind = "number" if "." in actual or "." in expr.value else "integer"
    a: float | str | tuple[int, ...]
    b: float | str | tuple[int, ...]
    if kind in ("integer", "number"):
        try:
            a, b = float(actual), float(expr.value)
            if kind == "integer":
                a, b = float(int(a)), float(int(b))
        except ValueError:
            a, b = actual, expr.value
    elif expr.type == "version":
        a, b = _version(actual), _version(expr.value)
    else:
        a, b = actual, expr.value
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    try:
        if op == "lt":
            return a < b  # type: ignore[operator]
        if op == "gt":
            return a > b  # type: ignore[operator]
        if op == "lte":
            return a <= b  # type: ignore[operator]
        if op == "gte":
            return a >= b  # type: ignore[operator]
    except TypeError:
        return False
    return False


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def rule_matches(rule: Rule, attrs: dict[str, str], now: float | None = None) -> bool:
    """Whether a rule holds on a node with `attrs`; date expressions are evaluated at `now`."""
    results = []
    for expr in rule.expressions:
        if isinstance(expr, Rule):
            results.append(rule_matches(expr, attrs, now))
        elif isinstance(expr, DateExpression):
            results.append(date_matches(expr, now))
        else:
            results.append(_compare(expr, attrs.get(expr.attribute)))
    if not results:
        return True
    return all(results) if rule.boolean_op == "and" else any(results)


def rule_score(rule: Rule, attrs: dict[str, str], now: float | None = None) -> int | None:
    """The score a matching rule gives on a node, or None when it does not match."""
    if not rule_matches(rule, attrs, now):
        return None
    if rule.score_attribute:
        raw = attrs.get(rule.score_attribute)
        if raw is None:
            return None
        try:
            return parse_score(raw)
        except ValueError:
            return 0
    return rule.score if rule.score is not None else 0


def location_targets(loc: Location, cluster: Cluster) -> list[Entity]:
    ids: list[str] = []
    if loc.resource:
        ids.append(loc.resource)
    if loc.resource_pattern:
        pattern = re.compile(loc.resource_pattern)
        ids += [e for e in cluster.entities if pattern.fullmatch(e) and ":" not in e]
    for rset in loc.sets:
        ids += rset.resources
    return [cluster.entities[i] for i in ids if i in cluster.entities]


def location_scores(loc: Location, nodes: list[NodeInfo], now: float | None = None) -> list[tuple[int, int, str]]:
    """(node index, score, words) for every node the constraint speaks about."""
    out: list[tuple[int, int, str]] = []
    if loc.node is not None:
        for node in nodes:
            if node.name == loc.node:
                out.append((node.index, loc.score if loc.score is not None else 0,
                            f"location constraint {loc.id} prefers {node.name}"))
        return out
    for node in nodes:
        attrs = node.attributes
        best: int | None = None
        words = ""
        for i, rule in enumerate(loc.rules):
            score = rule_score(rule, attrs, now)
            if score is None:
                continue
            # Several matching rules of one constraint: Pacemaker adds each.
            best = score if best is None else add_scores(best, score)
            words = f"rule {rule.id or i} of location constraint {loc.id} matches"
        if best is not None:
            out.append((node.index, best, words))
    return out


def _ban_targets(entity: Entity) -> list[Rsc]:
    return leaf_primitives(entity)


def apply_locations(spec: ClusterSpec, cluster: Cluster,
                    now: float | None = None) -> dict[str, list[tuple[int, int, str]]]:
    """Apply location constraints (date rules evaluated at `now`); returns promotion-role locations
    per clone id."""
    promotion: dict[str, list[tuple[int, int, str]]] = {}
    allowed: dict[int, set[int]] = {}
    for loc in spec.constraints.location:
        role = loc.role or _rules_role(loc)
        for target in location_targets(loc, cluster):
            scores = location_scores(loc, cluster.nodes, now)
            if role == "Promoted":
                clone = target if isinstance(target, CloneE) else None
                if clone is None and target.parent is not None and isinstance(target.parent, CloneE):
                    clone = target.parent
                if clone is not None:
                    promotion.setdefault(clone.id, []).extend(scores)
                continue
            for rsc in _ban_targets(target):
                # A constraint on a group scores its first member only (whose placement the
                # others follow); the later members are merely allowed there, as in Pacemaker.
                later = isinstance(rsc.parent, GroupE) and rsc.parent.members[0] is not rsc \
                    and target is not rsc
                for node, score, words in scores:
                    if not later:
                        _add(rsc, node, score, words)
                    allowed.setdefault(id(rsc), set()).add(node)
    if not cluster.symmetric:
        # Opt-in cluster: a node no location constraint names is not allowed.
        for rsc in cluster.primitives:
            ok = allowed.get(id(rsc), set())
            rsc.allowed = ok
            for info in cluster.nodes:
                if info.index not in ok:
                    rsc.weights[info.index] = NEG
                    rsc.contributions.append((info.index, NEG,
                                              "the cluster is opt-in (symmetric-cluster: false) "
                                              "and no location constraint allows this node"))
    return promotion


def _rules_role(loc: Location) -> str | None:
    roles = {r.role for r in loc.rules if r.role}
    return roles.pop() if len(roles) == 1 else None


def _add(rsc: Rsc, node: int, score: int, words: str) -> None:
    rsc.weights[node] = add_scores(rsc.weights[node], score)
    rsc.contributions.append((node, score, words))


def apply_stickiness(cluster: Cluster) -> None:
    for rsc in cluster.primitives:
        if not rsc.managed or rsc.stickiness < 1 or len(rsc.running_on) != 1:
            continue
        node = rsc.running_on[0]
        if rsc.weights[node] <= NEG and not cluster.symmetric:
            continue
        _add(rsc, node, rsc.stickiness, f"stickiness {rsc.stickiness}: it runs there now")


def apply_fail_counts(cluster: Cluster, fail: dict[tuple[str, int], tuple[int, float | None]],
                      now: float | None) -> None:
    """Ban a resource from a node where its fail count reached migration-threshold.

    Walks the fail counts (few), not resources by nodes (many).
    """
    for (rid, node), entry in fail.items():
        rsc = cluster.entities.get(rid)
        if isinstance(rsc, Rsc):
            _ban_failed(rsc, node, entry, now)


def _ban_failed(rsc: Rsc, node: int, entry: tuple[int, float | None], now: float | None) -> None:
    count, last = entry
    if rsc.failure_timeout and last is not None and now is not None \
            and last + rsc.failure_timeout <= now:
        return  # expired by failure-timeout
    if count < rsc.migration_threshold or rsc.migration_threshold <= 0:
        return
    words = f"failed {count} time(s) here, migration-threshold is {rsc.migration_threshold}"
    targets: list[Rsc] = [rsc]
    clone = rsc.parent if isinstance(rsc.parent, CloneE) else (
        rsc.parent.parent if isinstance(rsc.parent, GroupE) and isinstance(rsc.parent.parent, CloneE)
        else None)
    if clone is not None and not clone.unique:
        # An anonymous clone's failure bans the clone itself (Pacemaker bans the top resource):
        # every member of every instance.
        targets = leaf_primitives(clone)
        if clone.weights:
            clone.weights = list(clone.weights)  # replaced, not changed in place (cached lists)
            clone.weights[node] = NEG
    elif clone is not None and isinstance(rsc.parent, GroupE):
        targets = [m for inst in clone.instances for m in leaf_primitives(inst) if m.base == rsc.base]
    for target in targets:
        _add(target, node, -INFINITY, words)
