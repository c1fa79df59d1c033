"""ClusterSpec → crm shell syntax, laid out as `crm configure show` prints it, and readable back by
hakeeper's crm importer (`hakeeper.importers.crm`) into the same spec.

What crm shell syntax (as hakeeper reads it) cannot hold is written as a `#` comment saying what
was left out, never silently dropped: node scores, per-node parameters, location constraints over
resource sets, nested rules, and any value with a line break. Pure: text in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hakeeper.spec.model import (
    Clone,
    ClusterOptions,
    ClusterSpec,
    Colocation,
    DateExpression,
    Expression,
    Group,
    Location,
    Meta,
    Node,
    Order,
    Primitive,
    ResourceSet,
    Rule,
    TicketConstraint,
)
from hakeeper.spec.values import format_duration, format_score

_TYPES = ("string", "integer", "number", "version")
# Cluster options the importer maps from `property NAME=...` (the rest go to `other`).
_PROPERTIES = {
    "name": "cluster-name",
    "symmetric_cluster": "symmetric-cluster",
    "stonith_enabled": "stonith-enabled",
    "no_quorum_policy": "no-quorum-policy",
    "maintenance_mode": "maintenance-mode",
    "stop_all_resources": "stop-all-resources",
    "start_failure_is_fatal": "start-failure-is-fatal",
}
_OP_DEFAULTS = "op-defaults."


class _Unwritable(Exception):
    """A part of the spec crm shell syntax cannot hold; becomes a comment."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_RULE_SYNTAX = frozenset({"and", "or", "not"})


