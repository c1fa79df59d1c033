"""crm shell `location`, `colocation`, `order` and `rsc_ticket` statements, rules and resource sets
included."""

from __future__ import annotations

from typing import Any

from hakeeper.importers.crm_lexer import QuotedWord, Statement, split_pair, validate
from hakeeper.importers.located import SourceMap
from hakeeper.spec.model import (
    Colocation,
    Constraints,
    DateExpression,
    Location,
    Order,
    ResourceSet,
    Rule,
    TicketConstraint,
)
from hakeeper.spec.values import parse_score

_OPERATIONS = frozenset({"lt", "gt", "lte", "gte", "eq", "ne"})
_TYPES = frozenset({"string", "integer", "number", "version"})
_KINDS = {"mandatory": "Mandatory", "optional": "Optional", "serialize": "Serialize"}
_ROLES = frozenset({"Started", "Stopped", "Promoted", "Unpromoted", "Master", "Slave"})
_ACTIONS = frozenset({"start", "stop", "promote", "demote"})


def _score(st: Statement, word: str) -> int:
    try:
        return parse_score(word)
    except ValueError:
        raise st.error(f"bad score {word!r}: a number, inf or -inf is expected", st.words[1]) from None


def _tokens(words: list[str]) -> list[str]:
    """Split brackets glued to names: `(a` `b)` → `(` `a` `b` `)`."""
    out: list[str] = []
    for word in words:
        head: list[str] = []
        while word[:1] in ("(", "[") and len(word) > 1:
            head.append(word[0])
            word = word[1:]
        tail: list[str] = []
        while word[-1:] in (")", "]") and len(word) > 1:
            tail.insert(0, word[-1])
            word = word[:-1]
        out += [*head, word, *tail]
    return out


