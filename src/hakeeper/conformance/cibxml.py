"""Render a native `ClusterSpec` (with its state) as a Pacemaker CIB that crm_simulate accepts.

The status section is what a real cluster would have written: node_state membership flags, an
operation history per resource (start and monitor with call ids, transition keys, rc codes and the
operation digests Pacemaker recomputes), probes that found a resource stopped, and fail counts as
transient attributes. Digests matter: Pacemaker compares them with the configured definition and
restarts every resource whose digest differs ("resource definition change").

Only what `cibgen` produces is covered with full fidelity: primitives without instance attributes
beyond `params`, groups, clones, location (node score or rules), colocation, order, cluster options
and resource defaults. Node utilization and resource sets are not rendered.
"""

from __future__ import annotations

import functools
import hashlib
import re
from xml.sax.saxutils import quoteattr

from lxml import etree

from hakeeper.spec.model import (
    ClusterSpec,
    ClusterState,
    Colocation,
    DateExpression,
    Expression,
    Location,
    Meta,
    NodeState,
    Order,
    Primitive,
    ResourceStatus,
    Rule,
)
from hakeeper.spec.values import INFINITY, AgentRef, format_score

VALIDATE_WITH = "pacemaker-3.9"
FEATURE_SET = "3.16.1"  # the newest Pacemaker 2.1.5 accepts in a CIB (-S refuses 3.16.2)
_UUID = "6a1d0c6e-0000-4000-8000-686b65657065"
_ORIGIN = "hakeeper-cibgen"

E = etree.Element
SE = etree.SubElement


def op_digest(params: dict[str, str], interval_ms: int, timeout_ms: int) -> str:
    """Pacemaker's op-digest: the MD5 of the sorted parameter element it passes to the agent.

    For a recurring operation the operation's timeout is part of it (as CRM_meta_timeout); for a
    start, stop or probe only the resource's parameters are.
    """
    return _digest(tuple(sorted(params.items())), interval_ms, timeout_ms)


@functools.lru_cache(maxsize=4096)
def _digest(params: tuple[tuple[str, str], ...], interval_ms: int, timeout_ms: int) -> str:
    attrs = dict(params)
    if interval_ms > 0:
        attrs["CRM_meta_timeout"] = str(timeout_ms)
    body = "".join(f" {name}={quoteattr(attrs[name])}" for name in sorted(attrs))
    return hashlib.md5(f" <parameters{body}/>\n".encode()).hexdigest()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _nvset(parent: etree._Element, tag: str, set_id: str, pairs: dict[str, str]) -> None:
    if not pairs:
        return
    holder = SE(parent, tag, id=set_id)
    for name, value in pairs.items():
        SE(holder, "nvpair", id=f"{set_id}-{name}", name=name, value=value)


def _meta_pairs(meta: Meta) -> dict[str, str]:
    pairs: dict[str, str] = {}
    data = meta.model_dump(exclude_none=True, by_alias=True)
    for name, value in data.items():
        pairs[name] = _text(value)
    return pairs


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{round(seconds * 1000)}ms"


def _primitive(parent: etree._Element, prim: Primitive) -> None:
    agent: AgentRef = prim.agent
    attrs = {"id": prim.id, "class": agent.cls, "type": agent.type}
    if agent.provider:
        attrs["provider"] = agent.provider
    el = SE(parent, "primitive", attrs)
    _nvset(el, "instance_attributes", f"{prim.id}-instance_attributes", prim.params)
    for i, (node, values) in enumerate(prim.node_params.items()):
        # Per-node parameters: a set chosen by a #uname rule, scored to win over the plain one.
        set_id = f"{prim.id}-node-params-{i}"
        holder = SE(el, "instance_attributes", id=set_id, score="1")
        rule = SE(holder, "rule", id=f"{set_id}-rule", score="0")
        SE(rule, "expression", id=f"{set_id}-expr", attribute="#uname", operation="eq", value=node)
        for name, value in values.items():
            SE(holder, "nvpair", id=f"{set_id}-{name}", name=name, value=value)
    if prim.operations:
        ops = SE(el, "operations")
        for op in prim.operations:
            op_attrs = {"id": f"{prim.id}-{op.name}-{_duration(op.interval)}", "name": op.name,
                        "interval": _duration(op.interval), "timeout": _duration(op.timeout)}
            if op.role:
                op_attrs["role"] = op.role
            if op.on_fail:
                op_attrs["on-fail"] = op.on_fail
            if not op.enabled:
                op_attrs["enabled"] = "false"
            SE(ops, "op", op_attrs)
    _nvset(el, "meta_attributes", f"{prim.id}-meta_attributes", _meta_pairs(prim.meta))