def _word(text: str) -> str:
    """A word as crm shell's lexer reads it back: bare when it can be, else double-quoted."""
    if "\n" in text or "\r" in text:
        raise _Unwritable("a value with a line break")
    # Rule syntax words would be read back as syntax, not as values.
    if text and text not in _RULE_SYNTAX and not any(c.isspace() or c in "\"'\\()[]" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pair(name: str, value: Any) -> str:
    return f"{name}={_word(_text(value))}" if _word(name) == name else _word(f"{name}={_text(value)}")


def _pairs(values: Mapping[str, Any]) -> str:
    return " ".join(_pair(k, v) for k, v in values.items())


def _statement(head: str, *sections: str) -> str:
    """crm's layout: the head, then each section on a continuation line."""
    return " \\\n\t".join([head, *(s for s in sections if s)])


def _meta(meta: Meta) -> str:
    values = meta.model_dump(mode="json", by_alias=True, exclude_none=True)
    return f"meta {_pairs(values)}" if values else ""


def _node(node: Node) -> list[str]:
    sections = []
    if node.attributes:
        sections.append(f"attributes {_pairs(node.attributes)}")
    if node.utilization:
        sections.append(f"utilization {_pairs(node.utilization)}")
    out = [_statement(f"node {_word(node.name)}", *sections)]
    if node.score:
        out.insert(0, f"# node {node.name}: score {format_score(node.score)} left out (crm shell cannot say it)")
    return out


def _primitive(prim: Primitive) -> list[str]:
    sections = []
    if prim.params:
        sections.append(f"params {_pairs(prim.params)}")
    sections.append(_meta(prim.meta))
    if prim.utilization:
        sections.append(f"utilization {_pairs(prim.utilization)}")
    for op in prim.operations:
        fields: dict[str, Any] = {"interval": format_duration(op.interval), "timeout": format_duration(op.timeout)}
        if op.role is not None:
            fields["role"] = op.role
        if op.on_fail is not None:
            fields["on-fail"] = op.on_fail
        if not op.enabled:
            fields["enabled"] = False
        sections.append(f"op {_word(op.name)} {_pairs(fields)}")
    out = [_statement(f"primitive {_word(prim.id)} {_word(str(prim.agent))}", *sections)]
    for node, params in prim.node_params.items():
        out.insert(0, f"# primitive {prim.id}: parameters on node {node} left out (crm shell cannot say them "
                      f"here): {' '.join(f'{k}={v}' for k, v in params.items())}".replace("\n", " "))
    return out


def _group(group: Group) -> str:
    return _statement(f"group {_word(group.id)} {' '.join(_word(m) for m in group.members)}", _meta(group.meta))


def _clone(clone: Clone) -> str:
    return _statement(f"clone {_word(clone.id)} {_word(clone.child)}", _meta(clone.meta))


# ----- constraints -----


def _sets(sets: Iterable[ResourceSet], qualifier: str) -> str:
    """Resource sets as crm shell writes them: a sequential set loose, a non-sequential one in
    ( ), one that does not require all in [ ]; each member with the set's role or action."""
    words = []
    for rset in sets:
        qual = getattr(rset, qualifier)
        names = [_word(f"{r}:{qual}" if qual else r) for r in rset.resources]
        if not rset.require_all:
            if rset.sequential:
                raise _Unwritable("a sequential resource set that does not require all")
            words.append(f"[ {' '.join(names)} ]")
        elif not rset.sequential:
            words.append(f"( {' '.join(names)} )")
        else:
            words += names
    return " ".join(words)


def _expression(expr: Expression | DateExpression | Rule) -> str:
    if isinstance(expr, Rule):
        raise _Unwritable("a nested rule")
    if isinstance(expr, DateExpression):
        if expr.operation == "gt" and expr.start is not None:
            return f"date gt {_word(expr.start)}"
        if expr.operation == "lt" and expr.end is not None:
            return f"date lt {_word(expr.end)}"
        if expr.operation == "date_spec" and expr.date_spec is not None:
            fields = expr.date_spec.model_dump(by_alias=True, exclude_none=True, exclude={"id"})
            return f"date spec {_pairs(fields)}"
        fields = {k: v for k, v in (("start", expr.start), ("end", expr.end)) if v is not None}
        if expr.duration is not None:
            fields.update(expr.duration.model_dump(by_alias=True, exclude_none=True, exclude={"id"}))
        return f"date in {_pairs(fields)}"
    if expr.operation in ("defined", "not_defined"):
        return f"{expr.operation} {_word(expr.attribute)}"
    value = expr.value or ""
    # A typed value says its type; so does a string that would otherwise read as one.
    if expr.type != "string" or (value.partition(":")[0] in _TYPES and ":" in value):
        value = f"{expr.type}:{value}"
    return f"{_word(expr.attribute)} {expr.operation} {_word(value)}"


def _rule(rule: Rule) -> str:
    options = {}
    if rule.id is not None:
        options["$id"] = rule.id
    if rule.role is not None:
        options["$role"] = rule.role
    if rule.score is not None and rule.score_attribute is not None:
        options["$score-attribute"] = rule.score_attribute
    if len(rule.expressions) < 2 and rule.boolean_op != "and":
        options["$boolean-op"] = rule.boolean_op
    head = format_score(rule.score) if rule.score is not None else rule.score_attribute or 0
    terms = f" {rule.boolean_op} ".join(_expression(e) for e in rule.expressions)
    return " ".join(w for w in ("rule", _pairs(options), f"{_word(str(head))}:", terms) if w)


def _location(c: Location) -> str:
    if c.sets:
        raise _Unwritable("a location over resource sets")
    rsc = f"/{c.resource_pattern}/" if c.resource_pattern is not None else c.resource or ""
    head = [f"location {_word(c.id)} {_word(rsc)}"]
    if c.role is not None:
        head.append(_pair("role", c.role))
    discovery = _pair("resource-discovery", c.resource_discovery) if c.resource_discovery != "always" else ""
    if c.rules:
        return _statement(" ".join([*head, discovery]).rstrip(), *(_rule(r) for r in c.rules))
    score = format_score(c.score) if c.score is not None else 0
    return " ".join(w for w in [*head, f"{score}:", _word(c.node or ""), discovery] if w)


def _colocation(c: Colocation) -> str:
    if c.sets:
        items = _sets(c.sets, "role")
    else:
        first = f"{c.resource}:{c.resource_role}" if c.resource_role else c.resource or ""
        then = f"{c.with_resource}:{c.with_role}" if c.with_role else c.with_resource or ""
        items = f"{_word(first)} {_word(then)}"
    extra = f" {_pair('node-attribute', c.node_attribute)}" if c.node_attribute != "#uname" else ""
    return f"colocation {_word(c.id)} {format_score(c.score)}: {items}{extra}"


def _order(c: Order) -> str:
    if c.sets:
        items = _sets(c.sets, "action")
    else:
        first = f"{c.first}:{c.first_action}" if c.first_action != "start" else c.first or ""
        then = f"{c.then}:{c.then_action}" if c.then_action is not None else c.then or ""
        items = f"{_word(first)} {_word(then)}"
    options = {}
    if c.symmetrical is not None:
        options["symmetrical"] = c.symmetrical
    if not c.require_all:
        options["require-all"] = False
    return " ".join(w for w in (f"order {_word(c.id)} {c.kind}: {items}", _pairs(options)) if w)


def _ticket(c: TicketConstraint) -> str:
    single = f"{c.resource}:{c.role}" if c.role else c.resource or ""
    items = _sets(c.sets, "role") if c.sets else _word(single)
    policy = f" {_pair('loss-policy', c.loss_policy)}" if c.loss_policy is not None else ""
    return f"rsc_ticket {_word(c.id)} {_word(c.ticket)}: {items}{policy}"


# ----- cluster options -----


def _options(opts: ClusterOptions) -> list[str]:
    props: dict[str, Any] = {name: getattr(opts, field) for field, name in _PROPERTIES.items()}
    if opts.node_timeout is not None:
        props["node-timeout"] = format_duration(opts.node_timeout)
    props.update({k: v for k, v in opts.other.items() if not k.startswith(_OP_DEFAULTS)})
    out = [_statement("property cib-bootstrap-options:", _pairs(props))]
    defaults = {"resource-stickiness": format_score(opts.resource_stickiness),
                "migration-threshold": format_score(opts.migration_threshold)}
    out.append(_statement("rsc_defaults rsc-options:", _pairs(defaults)))
    op_defaults = {k[len(_OP_DEFAULTS):]: v for k, v in opts.other.items() if k.startswith(_OP_DEFAULTS)}
    if op_defaults:
        out.append(_statement("op_defaults op-options:", _pairs(op_defaults)))
    return out


def _each(items: Iterable[Any], render: Any, kind: str) -> list[str]:
    out: list[str] = []
    for item in items:
        try:
            text = render(item)
        except _Unwritable as exc:
            name = getattr(item, "id", None) or getattr(item, "name", "?")
            out.append(f"# {kind} {str(name)!r} left out: crm shell syntax cannot hold {exc}")
            continue
        out += text if isinstance(text, list) else [text]
    return out


def render_crm(spec: ClusterSpec) -> str:
    """The spec as `crm configure show` would print it (Pacemaker 2 names: promotable clones as
    `clone ... meta promotable=true`, roles Promoted/Unpromoted)."""
    r, c = spec.resources, spec.constraints
    lines = [
        *_each(spec.nodes, _node, "node"),
        *_each(r.primitives, _primitive, "primitive"),
        *_each(r.groups, _group, "group"),
        *_each(r.clones, _clone, "clone"),
        *_each(c.location, _location, "location"),
        *_each(c.colocation, _colocation, "colocation"),
        *_each(c.order, _order, "order"),
        *_each(c.ticket, _ticket, "rsc_ticket"),
        *_each([spec.cluster], _options, "property"),
    ]
    return "\n".join(lines) + "\n"
