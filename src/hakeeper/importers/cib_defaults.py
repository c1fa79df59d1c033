"""rsc_defaults / op_defaults sets, including sets whose rule names resource types or operations.

Pacemaker 2.1 lets a defaults set apply only to resources of a class/provider/type
(`rsc_expression`) or to operations of a name/interval (`op_expression`). Both are static, so
the import resolves them: the values land on the matching primitives and operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hakeeper.importers.cib_xml import CibContext, Element, children
from hakeeper.placement.scores import rule_matches
from hakeeper.spec.dates import date_matches
from hakeeper.spec.values import AgentRef, parse_duration, parse_score


@dataclass
class Condition:
    """A rule made only of rsc_expression / op_expression terms."""

    boolean_op: str = "and"
    resources: list[dict[str, str]] = field(default_factory=list)
    operations: list[tuple[str | None, int | None]] = field(default_factory=list)
    # Terms already decided at import (date expressions, evaluated at the import's `now`).
    fixed: list[bool] = field(default_factory=list)

    def matches(self, agent: AgentRef, op: tuple[str, int] | None) -> bool:
        results = [all(want.get(k) in (None, have) for k, have in
                       (("class", agent.cls), ("provider", agent.provider), ("type", agent.type)))
                   for want in self.resources]
        results += [op is not None and name in (None, op[0]) and interval in (None, op[1])
                    for name, interval in self.operations]
        results += self.fixed
        return all(results) if self.boolean_op == "and" else any(results)


@dataclass
class DefaultSet:
    values: dict[str, str]
    condition: Condition | None = None


def read_sets(ctx: CibContext, section: Element) -> list[DefaultSet]:
    """The section's meta_attributes sets in Pacemaker's order (higher set score first, then as written)."""
    found: list[tuple[int, int, DefaultSet]] = []
    for index, raw in enumerate(section.iterchildren("meta_attributes")):
        nvset = ctx.deref(raw)
        values: dict[str, str] = {}
        condition: Condition | None = None
        ruled = False
        for item in children(nvset):
            if item.tag == "rule":
                if ruled:
                    raise ctx.unsupported("more than one rule in a defaults set", item)
                ruled = True
                rule = ctx.deref(item)
                if any(c.tag in ("rsc_expression", "op_expression") for c in children(rule)):
                    condition = _condition(ctx, rule)
                elif not rule_matches(ctx.rule(rule), {}, ctx.now):
                    # Dates (and node attributes, which defaults never see, as in Pacemaker) are
                    # decided now: a set whose rule does not hold is not there at all.
                    condition = _NEVER
            elif item.tag == "nvpair":
                pair = ctx.deref(item)
                name = pair.get("name")
                if name is None:
                    raise ctx.error("nvpair without a name", item, "name")
                values.setdefault(name, pair.get("value") or "")
        if condition is _NEVER:
            continue
        score = nvset.get("score")
        try:
            weight = parse_score(score) if score is not None else 0
        except ValueError as exc:
            raise ctx.error(str(exc), nvset, "score") from None
        found.append((-weight, index, DefaultSet(values, condition)))
    return [entry for _, _, entry in sorted(found, key=lambda t: (t[0], t[1]))]


_NEVER = Condition(fixed=[False])


def _condition(ctx: CibContext, rule: Element) -> Condition:
    cond = Condition(boolean_op=rule.get("boolean-op") or "and")
    for term in children(rule):
        expr = ctx.deref(term)
        if expr.tag == "rsc_expression":
            wanted = ("class", "provider", "type")
            cond.resources.append({str(k): str(v) for k, v in expr.attrib.items() if k in wanted})
        elif expr.tag == "op_expression":
            interval = expr.get("interval")
            try:
                ms = round(parse_duration(interval) * 1000) if interval is not None else None
            except ValueError as exc:
                raise ctx.error(str(exc), expr, "interval") from None
            cond.operations.append((expr.get("name"), ms))
        elif expr.tag == "date_expression":
            cond.fixed.append(date_matches(ctx.date_expression(expr), ctx.now))
        else:
            raise ctx.unsupported(f"a defaults rule with <{expr.tag}>", expr)
    return cond