def _resources(parent: etree._Element, spec: ClusterSpec) -> None:
    res = spec.resources
    prims = {p.id: p for p in res.primitives}
    groups = {g.id: g for g in res.groups}
    clone_of = {c.child: c for c in res.clones}
    group_of = {m: g.id for g in res.groups for m in g.members}
    emitted: set[str] = set()

    def group(into: etree._Element, gid: str) -> None:
        g = groups[gid]
        el = SE(into, "group", id=gid)
        _nvset(el, "meta_attributes", f"{gid}-meta_attributes", _meta_pairs(g.meta))
        for member in g.members:
            _primitive(el, prims[member])

    # Top level in the order primitives were declared, so both engines see one resource order.
    for prim in res.primitives:
        top = group_of.get(prim.id, prim.id)
        top = clone_of[top].id if top in clone_of else top
        if top in emitted:
            continue
        emitted.add(top)
        if top in groups:
            group(parent, top)
        elif top in prims:
            _primitive(parent, prims[top])
        else:
            clone = next(c for c in res.clones if c.id == top)
            el = SE(parent, "clone", id=clone.id)
            if clone.child in groups:
                group(el, clone.child)
            else:
                _primitive(el, prims[clone.child])
            _nvset(el, "meta_attributes", f"{clone.id}-meta_attributes", _meta_pairs(clone.meta))


def _expression(parent: etree._Element, expr: Expression, eid: str) -> None:
    attrs = {"id": eid, "attribute": expr.attribute, "operation": expr.operation}
    if expr.value is not None:
        attrs["value"] = expr.value
    if expr.type != "string":
        attrs["type"] = expr.type
    SE(parent, "expression", attrs)


def _date_expression(parent: etree._Element, expr: DateExpression, eid: str) -> None:
    attrs = {"id": expr.id or eid, "operation": expr.operation}
    for name in ("start", "end"):
        if getattr(expr, name) is not None:
            attrs[name] = str(getattr(expr, name))
    el = SE(parent, "date_expression", attrs)
    for tag, part in (("duration", expr.duration), ("date_spec", expr.date_spec)):
        if part is not None:
            fields = part.model_dump(exclude_none=True)
            fields.setdefault("id", f"{attrs['id']}-{tag}")
            SE(el, tag, {k: str(v) for k, v in fields.items()})


def _rule(parent: etree._Element, rule: Rule, rid: str) -> None:
    attrs = {"id": rule.id or rid, "boolean-op": rule.boolean_op}
    if rule.score is not None:
        attrs["score"] = str(format_score(rule.score))
    if rule.score_attribute:
        attrs["score-attribute"] = rule.score_attribute
    if rule.role:
        attrs["role"] = rule.role
    el = SE(parent, "rule", attrs)
    for i, item in enumerate(rule.expressions):
        if isinstance(item, Rule):
            _rule(el, item, f"{attrs['id']}-rule{i}")
        elif isinstance(item, DateExpression):
            _date_expression(el, item, f"{attrs['id']}-expr{i}")
        else:
            _expression(el, item, f"{attrs['id']}-expr{i}")


