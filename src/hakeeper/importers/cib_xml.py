"""Small helpers shared by the CIB readers: located errors, id references, name/value sets."""

from __future__ import annotations

from typing import Any

from lxml import etree
from pydantic import BaseModel, ValidationError

from hakeeper.errors import InputError, Problem
from hakeeper.placement.scores import rule_matches
from hakeeper.spec.model import DateExpression, DateSpec, DurationSpec, Expression, Rule
from hakeeper.spec.values import parse_score

Element = etree._Element


def line(elem: Element) -> int | None:
    """The element's line in its file (lxml's stubs type it loosely)."""
    value = elem.sourceline
    return value if isinstance(value, int) else None


class CibContext:
    """The file being read and every element with an id (for `id-ref`)."""

    def __init__(self, file: str, now: float | None = None) -> None:
        self.file = file
        self.ids: dict[str, Element] = {}
        # The evaluation time for date rules in name/value sets (crm_simulate -t, execution-date).
        self.now = now

    def index(self, root: Element) -> None:
        for elem in root.iter():
            ident = elem.get("id")
            if ident is not None and elem.get("id-ref") is None:
                self.ids.setdefault(ident, elem)

    def error(self, message: str, elem: Element, field: str | None = None) -> InputError:
        return InputError.at(message, file=self.file, line=line(elem), field=field)

    def unsupported(self, what: str, elem: Element) -> InputError:
        return self.error(f"{what} is not supported yet", elem, elem.get("id"))

    def deref(self, elem: Element) -> Element:
        """Follow `id-ref` to the element it names (same tag), or fail naming the reference."""
        ref = elem.get("id-ref")
        if ref is None:
            return elem
        target = self.ids.get(ref)
        if target is None or target.tag != elem.tag:
            raise self.error(f"id-ref {ref!r} names no {elem.tag}", elem, "id-ref")
        return target

    def sets(self, parent: Element, tag: str, *, first: str | None = None,
             node: dict[str, str] | None = None) -> dict[str, str]:
        """Values from the `<tag>` children of `parent` whose rules hold, as Pacemaker merges them:
        sets in order of their `score` (higher first; the set with id `first` before all), and
        the first set to name a value wins.

        Rules are resolved here, at `now`, on the attributes of `node`. Without one they see no
        node attributes, as in Pacemaker 2.1 (the sets of nodes, resources' meta and cluster
        options are unpacked without a node); resource parameters are also resolved per node.
        """
        found: list[tuple[tuple[bool, int, int], Element]] = []
        for index, raw in enumerate(parent.iterchildren(tag)):
            nvset = self.deref(raw)
            leads = first is not None and nvset.get("id") == first
            found.append(((not leads, -self._set_score(nvset), index), nvset))
        values: dict[str, str] = {}
        for _, nvset in sorted(found, key=lambda t: t[0]):
            if not self._rules_hold(nvset, node or {}):
                continue
            for key, value in self.nvset(nvset).items():
                values.setdefault(key, value)
        return values

    def _set_score(self, nvset: Element) -> int:
        text = nvset.get("score")
        if text is None:
            return 0
        try:
            return parse_score(text)
        except ValueError as exc:
            raise self.error(str(exc), nvset, "score") from None

    def _rules_hold(self, nvset: Element, node: dict[str, str]) -> bool:
        rules = [self.rule(item) for item in nvset.iterchildren("rule")]
        # Any rule that holds applies the set (Pacemaker's pe_evaluate_rules).
        return not rules or any(rule_matches(rule, node, self.now) for rule in rules)

    def node_dependent(self, parent: Element, tag: str) -> bool:
        """Whether a rule in one of the `<tag>` sets looks at node attributes."""
        return any(mentions_nodes(self.rule(item)) for raw in parent.iterchildren(tag)
                   for item in self.deref(raw).iterchildren("rule"))

    def date_expression(self, raw: Element) -> DateExpression:
        elem = self.deref(raw)
        data: dict[str, Any] = {}
        for key, value in elem.attrib.items():
            if key in ("id", "operation", "start", "end"):
                data[str(key)] = value
            else:
                raise self.error(f"date expression attribute {key!r} is not supported yet", elem, str(key))
        for child in children(elem):
            if child.tag not in ("duration", "date_spec"):
                raise self.unsupported(f"a date expression's <{child.tag}>", child)
            part = self.deref(child)
            data[str(child.tag)] = self.validate(DurationSpec if child.tag == "duration" else DateSpec,
                                                 {str(k): v for k, v in part.attrib.items()}, part)
        result: DateExpression = self.validate(DateExpression, data, elem)
        return result

    def rule(self, raw: Element) -> Rule:
        elem = self.deref(raw)
        data = _attributes(self, elem, {"id": "id", "score": "score", "score-attribute": "score-attribute",
                                        "boolean-op": "boolean-op", "role": "role"}, frozenset())
        expressions: list[Any] = []
        for child in children(elem):
            if child.tag == "expression":
                expr = self.deref(child)
                if expr.get("value-source") not in (None, "literal"):
                    raise self.unsupported("an expression with value-source", expr)
                expressions.append(_attributes(self, expr, {"attribute": "attribute", "operation": "operation",
                                                            "value": "value", "type": "type"},
                                               frozenset({"id", "value-source"})))
            elif child.tag == "rule":
                expressions.append(self.rule(child))
            elif child.tag == "date_expression":
                expressions.append(self.date_expression(child))
            else:
                raise self.unsupported(f"a rule's <{child.tag}>", child)
        data["expressions"] = expressions
        rule: Rule = self.validate(Rule, data, elem)
        return rule

    def nvset(self, raw: Element) -> dict[str, str]:
        nvset = self.deref(raw)
        values: dict[str, str] = {}
        for item in nvset:
            if not isinstance(item.tag, str) or item.tag != "nvpair":
                continue  # rules were weighed by `sets`
            pair = self.deref(item)
            name, value = pair.get("name"), pair.get("value")
            if name is None:
                raise self.error("nvpair without a name", item, "name")
            values.setdefault(name, value if value is not None else "")
        return values

    def validate(self, model: type[Any], data: dict[str, Any], elem: Element) -> Any:
        """Build a spec model, turning validation errors into problems at the element's line."""
        try:
            result = model.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(err["msg"], self.file, line(elem),
                                        f"{elem.get('id') or elem.tag}.{field}" if field else elem.get("id")))
            raise InputError(problems) from None
        assert isinstance(result, BaseModel)
        return result


def _attributes(ctx: CibContext, elem: Element, names: dict[str, str], allowed: frozenset[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in elem.attrib.items():
        if key in names:
            data[names[key]] = value
        elif key not in allowed:
            raise ctx.error(f"attribute {key!r} is not supported yet", elem, str(key))
    return data


def mentions_nodes(rule: Rule) -> bool:
    return any(mentions_nodes(e) if isinstance(e, Rule) else isinstance(e, Expression) for e in rule.expressions)


def children(elem: Element) -> list[Element]:
    """Element children only (no comments or processing instructions)."""
    return [c for c in elem if isinstance(c.tag, str)]
