"""Small helpers shared by the CIB readers: located errors, id references, name/value sets."""

from __future__ import annotations

from typing import Any

from lxml import etree
from pydantic import BaseModel, ValidationError

from hakeeper.errors import InputError, Problem

Element = etree._Element


def line(elem: Element) -> int | None:
    """The element's line in its file (lxml's stubs type it loosely)."""
    value = elem.sourceline
    return value if isinstance(value, int) else None


class CibContext:
    """The file being read and every element with an id (for `id-ref`)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.ids: dict[str, Element] = {}

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

    def sets(self, parent: Element, tag: str) -> dict[str, str]:
        """Values from every `<tag>` child of `parent` (first set wins, as in Pacemaker)."""
        values: dict[str, str] = {}
        for raw in parent.iterchildren(tag):
            for key, value in self.nvset(raw).items():
                values.setdefault(key, value)
        return values

    def nvset(self, raw: Element) -> dict[str, str]:
        nvset = self.deref(raw)
        values: dict[str, str] = {}
        for item in nvset:
            if not isinstance(item.tag, str):
                continue
            if item.tag == "rule":
                raise self.unsupported("a rule inside a name/value set", item)
            if item.tag != "nvpair":
                continue
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


def children(elem: Element) -> list[Element]:
    """Element children only (no comments or processing instructions)."""
    return [c for c in elem if isinstance(c.tag, str)]