def _location(parent: etree._Element, loc: Location) -> None:
    if loc.sets or (loc.resource is None and loc.resource_pattern is None):
        raise ValueError(f"location {loc.id}: resource sets are not rendered")
    attrs = {"id": loc.id}
    if loc.resource is not None:
        attrs["rsc"] = loc.resource
    else:
        attrs["rsc-pattern"] = str(loc.resource_pattern)
    if loc.node is not None:
        attrs["node"] = loc.node
        attrs["score"] = str(format_score(loc.score if loc.score is not None else INFINITY))
    if loc.role:
        attrs["role"] = loc.role
    if loc.resource_discovery != "always":
        attrs["resource-discovery"] = loc.resource_discovery
    el = SE(parent, "rsc_location", attrs)
    for i, rule in enumerate(loc.rules):
        _rule(el, rule, f"{loc.id}-rule{i}")


def _colocation(parent: etree._Element, col: Colocation) -> None:
    if col.sets or col.resource is None or col.with_resource is None:
        raise ValueError(f"colocation {col.id}: resource sets are not rendered")
    attrs = {"id": col.id, "rsc": col.resource, "with-rsc": col.with_resource,
             "score": str(format_score(col.score))}
    if col.resource_role:
        attrs["rsc-role"] = col.resource_role
    if col.with_role:
        attrs["with-rsc-role"] = col.with_role
    if col.node_attribute != "#uname":
        attrs["node-attribute"] = col.node_attribute
    SE(parent, "rsc_colocation", attrs)


def _order(parent: etree._Element, order: Order) -> None:
    if order.sets or order.first is None or order.then is None:
        raise ValueError(f"order {order.id}: resource sets are not rendered")
    attrs = {"id": order.id, "first": order.first, "then": order.then, "kind": order.kind,
             "first-action": order.first_action, "then-action": order.effective_then_action}
    if order.symmetrical is not None:
        attrs["symmetrical"] = _text(order.symmetrical)
    SE(parent, "rsc_order", attrs)


def _configuration(cib: etree._Element, spec: ClusterSpec) -> None:
    conf = SE(cib, "configuration")
    opts = spec.cluster
    props = {"cluster-name": opts.name, "stonith-enabled": _text(opts.stonith_enabled),
             "symmetric-cluster": _text(opts.symmetric_cluster), "no-quorum-policy": opts.no_quorum_policy}
    if opts.maintenance_mode:
        props["maintenance-mode"] = "true"
    if opts.stop_all_resources:
        props["stop-all-resources"] = "true"
    if not opts.start_failure_is_fatal:
        props["start-failure-is-fatal"] = "false"
    props.update(opts.other)
    config = SE(conf, "crm_config")
    _nvset(config, "cluster_property_set", "cib-bootstrap-options", props)
    nodes = SE(conf, "nodes")
    for index, node in enumerate(spec.nodes, start=1):
        el = SE(nodes, "node", id=str(index), uname=node.name)
        _nvset(el, "instance_attributes", f"nodes-{index}", node.attributes)
    _resources(SE(conf, "resources"), spec)
    cons = SE(conf, "constraints")
    for loc in spec.constraints.location:
        _location(cons, loc)
    for col in spec.constraints.colocation:
        _colocation(cons, col)
    for order in spec.constraints.order:
        _order(cons, order)
    defaults: dict[str, str] = {}
    if opts.resource_stickiness:
        defaults["resource-stickiness"] = str(format_score(opts.resource_stickiness))
    if opts.migration_threshold != INFINITY:
        defaults["migration-threshold"] = str(format_score(opts.migration_threshold))
    if defaults:
        _nvset(SE(conf, "rsc_defaults"), "meta_attributes", "rsc-options", defaults)


_SPECIAL = re.compile(r'[&<>"\n\r\t]')


def _q(value: object) -> str:
    """An attribute value, quoted and escaped (the common case, nothing to escape, fast)."""
    text = str(value)
    return f'"{text}"' if _SPECIAL.search(text) is None else quoteattr(text)


def _attrs(pairs: dict[str, str]) -> str:
    return "".join(f" {name}={_q(value)}" for name, value in pairs.items())


