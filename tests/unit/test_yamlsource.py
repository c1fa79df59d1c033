from __future__ import annotations

import pytest
from pydantic import BaseModel

from hakeeper.errors import InputError
from hakeeper.yamlsource import parse_yaml


class Item(BaseModel):
    name: str
    size: int


class Doc(BaseModel):
    items: list[Item]


def test_error_names_file_line_and_field() -> None:
    doc = parse_yaml("items:\n  - name: a\n    size: 1\n  - name: b\n    size: big\n", "s.yaml")
    with pytest.raises(InputError) as info:
        doc.validate(Doc)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.field) == ("s.yaml", 5, "items.1.size")


def test_missing_field_points_at_its_parent() -> None:
    doc = parse_yaml("items:\n  - name: a\n", "s.yaml")
    with pytest.raises(InputError) as info:
        doc.validate(Doc)
    (problem,) = info.value.problems
    assert problem.line == 2 and problem.field == "items.0.size"


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(InputError) as info:
        parse_yaml("a: 1\nb: 2\na: 3\n", "d.yaml")
    assert info.value.problems[0].line == 3


def test_syntax_error_has_a_line() -> None:
    with pytest.raises(InputError) as info:
        parse_yaml("a: [1, 2\nb: 3\n", "x.yaml")
    assert info.value.problems[0].line is not None
