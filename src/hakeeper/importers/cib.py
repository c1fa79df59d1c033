"""Pacemaker CIB XML → ClusterSpec with its state, in one streaming pass.

The configuration section is built as a tree (it is small); the status section, which for a large
cluster holds millions of operation records, is consumed element by element and freed as it goes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any

from lxml import etree

from hakeeper.errors import InputError
from hakeeper.importers import native
from hakeeper.importers.cib_constraints import ConstraintReader
from hakeeper.importers.cib_defaults import DefaultSet, read_sets
from hakeeper.importers.cib_resources import ResourceReader, agent_of
from hakeeper.importers.cib_status import StatusReader, is_true
from hakeeper.importers.cib_stream import StatusTarget
from hakeeper.importers.cib_xml import CibContext, Element, children, line
from hakeeper.importers.located import SourceMap
from hakeeper.spec.checks import find_problems
from hakeeper.spec.model import ClusterOptions, ClusterSpec, ClusterState, Meta, Node, Primitive

# crm_config names that have a field of their own; everything else is kept in `other`.
_OPTIONS = {"cluster-name": "name", "symmetric-cluster": "symmetric-cluster",
            "stonith-enabled": "stonith-enabled", "no-quorum-policy": "no-quorum-policy",
            "maintenance-mode": "maintenance-mode", "stop-all-resources": "stop-all-resources",
            "start-failure-is-fatal": "start-failure-is-fatal",
            "default-resource-stickiness": "resource-stickiness"}
_RSC_DEFAULT_OPTIONS = ("resource-stickiness", "migration-threshold")
_IGNORED_SECTIONS = frozenset({"acls", "alerts", "fencing-topology"})
_TAGS = ("cib", "configuration", "status", "node_state")


# Pacemaker's configurations nest a dozen elements at most (rules within rules within a
# constraint); libxml2 allows 2048.
MAX_CONFIGURATION_DEPTH = 64


def _too_deep(root: Element, limit: int) -> Element | None:
    """The first element more than `limit` levels below `root`, or None (iterative: any depth)."""
    stack = [(root, 0)]
    while stack:
        elem, depth = stack.pop()
        if depth > limit:
            return elem
        stack.extend((child, depth + 1) for child in elem)
    return None


class _Builder:
    def __init__(self, file: str, now: float | None) -> None:
        self.now = now
        self.ctx = CibContext(file)
        self.source = SourceMap(file)
        self.spec = ClusterSpec()
        self.status: StatusReader | None = None
        self.startup_fencing = True
        self.node_attributes: dict[str, dict[str, str]] = {}
        self.cib: dict[str, str] = {}
        self.remote_typed: set[str] = set()
        self.remote_names: set[str] = set()
        self.per_node_params: list[tuple[Primitive, Element]] = []
        self.warnings: list[str] = []

    def configuration(self, config: Element) -> None:
        deep = _too_deep(config, MAX_CONFIGURATION_DEPTH)
        if deep is not None:
            # The readers below recurse into rules and sets: bounded here, never a RecursionError.
            raise self.ctx.error(f"nested more than {MAX_CONFIGURATION_DEPTH} elements deep inside "
                                 "<configuration>", deep, deep.get("id"))
        when = self.cib.get("execution-date")
        if when is not None and when.isdigit():
            self.now = float(when)  # the CIB says when it is to be evaluated: that wins
        self.ctx.now = self.now
        self.ctx.index(config)
        sections = {c.tag: c for c in children(config)}
        for tag, elem in sections.items():
            if tag not in ("crm_config", "nodes", "resources", "constraints", "rsc_defaults", "op_defaults",
                           "tags") and tag not in _IGNORED_SECTIONS:
                raise self.ctx.unsupported(f"configuration section <{tag}>", elem)
        if "tags" in sections and children(sections["tags"]):
            raise self.ctx.unsupported("a tag", children(sections["tags"])[0])
        rsc_sets = read_sets(self.ctx, sections["rsc_defaults"]) if "rsc_defaults" in sections else []
        op_sets = read_sets(self.ctx, sections["op_defaults"]) if "op_defaults" in sections else []
        rsc_defaults = self._options(sections.get("crm_config"), sections.get("rsc_defaults"), rsc_sets)
        for default in op_sets:
            if default.condition is None:  # conditional ones are applied to the operations they match
                for key, value in default.values.items():
                    self.spec.cluster.other.setdefault(f"op-defaults.{key}", value)
        if "nodes" in sections:
            self._nodes(sections["nodes"])
        resources = ResourceReader(self.ctx, self.source, op_sets)
        if "resources" in sections:
            resources.read(sections["resources"])
        self._apply_conditional_defaults(resources, rsc_sets)
        self._apply_rsc_defaults(resources, rsc_defaults)
        resources.apply_inheritance(rsc_defaults)
        self.spec.resources = resources.resources
        self.per_node_params = resources.per_node_params
        self.warnings = resources.warnings
        remote = self._implicit_remote_nodes()
        self.remote_names = set(remote) | self.remote_typed
        constraints = ConstraintReader(self.ctx, self.source)
        if "constraints" in sections:
            constraints.read(sections["constraints"])
        self.spec.constraints = constraints.constraints
        ids = {n.get("id") or "": n.get("uname") or "" for n in
               (sections["nodes"].iterchildren("node") if "nodes" in sections else [])}
        self.status = StatusReader(resources.info, self.spec.cluster.stonith_enabled, ids, remote_nodes=remote,
                                   remote_typed=self.remote_typed, now=self.now,
                                   migratable_ids={rid for rid, i in resources.info.items() if i.allow_migrate})

    def _options(self, crm_config: Element | None, rsc_defaults_section: Element | None,
                 rsc_sets: list[DefaultSet]) -> Meta:
        options: dict[str, Any] = {}
        other: dict[str, str] = {}
        if crm_config is not None:
            sets = self.ctx.sets(crm_config, "cluster_property_set", first="cib-bootstrap-options")
            for name, value in sets.items():
                if name in _OPTIONS:
                    options[_OPTIONS[name]] = value
                else:
                    other[name] = value
            self.startup_fencing = is_true(other.get("startup-fencing", "true"))
        defaults: dict[str, str] = {}
        if rsc_defaults_section is not None:
            for default in rsc_sets:
                if default.condition is None:
                    for key, value in default.values.items():
                        defaults.setdefault(key, value)
            for name in _RSC_DEFAULT_OPTIONS:
                if name in defaults:
                    options[name] = defaults.pop(name)
        options["other"] = other
        where = crm_config if crm_config is not None else rsc_defaults_section
        if where is not None:
            self.spec.cluster = self.ctx.validate(ClusterOptions, options, where)
        if rsc_defaults_section is None:
            return Meta()
        meta: Meta = self.ctx.validate(Meta, defaults, rsc_defaults_section)
        return meta

    def _apply_conditional_defaults(self, resources: ResourceReader, sets: list[DefaultSet]) -> None:
        """Defaults for resources of one class/provider/type: set on the matching primitives, where
        neither they nor a parent say otherwise and no earlier unconditional default covers them."""
        if all(default.condition is None for default in sets):
            return  # the usual case: no per-agent defaults, nothing to work out per primitive
        covered: set[str] = set()
        parents: dict[str, list[Meta]] = {}
        r = resources.resources
        clone_of = {c.child: c for c in r.clones}
        for group in r.groups:
            for member in group.members:
                parents[member] = [group.meta] + ([clone_of[group.id].meta] if group.id in clone_of else [])
        for prim in r.primitives:
            parents.setdefault(prim.id, [clone_of[prim.id].meta] if prim.id in clone_of else [])
        explicit = {p.id: [p.meta.model_dump(by_alias=True, exclude_none=True)]
                    + [m.model_dump(by_alias=True, exclude_none=True) for m in parents[p.id]]
                    for p in r.primitives}
        for default in sets:
            if default.condition is None:
                covered |= default.values.keys()
                continue
            for prim in r.primitives:
                if not default.condition.matches(prim.agent, None):
                    continue
                values = {k: v for k, v in default.values.items()
                          if k not in covered and not any(k in m for m in explicit[prim.id])}
                if values:
                    mine = prim.meta.model_dump(by_alias=True, exclude_none=True)
                    prim.meta = Meta.model_validate({**values, **mine})

    def _apply_rsc_defaults(self, resources: ResourceReader, defaults: Meta) -> None:
        # A default applies where the resource does not say; set on top-level resources only, so
        # members keep inheriting through their group or clone exactly as before.
        values = defaults.model_dump(by_alias=True, exclude_none=True)
        if not values:
            return
        for rsc in resources.top_level:
            mine = rsc.meta.model_dump(by_alias=True, exclude_none=True)
            rsc.meta = Meta.model_validate({**values, **mine})

    def _nodes(self, section: Element) -> None:
        for elem in section.iterchildren("node"):
            name = elem.get("uname") or elem.get("id")
            attrs = self.ctx.sets(elem, "instance_attributes")
            data: dict[str, Any] = {"name": name, "attributes": attrs,
                                    "utilization": self.ctx.sets(elem, "utilization")}
            if elem.get("score") is not None:
                data["score"] = elem.get("score")
            node: Node = self.ctx.validate(Node, data, elem)
            self.source.record(("nodes", len(self.spec.nodes)), line(elem))
            self.source.record(("state", "nodes", node.name), line(elem))
            self.spec.nodes.append(node)
            self.node_attributes[node.name] = attrs
            if elem.get("type") == "remote":
                self.remote_typed.add(node.name)

    def _implicit_remote_nodes(self) -> dict[str, str]:
        """Remote and guest nodes exist because a resource provides them, with or without <node>."""
        known = {n.name for n in self.spec.nodes}
        remote: dict[str, str] = {}
        for prim in self.spec.resources.primitives:
            name = None
            if str(prim.agent) == "ocf:pacemaker:remote":
                name = prim.id
            extra = prim.meta.model_extra or {}
            if "remote-node" in extra:
                name = str(extra["remote-node"])
            if name:
                remote[name] = prim.id
                if name not in known:
                    known.add(name)
                    self.spec.nodes.append(Node(name=name))
        return remote

    def _node_params(self, state: ClusterState) -> None:
        """Parameters chosen by rules on node attributes, per node (the state's attributes: the
        configured ones with the transient ones over them, plus #uname, #id and #kind)."""
        for prim, elem in self.per_node_params:
            for name, node in state.nodes.items():
                attrs = {**node.attributes, "#uname": name, "#id": name,
                         "#kind": "remote" if name in self.remote_names else "cluster"}
                values = native.equivalent(agent_of(elem), self.ctx.sets(elem, "instance_attributes", node=attrs))[1]
                changed = {k: v for k, v in values.items() if prim.params.get(k) != v}
                if changed:
                    prim.node_params[name] = changed

    def finish(self) -> ClusterSpec:
        if self.status is None:
            raise InputError.at("the CIB has no <configuration> section", file=self.ctx.file, line=1)
        names = [n.name for n in self.spec.nodes]
        quorum = self.cib.get("have-quorum")
        state = self.status.finish(
            names, startup_fencing=self.startup_fencing,
            have_quorum=True if quorum is None else is_true(quorum),
            # suicide only applies with fencing and once the cluster had quorum (or no-quorum-panic).
            suicide_without_quorum=(self.spec.cluster.no_quorum_policy == "suicide"
                                    and self.spec.cluster.stonith_enabled
                                    and is_true(self.cib.get("no-quorum-panic"))),
            node_attributes=self.node_attributes,
            ignore_quorum=self.spec.cluster.no_quorum_policy == "ignore")
        dc = self.cib.get("dc-uuid")
        if dc is not None:
            state.dc = self.status.node_names_by_id.get(dc, dc) if dc in self.status.node_names_by_id else None
        state.now = self.now
        self.spec.state = state
        self._node_params(state)
        problems = find_problems(self.spec)
        if problems:
            raise self.source.error(problems)
        return self.spec


def read_cib(source: str | Path | IO[bytes], file: str | None = None, *, now: float | None = None) -> ClusterSpec:
    """Import a CIB (read_cib_with_warnings, the warnings left out)."""
    return read_cib_with_warnings(source, file, now=now)[0]


def read_cib_with_warnings(
    source: str | Path | IO[bytes], file: str | None = None, *, now: float | None = None
) -> tuple[ClusterSpec, list[str]]:
    """Import a CIB from a path or a binary stream; InputError naming file and line if it is not one.
    The warnings name file, line and primitive for what the import changed or dropped.

    `now` (seconds since the epoch) is when the status is evaluated: failures older than a resource's
    failure-timeout are forgotten. A CIB's own `execution-date` takes precedence; with neither,
    failures never expire.

    Two passes: the configuration as a tree with line numbers (stopping where it ends), then the
    status section as parser events without a tree (`cib_stream`), which is what keeps a CIB with
    hundreds of thousands of histories fast and small.
    """
    name = file or (str(source) if isinstance(source, str | Path) else "<input>")
    builder = _Builder(name, now)
    if not isinstance(source, str | Path) and not _seekable(source):
        source = io.BytesIO(source.read())  # read twice: the configuration, then the status
    try:
        start = source.tell() if not isinstance(source, str | Path) else 0
        _configuration_pass(builder, source, name)
        if builder.status is not None:
            if not isinstance(source, str | Path):
                source.seek(start)
            # lxml's stubs type a target's attributes as str | bytes; with str input they are str.
            target: Any = StatusTarget(builder.status)
            parser = etree.XMLParser(target=target, huge_tree=True, remove_comments=True,
                                     resolve_entities=False, no_network=True)
            etree.parse(str(source) if isinstance(source, Path) else source, parser)
    except etree.XMLSyntaxError as exc:
        # libxml2 may end its message with a line break and a second location: keep one line.
        message = " ".join(str(exc.msg).split())
        raise InputError.at(f"not a CIB: {message}", file=name, line=exc.lineno or 1) from None
    except OSError as exc:
        raise InputError.at(f"cannot read: {exc.strerror or exc}", file=name) from None
    return builder.finish(), builder.warnings


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _configuration_pass(builder: _Builder, source: str | Path | IO[bytes], name: str) -> None:
    events = etree.iterparse(source, events=("start", "end"), tag=_TAGS, huge_tree=True,
                             remove_comments=True, resolve_entities=False, no_network=True)
    first = True
    for event, elem in events:
        if first:
            first = False
            if elem.tag != "cib":
                raise InputError.at(f"not a CIB: the root element is <{elem.tag}>, not <cib>",
                                    file=name, line=line(elem))
            builder.cib = dict(elem.attrib)
        tag = elem.tag
        if event == "start":
            if tag == "node_state" and builder.status is None:
                raise builder.ctx.unsupported("a status section before the configuration", elem)
            if tag == "status" and builder.status is not None:
                return  # the rest is the second pass's
        elif tag == "configuration":
            builder.configuration(elem)
    if first:
        raise InputError.at("not a CIB: no <cib> element", file=name, line=1)