class _History:
    """One node's operation history with increasing call ids, as its executor would write it.

    Written as text, not built with lxml: a full history of a large cluster has hundreds of
    thousands of entries, and text is several times faster to produce.
    """

    def __init__(self, out: list[str], node: str) -> None:
        self.out = out
        self.node = _q(node)
        self.call = 0
        self.action = 0

    def resource(self, prim: Primitive) -> None:
        self.out.append(_lrm_resource(prim.id, prim.agent.cls, prim.agent.type, prim.agent.provider))

    def end_resource(self) -> None:
        self.out.append("        </lrm_resource>\n")

    def op(self, prim: Primitive, key_id: str, name: str, interval_s: float, rc: int, target_rc: int,
           when: int) -> None:
        self.call += 1
        self.action += 1
        interval_ms = round(interval_s * 1000)
        timeout_ms = next((round(o.timeout * 1000) for o in prim.operations
                           if o.name == name and round(o.interval * 1000) == interval_ms), 20000)
        key = f"{self.action}:1:{target_rc}:{_UUID}"
        self.out.append(
            f"          <lrm_rsc_op id={_q(key_id)} operation_key={_q(f'{prim.id}_{name}_{interval_ms}')}"
            f' operation="{name}" crm-debug-origin="{_ORIGIN}" crm_feature_set="{FEATURE_SET}"'
            f' transition-key="{key}" transition-magic="0:{rc};{key}" exit-reason="" on_node={self.node}'
            f' call-id="{self.call}" rc-code="{rc}" op-status="0" interval="{interval_ms}"'
            f' last-rc-change="{when}" exec-time="10" queue-time="0"'
            f' op-digest="{op_digest(prim.params, interval_ms, timeout_ms)}"/>\n')


@functools.lru_cache(maxsize=65536)
def _lrm_resource(rid: str, cls: str, type_: str, provider: str | None) -> str:
    attrs = {"id": rid, "class": cls, "type": type_}
    if provider:
        attrs["provider"] = provider
    return f"        <lrm_resource{_attrs(attrs)}>\n"


def _membership(ns: NodeState) -> dict[str, str]:
    if ns.online:
        return {"in_ccm": "true", "crmd": "online", "join": "member", "expected": "member"}
    if ns.unclean:
        # Lost while a member: expected up but gone from the membership.
        return {"in_ccm": "false", "crmd": "offline", "join": "down", "expected": "member"}
    return {"in_ccm": "false", "crmd": "offline", "join": "down", "expected": "down"}


def _fail_attrs(rs: ResourceStatus, prim: Primitive, now: int) -> dict[str, str]:
    if not rs.failed or rs.fail_count <= 0:
        return {}
    op = rs.failed_op or "monitor"
    interval = next((round(o.interval * 1000) for o in prim.operations if o.name == op), 0) \
        if op == "monitor" else 0
    when = int(rs.last_failure) if rs.last_failure is not None else now
    suffix = f"{rs.resource}#{op}_{interval}"
    return {f"fail-count-{suffix}": str(format_score(rs.fail_count)), f"last-failure-{suffix}": str(when)}


