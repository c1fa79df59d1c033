"""CIB `<resources>` → the spec's primitives, groups and clones (promotable `master` included)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hakeeper.importers import native
from hakeeper.importers.cib_defaults import DefaultSet
from hakeeper.importers.cib_xml import CibContext, Element, children, line
from hakeeper.importers.located import SourceMap
from hakeeper.spec.model import Clone, Group, Meta, Operation, Primitive, Resources
from hakeeper.spec.values import AgentRef, parse_duration

# Old names Pacemaker still accepts for clone meta.
_META_ALIASES = {"master-max": "promoted-max", "master-node-max": "promoted-node-max"}
# Operation attributes that only tune timing or recording; they do not change placement.
_OP_IGNORED = frozenset({"id", "description", "record-pending", "start-delay", "interval-origin",
                         "requires"})
_OP_FIELDS = {"name": "name", "interval": "interval", "timeout": "timeout", "role": "role",
              "on-fail": "on-fail", "enabled": "enabled"}


def _iso_seconds(text: str) -> str:
    """Pacemaker also reads `P10S` (ISO 8601 without the T) as ten seconds."""
    if not text.lstrip().startswith(("P", "p")):
        return text  # the usual case (10s, 20000ms): no regular expression per operation
    match = re.fullmatch(r"[Pp](\d+)[Ss]", text.strip())
    return f"{match.group(1)}s" if match else text


@dataclass
class RscInfo:
    """What the status reader needs to know about one configured primitive."""

    agent: str
    promotable: bool = False
    managed: bool = True
    # (operation name, interval in ms) → configured on-fail
    on_fail: dict[tuple[str, int], str] = field(default_factory=dict)
    clone: str | None = None
    failure_timeout: float = 0.0  # effective (own, group's, clone's or rsc_defaults'), 0 = never
    allow_migrate: bool = False  # effective allow-migrate (clones never migrate)
    in_container: bool = False  # meta container=...: failures recover the container


def agent_of(elem: Element) -> str:
    """A <primitive>'s agent as hakeeper writes it: class:provider:type, or class:type."""
    klass, provider, kind = elem.get("class"), elem.get("provider"), elem.get("type")
    return f"{klass}:{provider}:{kind}" if provider else f"{klass}:{kind}"


