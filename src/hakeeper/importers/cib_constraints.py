"""CIB `<constraints>` → location (with rules), colocation, order and ticket constraints, sets
included."""

from __future__ import annotations

from typing import Any

from hakeeper.importers.cib_xml import CibContext, Element, children, line
from hakeeper.importers.located import SourceMap
from hakeeper.spec.model import Colocation, Constraints, Location, Order, ResourceSet, Rule, TicketConstraint
from hakeeper.spec.values import parse_score


class ConstraintReader:
    def __init__(self, ctx: CibContext, source: SourceMap) -> None:
        self.ctx = ctx
        self.source = source
        self.constraints = Constraints()

    def read(self, section: Element) -> None:
        for elem in children(section):
            if elem.tag == "rsc_location":
                self._add("location", self._location(elem), elem)
            elif elem.tag == "rsc_colocation":
                self._add("colocation", self._colocation(elem), elem)
            elif elem.tag == "rsc_order":
                self._add("order", self._order(elem), elem)
            elif elem.tag == "rsc_ticket":
                self._add("ticket", self._ticket(elem), elem)
            else:
                raise self.ctx.unsupported(f"<{elem.tag}>", elem)

    def _add(self, kind: str, item: Location | Colocation | Order | TicketConstraint,
             elem: Element) -> None:
        items: list[Any] = getattr(self.constraints, kind)
        self.source.record(("constraints", kind, len(items)), line(elem))
        items.append(item)

    def _attrs(self, elem: Element, names: dict[str, str], allowed: frozenset[str]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in elem.attrib.items():
            if key in names:
                data[names[key]] = value
            elif key not in allowed:
                raise self.ctx.error(f"attribute {key!r} is not supported yet", elem, str(key))
        return data

    def _sets(self, elem: Element) -> list[ResourceSet]:
        sets = []
        for raw in elem.iterchildren("resource_set"):
            rset = self.ctx.deref(raw)
            data = self._attrs(rset, {"id": "id", "sequential": "sequential", "require-all": "require-all",
                                      "action": "action", "role": "role"},
                               frozenset({"ordering", "score", "kind"}))
            data["resources"] = [ref.get("id") for ref in rset.iterchildren("resource_ref")]
            sets.append(self.ctx.validate(ResourceSet, data, rset))
        return sets

    def _location(self, elem: Element) -> Location:
        data = self._attrs(elem, {"id": "id", "rsc": "resource", "rsc-pattern": "resource-pattern",
                                  "node": "node", "score": "score", "role": "role",
                                  "resource-discovery": "resource-discovery"}, frozenset())
        data["rules"] = [self._rule(r) for r in elem.iterchildren("rule")]
        data["sets"] = self._sets(elem)
        location: Location = self.ctx.validate(Location, data, elem)
        return location

    def _rule(self, raw: Element) -> Rule:
        return self.ctx.rule(raw)

    def _colocation(self, elem: Element) -> Colocation:
        if elem.get("influence") not in (None, "true", "1", "yes"):
            raise self.ctx.unsupported("colocation influence=false", elem)
        data = self._attrs(elem, {"id": "id", "rsc": "resource", "with-rsc": "with", "score": "score",
                                  "rsc-role": "resource-role", "with-rsc-role": "with-role",
                                  "node-attribute": "node-attribute"},
                           frozenset({"influence"}))
        data["sets"] = self._sets(elem)
        colocation: Colocation = self.ctx.validate(Colocation, data, elem)
        return colocation

    def _order(self, elem: Element) -> Order:
        data = self._attrs(elem, {"id": "id", "first": "first", "then": "then",
                                  "first-action": "first-action", "then-action": "then-action",
                                  "kind": "kind", "symmetrical": "symmetrical", "require-all": "require-all"},
                           frozenset({"score"}))
        score = elem.get("score")
        if score is not None and "kind" not in data:
            # Pacemaker's older form: a zero score makes the order advisory.
            try:
                data["kind"] = "Optional" if parse_score(score) == 0 else "Mandatory"
            except ValueError as exc:
                raise self.ctx.error(str(exc), elem, "score") from None
        data["sets"] = self._sets(elem)
        order: Order = self.ctx.validate(Order, data, elem)
        return order

    def _ticket(self, elem: Element) -> TicketConstraint:
        if elem.get("rsc-instance") is not None:
            raise self.ctx.unsupported("a ticket constraint on one clone instance (rsc-instance)", elem)
        data = self._attrs(elem, {"id": "id", "ticket": "ticket", "rsc": "resource", "rsc-role": "role",
                                  "loss-policy": "loss-policy"}, frozenset())
        if isinstance(data.get("loss-policy"), str):
            data["loss-policy"] = data["loss-policy"].lower()  # Pacemaker compares without case
        data["sets"] = self._sets(elem)
        ticket: TicketConstraint = self.ctx.validate(TicketConstraint, data, elem)
        return ticket
