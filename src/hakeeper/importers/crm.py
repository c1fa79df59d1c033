"""crm shell configuration (as `crm configure show` prints it) → ClusterSpec.

Every statement is either imported with its meaning or refused with an error naming its line;
cross-reference problems found afterwards (unknown ids, duplicates, order cycles) are mapped back
to the line of the statement that defined the offending object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hakeeper.errors import read_input_text, shown_field
from hakeeper.importers import native
from hakeeper.importers.crm_constraints import ConstraintParser
from hakeeper.importers.crm_lexer import Statement, split_pair, statements, validate
from hakeeper.importers.located import SourceMap
from hakeeper.spec.checks import find_problems
from hakeeper.spec.model import Clone, ClusterOptions, ClusterSpec, Group, Meta, Node, Operation, Primitive

_OPTIONS = {"cluster-name": "name", "symmetric-cluster": "symmetric-cluster",
            "stonith-enabled": "stonith-enabled", "no-quorum-policy": "no-quorum-policy",
            "maintenance-mode": "maintenance-mode", "stop-all-resources": "stop-all-resources",
            "start-failure-is-fatal": "start-failure-is-fatal",
            "default-resource-stickiness": "resource-stickiness",
            "node-timeout": "node-timeout"}  # hakeeper's own: the agents' heartbeat timeout
_RSC_DEFAULT_OPTIONS = ("resource-stickiness", "migration-threshold")
_META_ALIASES = {"master-max": "promoted-max", "master-node-max": "promoted-node-max"}
_OP_FIELDS = frozenset({"interval", "timeout", "role", "on-fail", "enabled"})
_OP_IGNORED = frozenset({"description", "record-pending", "start-delay", "interval-origin", "requires"})
_UNSUPPORTED = {"rsc_template": "a resource template", "tag": "a tag",
                "fencing_topology": "fencing topology", "bundle": "a bundle",
                "role": "an ACL role", "user": "an ACL user", "acl_target": "an ACL target",
                "alert": "an alert", "schema": "a schema statement"}


class CrmReader:
    def __init__(self, file: str, *, stonith_enabled: bool | None = None) -> None:
        self.file = file
        self.source = SourceMap(file)
        self.spec = ClusterSpec()
        self.options: dict[str, Any] = {}
        self.other: dict[str, str] = {}
        self.rsc_defaults: dict[str, str] = {}
        self.op_defaults: dict[str, str] = {}
        self.stonith_enabled = stonith_enabled
        self.constraints = ConstraintParser(self.spec.constraints, self.source)
        self.options_line: Statement | None = None
        # What the import changed or left out without failing (`hakeeper import` prints them).
        self.warnings: list[str] = []

    def read(self, text: str) -> ClusterSpec:
        parts = statements(text, self.file)
        # Defaults first, wherever they appear: they apply to every resource.
        for st in parts:
            if st.kind == "op_defaults":
                self.op_defaults.update(self._pairs(st, st.words[1:]))
        for st in parts:
            self._statement(st)
        self._finish_options()
        from hakeeper.galera.spec_checks import galera_problems

        problems = find_problems(self.spec) + galera_problems(self.spec)
        if problems:
            raise self.source.error(problems)
        return self.spec

    def _statement(self, st: Statement) -> None:
        kind = st.kind
        if kind == "node":
            self._node(st)
        elif kind == "primitive":
            self._primitive(st)
        elif kind == "group":
            self._group(st)
        elif kind in ("clone", "ms", "master"):
            self._clone(st)
        elif kind in ("location", "colocation", "collocation", "order", "rsc_ticket"):
            self.constraints.parse(st)
        elif kind == "property":
            self.options_line = self.options_line or st
            for name, value in self._pairs(st, st.words[1:]).items():
                if name in _OPTIONS:
                    self.options[_OPTIONS[name]] = value
                else:
                    self.other[name] = value
        elif kind == "rsc_defaults":
            self.options_line = self.options_line or st
            self.rsc_defaults.update(self._pairs(st, st.words[1:]))
        elif kind == "op_defaults":
            pass  # read before everything else
        elif kind in _UNSUPPORTED:
            raise st.error(f"{_UNSUPPORTED[kind]} ({kind}) is not supported yet", kind)
        else:
            # Quoted only when it reads as a word: the file may not be a crm configuration at all.
            shown = shown_field(kind)
            raise st.error(f"unknown crm statement {kind!r}" if shown == kind else "not a crm statement", shown)

    def _pairs(self, st: Statement, words: list[str]) -> dict[str, str]:
        """`[$id=X] [NAME:] k=v ...` → {k: v}; the set's id or name is dropped (it names nothing we keep)."""
        values: dict[str, str] = {}
        for i, word in enumerate(words):
            pair = split_pair(word)
            if pair is None:
                if i == 0 and word.endswith(":"):
                    continue  # `property cib-bootstrap-options: ...`
                raise st.error(f"expected name=value, found {word!r}", word)
            if pair[0] in ("$id", "id") and i == 0:
                continue
            values[pair[0]] = pair[1]
        return values

    def _node(self, st: Statement) -> None:
        words = st.words[1:]
        if not words:
            raise st.error("a node needs a name", "node")
        first = words.pop(0)
        if first.startswith("$id="):
            first = words.pop(0) if words else ""
        if first.endswith(":") and words and split_pair(words[0]) is None and words[0] not in _NODE_SECTIONS:
            first = words.pop(0)  # `node ID: NAME`
        name = first.rstrip(":").split(":", 1)[0]  # `NAME:TYPE` or `NAME:`
        sections = _sections(st, words, _NODE_SECTIONS, allow_leading=("description",))
        data: dict[str, Any] = {"name": name, "attributes": sections.get("attributes", {}),
                                "utilization": sections.get("utilization", {})}
        node: Node = validate(Node, data, st)
        self.source.record(("nodes", len(self.spec.nodes)), st.line)
        self.spec.nodes.append(node)

    def _meta(self, st: Statement, values: dict[str, str]) -> Meta:
        meta: Meta = validate(Meta, {_META_ALIASES.get(k, k): v for k, v in values.items()
                                     if v != "#default"}, st)
        return meta

    def _primitive(self, st: Statement) -> None:
        if len(st.words) < 3:
            raise st.error("a primitive is written: primitive ID CLASS[:PROVIDER]:TYPE ...", "primitive")
        rid, agent = st.words[1], crm_agent(st.words[2])
        if agent.startswith("@"):
            raise st.error("a primitive built from a template is not supported yet", rid)
        words = st.words[3:]
        ops: list[Operation] = []
        rest: list[str] = []
        i = 0
        while i < len(words):
            if words[i] == "op":
                j = i + 2
                while j < len(words) and split_pair(words[j]) is not None:
                    j += 1
                if i + 1 >= len(words):
                    raise st.error("op needs a name", rid)
                ops.append(self._operation(st, words[i + 1], words[i + 2:j]))
                i = j
            else:
                rest.append(words[i])
                i += 1
        sections = _sections(st, rest, ("params", "meta", "utilization"))
        params = sections.get("params", {})
        agent, params, notes = native.equivalent(agent, params)  # an OCF agent whose job a native class does
        self.warnings.extend(f"{self.file}:{st.line}: {rid}: {note}" for note in notes)
        data = {"id": rid, "agent": agent, "params": params, "operations": ops,
                "meta": self._meta(st, sections.get("meta", {})), "utilization": sections.get("utilization", {})}
        prim: Primitive = validate(Primitive, data, st)
        self.source.record(("resources", "primitives", len(self.spec.resources.primitives)), st.line)
        self.spec.resources.primitives.append(prim)

    def _operation(self, st: Statement, name: str, words: list[str]) -> Operation:
        data: dict[str, Any] = {"name": name}
        for word in words:
            key, value = split_pair(word) or ("", "")
            if key in _OP_FIELDS:
                data[key] = value
            elif key not in _OP_IGNORED:
                raise st.error(f"operation attribute {key!r} is not supported yet", f"op {name}")
        for key, value in self.op_defaults.items():
            if key in ("timeout", "on-fail", "enabled"):
                data.setdefault(key, value)
        op: Operation = validate(Operation, data, st)
        return op

    def _members(self, st: Statement) -> tuple[list[str], dict[str, dict[str, str]]]:
        words = st.words[2:]
        end = 0
        while end < len(words) and words[end] not in ("meta", "params", "description") \
                and split_pair(words[end]) is None:
            end += 1
        members = words[:end]
        sections = _sections(st, words[end:], ("meta", "params"), allow_leading=("description",))
        if sections.get("params"):
            raise st.error(f"params on a {st.kind} are not supported yet", st.words[1])
        return members, sections

    def _group(self, st: Statement) -> None:
        if len(st.words) < 2:
            raise st.error("a group is written: group ID MEMBER...", "group")
        members, sections = self._members(st)
        data = {"id": st.words[1], "members": members, "meta": self._meta(st, sections.get("meta", {}))}
        group: Group = validate(Group, data, st)
        self.source.record(("resources", "groups", len(self.spec.resources.groups)), st.line)
        self.spec.resources.groups.append(group)

    def _clone(self, st: Statement) -> None:
        if len(st.words) < 3:
            raise st.error(f"a clone is written: {st.kind} ID CHILD [meta ...]", st.kind)
        members, sections = self._members(st)
        if len(members) != 1:
            raise st.error(f"a {st.kind} names exactly one child, not {len(members)}", st.words[1])
        meta = self._meta(st, sections.get("meta", {}))
        if st.kind in ("ms", "master"):
            meta.promotable = True
        clone: Clone = validate(Clone, {"id": st.words[1], "child": members[0], "meta": meta}, st)
        self.source.record(("resources", "clones", len(self.spec.resources.clones)), st.line)
        self.spec.resources.clones.append(clone)

    def _finish_options(self) -> None:
        options = dict(self.options)
        defaults = dict(self.rsc_defaults)
        for name in _RSC_DEFAULT_OPTIONS:
            if name in defaults:
                options[name] = defaults.pop(name)
        if self.stonith_enabled is not None:
            options["stonith-enabled"] = self.stonith_enabled
        options["other"] = {**self.other, **{f"op-defaults.{k}": v for k, v in self.op_defaults.items()}}
        where = self.options_line or Statement(["property"], 1, self.file)
        self.spec.cluster = validate(ClusterOptions, options, where)
        if defaults:
            self._apply_rsc_defaults(self._meta(where, defaults))

    def _apply_rsc_defaults(self, defaults: Meta) -> None:
        # Top-level resources only: members keep inheriting through their group or clone.
        r = self.spec.resources
        inner = {m for g in r.groups for m in g.members} | {c.child for c in r.clones}
        values = defaults.model_dump(by_alias=True, exclude_none=True)
        everything: list[Primitive | Group | Clone] = [*r.primitives, *r.groups, *r.clones]
        for rsc in everything:
            if rsc.id not in inner:
                rsc.meta = Meta.model_validate({**values, **rsc.meta.model_dump(by_alias=True, exclude_none=True)})