@dataclass
class ResourceReader:
    ctx: CibContext
    source: SourceMap
    op_defaults: list[DefaultSet] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    info: dict[str, RscInfo] = field(default_factory=dict)
    # Top-level resources (not inside a group or clone), where rsc_defaults apply.
    top_level: list[Primitive | Group | Clone] = field(default_factory=list)
    # Primitives whose parameters depend on the node (a rule on node attributes), with their element.
    per_node_params: list[tuple[Primitive, Element]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "file:line: id: what was dropped, and why"

    def read(self, section: Element) -> None:
        for elem in children(section):
            made = self._resource(elem, parent=None)
            self.top_level.append(made)

    def _resource(self, elem: Element, parent: Element | None) -> Primitive | Group | Clone:
        tag = elem.tag
        if tag == "primitive":
            return self._primitive(elem)
        if tag == "group":
            return self._group(elem)
        if tag in ("clone", "master") and parent is None:
            return self._clone(elem)
        if tag in ("template", "bundle"):
            raise self.ctx.unsupported(f"a {tag}", elem)
        raise self.ctx.unsupported(f"<{tag}> here", elem)

    def _meta(self, elem: Element) -> Meta:
        # "#default" is Pacemaker's way of writing "not set".
        values = {_META_ALIASES.get(k, k): v for k, v in self.ctx.sets(elem, "meta_attributes").items()
                  if v != "#default"}
        meta: Meta = self.ctx.validate(Meta, values, elem)
        return meta

    def _primitive(self, elem: Element) -> Primitive:
        if elem.get("template") is not None:
            raise self.ctx.unsupported("a primitive built from a template", elem)
        agent = agent_of(elem)
        try:
            ref: AgentRef | None = AgentRef.parse(agent)
        except ValueError:
            ref = None  # reported with its line when the primitive is validated
        ops = [self._operation(op, ref) for op in elem.iterchildren("operations")
               for op in children(self.ctx.deref(op)) if op.tag == "op"]
        # An OCF agent whose job a native class does (seed 002's nova-compute): that class, its
        # params translated, a warning per param dropped. The status keeps the CIB's agent.
        native_agent, params, notes = native.equivalent(agent, self.ctx.sets(elem, "instance_attributes"))
        self.warnings.extend(f"{self.ctx.file}:{line(elem)}: {elem.get('id')}: {note}" for note in notes)
        data: dict[str, Any] = {
            "id": elem.get("id"), "agent": native_agent,
            "params": params,
            "operations": ops,
            "meta": self._meta(elem),
            "utilization": self.ctx.sets(elem, "utilization"),
        }
        prim: Primitive = self.ctx.validate(Primitive, data, elem)
        self.source.record(("resources", "primitives", len(self.resources.primitives)), line(elem))
        self.resources.primitives.append(prim)
        info = RscInfo(agent=agent, managed=prim.meta.is_managed is not False,
                       in_container="container" in (prim.meta.model_extra or {}))
        for op in ops:
            if op.on_fail is not None:
                info.on_fail[(op.name, round(op.interval * 1000))] = op.on_fail
        self.info[prim.id] = info
        if self.ctx.node_dependent(elem, "instance_attributes"):
            self.per_node_params.append((prim, elem))  # resolved once every node's attributes are known
        return prim

    def _operation(self, elem: Element, agent: AgentRef | None) -> Operation:
        data: dict[str, Any] = {}
        for key, value in elem.attrib.items():
            if key in _OP_FIELDS:
                data[_OP_FIELDS[key]] = value
            elif key not in _OP_IGNORED:
                raise self.ctx.error(f"operation attribute {key!r} is not supported yet", elem, str(key))
        for key, value in self.ctx.sets(elem, "meta_attributes").items():
            if key in _OP_FIELDS:
                data.setdefault(_OP_FIELDS[key], value)
        if "interval" in data:
            data["interval"] = _iso_seconds(data["interval"])
            try:
                interval_ms = round(parse_duration(data["interval"]) * 1000)
            except ValueError as exc:
                raise self.ctx.error(str(exc), elem, "interval") from None
        else:
            interval_ms = 0
        for default in self.op_defaults:
            if default.condition is not None and (
                    agent is None or not default.condition.matches(agent, (data.get("name", ""), interval_ms))):
                continue
            for key, value in default.values.items():
                if key in ("timeout", "on-fail", "enabled", "role"):
                    data.setdefault(key, value)
        if "timeout" in data:
            data["timeout"] = _iso_seconds(data["timeout"])
        op: Operation = self.ctx.validate(Operation, data, elem)
        return op

    def _group(self, elem: Element) -> Group:
        members = []
        for child in children(elem):
            if child.tag == "primitive":
                members.append(self._primitive(child).id)
            elif child.tag in ("meta_attributes", "instance_attributes", "utilization"):
                continue
            else:
                raise self.ctx.unsupported(f"<{child.tag}> inside a group", child)
        data = {"id": elem.get("id"), "members": members, "meta": self._meta(elem)}
        group: Group = self.ctx.validate(Group, data, elem)
        self.source.record(("resources", "groups", len(self.resources.groups)), line(elem))
        self.resources.groups.append(group)
        return group

    def _clone(self, elem: Element) -> Clone:
        meta = self._meta(elem)
        if elem.tag == "master":
            meta.promotable = True
        inner = [c for c in children(elem) if c.tag in ("primitive", "group")]
        others = [c for c in children(elem)
                  if c.tag not in ("primitive", "group", "meta_attributes", "instance_attributes")]
        if others:
            raise self.ctx.unsupported(f"<{others[0].tag}> inside a clone", others[0])
        if len(inner) != 1:
            raise self.ctx.error("a clone holds exactly one primitive or group", elem, elem.get("id"))
        child = self._primitive(inner[0]) if inner[0].tag == "primitive" else self._group(inner[0])
        clone: Clone = self.ctx.validate(Clone, {"id": elem.get("id"), "child": child.id, "meta": meta}, elem)
        self.source.record(("resources", "clones", len(self.resources.clones)), line(elem))
        self.resources.clones.append(clone)
        members = child.members if isinstance(child, Group) else [child.id]
        for member in members:
            info = self.info[member]
            info.clone = clone.id
            info.promotable = bool(meta.promotable)
        return clone

    def apply_inheritance(self, rsc_defaults: Meta) -> None:
        """is-managed flows from defaults to clones and groups to their members (as in Pacemaker)."""
        default_managed = rsc_defaults.is_managed is not False
        groups = {g.id: g for g in self.resources.groups}
        clones_of: dict[str, Clone] = {c.child: c for c in self.resources.clones}
        prims = {p.id: p for p in self.resources.primitives}
        for group in self.resources.groups:
            for member in group.members:
                self._inherit(prims[member].meta, group.meta, clones_of.get(group.id), default_managed,
                              member)
        grouped = {m for g in groups.values() for m in g.members}
        for prim in self.resources.primitives:
            if prim.id not in grouped:
                self._inherit(prim.meta, None, clones_of.get(prim.id), default_managed, prim.id)

    def _inherit(self, meta: Meta, group: Meta | None, clone: Clone | None, default: bool, rid: str) -> None:
        chain = [m for m in (meta, group, clone.meta if clone else None) if m is not None]
        managed = next((m.is_managed for m in chain if m.is_managed is not None), default)
        self.info[rid].managed = managed
        timeout = next((m.failure_timeout for m in chain if m.failure_timeout is not None), None)
        self.info[rid].failure_timeout = timeout or 0.0
        self.info[rid].in_container = any("container" in (m.model_extra or {}) for m in chain)
        # Remote node connections may migrate unless told otherwise (Pacemaker's default for them).
        remote = self.info[rid].agent == "ocf:pacemaker:remote"
        migrate = next((m.allow_migrate for m in chain if m.allow_migrate is not None), remote)
        self.info[rid].allow_migrate = bool(migrate) and clone is None