class ConstraintParser:
    def __init__(self, constraints: Constraints, source: SourceMap) -> None:
        self.constraints = constraints
        self.source = source

    def parse(self, st: Statement) -> None:
        if len(st.words) < 4:
            raise st.error(f"incomplete {st.kind} constraint", st.kind)
        if st.kind == "location":
            self._add("location", self._location(st), st)
        elif st.kind in ("colocation", "collocation"):
            self._add("colocation", self._colocation(st), st)
        elif st.kind == "rsc_ticket":
            self._add("ticket", self._ticket(st), st)
        else:
            self._add("order", self._order(st), st)

    def _add(self, kind: str, item: Any, st: Statement) -> None:
        items: list[Any] = getattr(self.constraints, kind)
        self.source.record(("constraints", kind, len(items)), st.line)
        items.append(item)

    # -- location -------------------------------------------------------------------------------

    def _location(self, st: Statement) -> Location:
        data: dict[str, Any] = {"id": st.words[1]}
        rsc = st.words[2]
        if rsc.startswith("/") and rsc.endswith("/") and len(rsc) > 2:
            data["resource-pattern"] = rsc[1:-1]
        elif rsc.startswith(("{", "(", "[")):
            raise st.error("a location over a resource set is not supported yet", st.words[1])
        else:
            data["resource"] = rsc
        words = st.words[3:]
        while words and (pair := split_pair(words[0])) is not None:
            key = pair[0].lstrip("$")
            if key not in ("role", "resource-discovery"):
                raise st.error(f"location option {pair[0]!r} is not supported yet", st.words[1])
            data[key] = pair[1]
            words.pop(0)
        if words and words[0] == "rule":
            data["rules"] = self._rules(st, words)
        else:
            if len(words) < 2 or not words[0].endswith(":"):
                raise st.error("a location is written: location ID RSC SCORE: NODE (or with rule ...)",
                               st.words[1])
            data["score"] = _score(st, words[0][:-1])
            data["node"] = words[1]
            for word in words[2:]:
                pair = split_pair(word)
                if pair is None or pair[0] != "resource-discovery":
                    raise st.error(f"{word!r} is not supported yet here", st.words[1])
                data["resource-discovery"] = pair[1]
        location: Location = validate(Location, data, st)
        return location

    def _rules(self, st: Statement, words: list[str]) -> list[Rule]:
        chunks: list[list[str]] = []
        for word in words:
            if word == "rule":
                chunks.append([])
            else:
                chunks[-1].append(word)
        return [self._rule(st, chunk) for chunk in chunks]

    def _rule(self, st: Statement, words: list[str]) -> Rule:
        data: dict[str, Any] = {}
        while words and (pair := split_pair(words[0])) is not None and not words[0].endswith(":"):
            key = pair[0].lstrip("$")
            if key not in ("id", "role", "score-attribute", "boolean-op"):
                raise st.error(f"rule option {pair[0]!r} is not supported yet", st.words[1])
            data[key] = pair[1]
            words = words[1:]
        if not words or not words[0].endswith(":"):
            raise st.error("a rule is written: rule [$role=ROLE] SCORE: EXPRESSION", st.words[1])
        head = words[0][:-1]
        try:
            data["score"] = parse_score(head)
        except ValueError:
            data["score-attribute"] = head  # `rule pingd: defined pingd` scores by the attribute
        terms: list[list[str]] = [[]]
        joins: set[str] = set()
        for word in words[1:]:
            if isinstance(word, QuotedWord):
                terms[-1].append(word)  # a value, whatever it spells
            elif word in ("and", "or"):
                joins.add(word)
                terms.append([])
            elif word in ("(", ")"):
                raise st.error("parenthesised rule expressions are not supported yet", st.words[1])
            else:
                terms[-1].append(word)
        if len(joins) > 1:
            raise st.error("a rule mixing 'and' and 'or' is not supported yet; split it into rules",
                           st.words[1])
        if joins:
            data["boolean-op"] = joins.pop()
        data["expressions"] = [self._expression(st, term) for term in terms]
        rule: Rule = validate(Rule, data, st)
        return rule

    def _date(self, st: Statement, words: list[str]) -> DateExpression:
        """crm shell's `date gt|lt DATE`, `date in start=DATE end=DATE|DURATION...`, `date spec FIELD=...`."""
        if len(words) == 2 and words[0] in ("gt", "lt"):
            return self._checked_date({"operation": words[0], "start" if words[0] == "gt" else "end": words[1]}, st)
        pairs = [split_pair(word) for word in words[1:]]
        if not words or words[0] not in ("in", "in_range", "spec", "date_spec") or None in pairs:
            raise st.error(f"cannot read the date expression {' '.join(['date', *words])!r}", st.words[1])
        fields = dict(p for p in pairs if p is not None)
        if words[0] in ("spec", "date_spec"):
            return self._checked_date({"operation": "date_spec", "date-spec": fields}, st)
        expr: dict[str, Any] = {"operation": "in_range"}
        for key in ("start", "end"):
            if key in fields:
                expr[key] = fields.pop(key)
        if fields:
            expr["duration"] = fields
        return self._checked_date(expr, st)

    @staticmethod
    def _checked_date(data: dict[str, Any], st: Statement) -> DateExpression:
        # Validated on its own: within the rule's union, errors would speak of the other kinds.
        expr: DateExpression = validate(DateExpression, data, st)
        return expr

    def _expression(self, st: Statement, term: list[str]) -> dict[str, Any] | DateExpression:
        if len(term) == 2 and term[0] in ("defined", "not_defined"):
            return {"attribute": term[1], "operation": term[0]}
        if term and term[0] == "date":
            return self._date(st, term[1:])
        if len(term) != 3 or term[1] not in _OPERATIONS:
            raise st.error(f"cannot read the expression {' '.join(term)!r}", st.words[1])
        expr: dict[str, Any] = {"attribute": term[0], "operation": term[1], "value": term[2]}
        kind, sep, value = term[2].partition(":")
        if sep and kind in _TYPES:
            expr["type"], expr["value"] = kind, value
        return expr

    # -- colocation and order -------------------------------------------------------------------

    def _items(self, st: Statement, words: list[str], qualifiers: frozenset[str]) -> list[Any]:
        """Resources as loose (name, qualifier) pairs or bracketed sets: [(kind, [(name, q)...]), ...]."""
        items: list[Any] = []
        current: list[tuple[str, str | None]] | None = None
        closer = ""
        for word in _tokens(words):
            if word in ("(", "["):
                if current is not None:
                    raise st.error("nested resource sets are not supported", st.words[1])
                current, closer = [], ")" if word == "(" else "]"
                continue
            if word in (")", "]"):
                if current is None or word != closer:
                    raise st.error(f"unbalanced {word!r}", st.words[1])
                items.append(("(" if closer == ")" else "[", current))
                current = None
                continue
            name, sep, qual = word.partition(":")
            if sep and qual not in qualifiers:
                raise st.error(f"unknown role or action {qual!r} for {name!r}", st.words[1])
            member = (name, qual if sep else None)
            if current is not None:
                current.append(member)
            else:
                items.append(("", [member]))
        if current is not None:
            raise st.error(f"missing {closer!r}", st.words[1])
        return items

    def _sets(self, st: Statement, items: list[Any], what: str) -> list[ResourceSet]:
        """Consecutive resources with the same role (or action) form one set, as crm shell builds them:
        loose ones a sequential set, `( )` a non-sequential one, `[ ]` also require-all=false."""
        sets: list[ResourceSet] = []
        runs: list[tuple[int, str, str | None, list[str]]] = []  # (item index, bracket, qualifier, names)
        loose_index = -1
        for index, (kind, members) in enumerate(items):
            group = index if kind else loose_index
            if not kind and (not runs or runs[-1][1] or runs[-1][0] != loose_index):
                loose_index = group = index
            for name, qual in members:
                if runs and runs[-1][0] == group and runs[-1][2] == qual:
                    runs[-1][3].append(name)
                else:
                    runs.append((group, kind, qual, [name]))
        for _, kind, qual, names in runs:
            data: dict[str, Any] = {"resources": names}
            if kind:
                data["sequential"] = False
            if kind == "[":
                data["require-all"] = False
            if qual is not None:
                data[what] = qual
            sets.append(validate(ResourceSet, data, st))
        return sets

    def _options(self, st: Statement, words: list[str], allowed: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
        options: dict[str, str] = {}
        while words and (pair := split_pair(words[-1])) is not None:
            if pair[0] not in allowed:
                raise st.error(f"option {pair[0]!r} is not supported yet", st.words[1])
            options[pair[0]] = pair[1]
            words = words[:-1]
        return words, options

    def _colocation(self, st: Statement) -> Colocation:
        head = st.words[2]
        if not head.endswith(":"):
            raise st.error("a colocation is written: colocation ID SCORE: RSC[:ROLE] WITH[:ROLE]", st.words[1])
        data: dict[str, Any] = {"id": st.words[1], "score": _score(st, head[:-1])}
        words, options = self._options(st, st.words[3:], ("node-attribute",))
        data.update(options)
        items = self._items(st, words, _ROLES)
        if len(items) == 2 and not items[0][0] and not items[1][0]:
            (rsc, role), (with_rsc, with_role) = items[0][1][0], items[1][1][0]
            data.update({"resource": rsc, "with": with_rsc})
            if role:
                data["resource-role"] = role
            if with_role:
                data["with-role"] = with_role
        else:
            data["sets"] = self._sets(st, items, "role")
        colocation: Colocation = validate(Colocation, data, st)
        return colocation

    def _order(self, st: Statement) -> Order:
        data: dict[str, Any] = {"id": st.words[1]}
        words = st.words[2:]
        if words[0].endswith(":"):
            head = words.pop(0)[:-1]
            if head.lower() in _KINDS:
                data["kind"] = _KINDS[head.lower()]
            else:
                data["kind"] = "Optional" if _score(st, head) == 0 else "Mandatory"
        words, options = self._options(st, words, ("symmetrical", "require-all"))
        data.update(options)
        items = self._items(st, words, _ACTIONS)
        if len(items) == 2 and not items[0][0] and not items[1][0]:
            (first, first_action), (then, then_action) = items[0][1][0], items[1][1][0]
            data.update({"first": first, "then": then})
            if first_action:
                data["first-action"] = first_action
            if then_action:
                data["then-action"] = then_action
        else:
            data["sets"] = self._sets(st, items, "action")
        order: Order = validate(Order, data, st)
        return order

    def _ticket(self, st: Statement) -> TicketConstraint:
        head = st.words[2]
        if not head.endswith(":") or len(head) < 2:
            raise st.error("a ticket constraint is written: rsc_ticket ID TICKET: RSC[:ROLE] ... "
                           "[loss-policy=POLICY]", st.words[1])
        data: dict[str, Any] = {"id": st.words[1], "ticket": head[:-1]}
        words, options = self._options(st, st.words[3:], ("loss-policy",))
        if "loss-policy" in options:
            data["loss-policy"] = options["loss-policy"].lower()
        items = self._items(st, words, _ROLES)
        if not items:
            raise st.error("a ticket constraint needs at least one resource", st.words[1])
        if len(items) == 1 and not items[0][0] and len(items[0][1]) == 1:
            rsc, role = items[0][1][0]
            data["resource"] = rsc
            if role:
                data["role"] = role
        else:
            data["sets"] = self._sets(st, items, "role")
        ticket: TicketConstraint = validate(TicketConstraint, data, st)
        return ticket