_NODE_SECTIONS = ("attributes", "utilization")
# hakeeper's own classes that need no type: `process` and `vip` alone name them, not OCF agents.
_BARE_CLASSES = frozenset({"process", "vip"})


def crm_agent(text: str) -> str:
    """crmsh's short forms → the full agent name. `crm configure show` prints an ocf:heartbeat
    agent by its type alone (`primitive p_IP IPaddr2`), and crmsh reads `ocf:TYPE` with the
    provider left out; both mean heartbeat's agent (crmsh would pick another provider only when
    heartbeat has none of that name, which an import cannot know). Every other form is kept."""
    if text.startswith("@") or text in _BARE_CLASSES:
        return text
    parts = text.split(":")
    if len(parts) == 1 and text:
        return f"ocf:heartbeat:{text}"
    if len(parts) == 2 and parts[0] == "ocf" and parts[1]:
        return f"ocf:heartbeat:{parts[1]}"
    return text


def _sections(st: Statement, words: list[str], names: tuple[str, ...],
              allow_leading: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """`params a=1 b=2 meta c=3` → {"params": {...}, "meta": {...}}; anything else is an error."""
    result: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for word in words:
        if word in names:
            current = result.setdefault(word, {})
            continue
        pair = split_pair(word)
        if pair is not None and current is not None:
            current[pair[0]] = pair[1]
        elif pair is not None and pair[0] in allow_leading:
            continue
        else:
            raise st.error(f"{word!r} is not supported yet here", st.words[1] if len(st.words) > 1 else st.kind)
    return result


def read_crm(path: str | Path, *, stonith_enabled: bool | None = None) -> ClusterSpec:
    """Import a crm shell file. `stonith_enabled` overrides the file's `property stonith-enabled`."""
    text = read_input_text(path)
    return parse_crm(text, str(path), stonith_enabled=stonith_enabled)


def parse_crm(text: str, file: str = "<input>", *, stonith_enabled: bool | None = None) -> ClusterSpec:
    return CrmReader(file, stonith_enabled=stonith_enabled).read(text)


def read_crm_with_warnings(path: str | Path) -> tuple[ClusterSpec, list[str]]:
    """`read_crm`, and the warnings of the import (params dropped in a translation to a native class)."""
    reader = CrmReader(str(path))
    return reader.read(read_input_text(path)), reader.warnings