def _status(spec: ClusterSpec, state: ClusterState, probe_everywhere: bool) -> list[str]:
    out = ["  <status>\n"]
    prims = {p.id: p for p in spec.resources.primitives}
    now = int(state.now) if state.now is not None else 1_700_000_000
    by_node: dict[str, list[ResourceStatus]] = {}
    for rs in state.resources:
        by_node.setdefault(rs.node, []).append(rs)
    for index, node in enumerate(spec.nodes, start=1):
        nid = str(index)
        ns = state.nodes.get(node.name, NodeState())
        flags = {"id": nid, "uname": node.name, "crm-debug-origin": _ORIGIN, **_membership(ns)}
        out.append(f"    <node_state{_attrs(flags)}>\n")
        transient = dict(ns.attributes)
        if ns.standby:
            transient["standby"] = "on"
        entries = by_node.get(node.name, [])
        for rs in entries:
            transient.update(_fail_attrs(rs, prims[rs.resource.split(":")[0]], now))
        if transient:
            out.append(f'      <transient_attributes id="{nid}">\n'
                       f'        <instance_attributes id="status-{nid}">\n')
            out += [f"          <nvpair{_attrs({'id': f'status-{nid}-{k}', 'name': k, 'value': v})}/>\n"
                    for k, v in transient.items()]
            out.append("        </instance_attributes>\n      </transient_attributes>\n")
        out.append(f'      <lrm id="{nid}">\n      <lrm_resources>\n')
        history = _History(out, node.name)
        for rs in entries:
            _history(history, prims[rs.resource.split(":")[0]], rs, now)
        if probe_everywhere and (ns.online or ns.unclean):
            known = {rs.resource.split(":")[0] for rs in entries}
            for prim in spec.resources.primitives:
                if prim.id not in known:
                    _probe(history, prim, now)
        out.append("      </lrm_resources>\n      </lrm>\n    </node_state>\n")
    out.append("  </status>\n")
    return out


def _probe(h: _History, prim: Primitive, now: int) -> None:
    h.resource(prim)
    h.op(prim, f"{prim.id}_last_0", "monitor", 0, rc=7, target_rc=7, when=now - 3600)
    h.end_resource()


def _history(h: _History, prim: Primitive, rs: ResourceStatus, now: int) -> None:
    if rs.role == "Stopped" and not rs.failed:
        _probe(h, prim, now)
        return
    h.resource(prim)
    pid = prim.id
    if rs.failed and rs.failed_op == "start":
        when = int(rs.last_failure) if rs.last_failure is not None else now
        h.op(prim, f"{pid}_last_0", "start", 0, rc=1, target_rc=0, when=when)
        h.op(prim, f"{pid}_last_failure_0", "start", 0, rc=1, target_rc=0, when=when)
        h.end_resource()
        return
    h.op(prim, f"{pid}_last_0", "start", 0, rc=0, target_rc=0, when=now - 3600)
    for op in prim.operations:
        if op.name != "monitor" or op.interval <= 0 or not op.enabled:
            continue
        failed = rs.failed and rs.failed_op in (None, "monitor")
        ms = round(op.interval * 1000)
        when = int(rs.last_failure) if failed and rs.last_failure is not None else now - 3600
        h.op(prim, f"{pid}_monitor_{ms}", "monitor", op.interval, rc=1 if failed else 0, target_rc=0, when=when)
        if failed:
            h.op(prim, f"{pid}_last_failure_0", "monitor", op.interval, rc=1, target_rc=0, when=when)
        break
    h.end_resource()


def render_cib(spec: ClusterSpec, *, epoch: int = 1, probe_everywhere: bool = False) -> bytes:
    """The CIB XML (UTF-8 bytes) for `spec`; its `state` (or all nodes online, nothing run) as status.

    With `probe_everywhere`, every node that is up (or lost uncleanly) also records a "not running"
    probe for each primitive it has no other history of: the full history of a long-lived cluster.
    """
    state = spec.state or ClusterState(nodes={n.name: NodeState() for n in spec.nodes})
    names = [n.name for n in spec.nodes]
    dc = next((str(i) for i, name in enumerate(names, start=1)
               if state.nodes.get(name, NodeState()).online), "1")
    cib = E("cib", {"validate-with": VALIDATE_WITH, "crm_feature_set": FEATURE_SET, "epoch": str(epoch),
                    "num_updates": "0", "admin_epoch": "0", "have-quorum": "1" if state.have_quorum else "0",
                    "dc-uuid": dc})
    _configuration(cib, spec)
    head = etree.tostring(cib, pretty_print=True, encoding="unicode")
    assert head.endswith("</cib>\n")
    return "".join([head[: -len("</cib>\n")], *_status(spec, state, probe_everywhere), "</cib>\n"]).encode()
