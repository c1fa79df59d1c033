"""The YAML reader bounds what a file can make it do, and refuses the rest with a location."""

from __future__ import annotations

import pytest

from hakeeper.errors import InputError, Problem
from hakeeper.yamlsource import MAX_DEPTH, Limits, parse_yaml

DEFAULT = Limits()


def refused(text: str, limits: Limits = DEFAULT) -> Problem:
    with pytest.raises(InputError) as info:
        parse_yaml(text, "f.yaml", limits)
    (problem,) = info.value.problems
    assert problem.file == "f.yaml" and problem.line is not None
    assert "\n" not in str(problem)
    return problem


def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level a list of nine aliases of the previous one."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_budget() -> None:
    # 9**7 values described in 396 characters; refused once the expansion passes the budget (ten
    # values per character, but at least 10,000), so the work is bounded by that, not by 9**7.
    text = alias_bomb(7)
    problem = refused(text)
    assert Limits().node_budget(text) == 10_000
    assert "more than 10,000 values" in problem.message
    # a0..a3 expand to 10 + 91 + 820 + 7,381 values; the first alias of a3 in a4 passes 10,000.
    assert problem.line == 5 and problem.field == "a4.0"


@pytest.mark.parametrize("levels", [9, 30, 200])
def test_deeper_bombs_fail_no_later(levels: int) -> None:
    text = alias_bomb(levels)
    problem = refused(text)
    assert f"more than {Limits().node_budget(text):,} values" in problem.message
    assert problem.line is not None and problem.line <= 6


def test_small_budget_stops_expansion_early() -> None:
    problem = refused(alias_bomb(9), Limits(max_nodes=50))
    assert problem.line == 2 and "more than 50 values" in problem.message


def test_aliases_within_the_budget_are_expanded_and_copied() -> None:
    doc = parse_yaml("base: &b {x: 1}\none: *b\ntwo: *b\n", "f.yaml")
    assert doc.data == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}
    assert doc.data["one"] is not doc.data["two"]
    # The alias's value is located where it is used; what is inside it, where it is written.
    assert doc.line_of(("two",)) == 3 and doc.line_of(("two", "x")) == 1


def test_recursive_alias_is_refused() -> None:
    problem = refused("a: &a\n  b: *a\n")
    assert "recursive" in problem.message and problem.line == 2 and problem.field == "a.b"


def test_undefined_alias_is_refused() -> None:
    problem = refused("a: *nope\n")
    assert "no anchor" in problem.message and problem.line == 1


def test_merge_key_is_refused() -> None:
    problem = refused("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert "merge keys" in problem.message
    assert problem.line == 3 and problem.field == "other.<<"


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "? {a: 1}\n: 1\n", "{[a]: 1}\n",
                                  "x: &x [1]\n*x : 2\n"])
def test_complex_key_is_refused(text: str) -> None:
    assert "a key must be a plain value" in refused(text).message


def test_depth_is_bounded() -> None:
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    parse_yaml(ok, "f.yaml")
    deep = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
    assert "nested more than 100 levels" in refused(deep).message
    block = "".join("  " * i + "k:\n" for i in range(150))
    problem = refused(block)
    assert problem.line == 101  # where the 101st mapping starts


def test_depth_counts_what_an_alias_brings_in() -> None:
    text = "a: &a [[[[1]]]]\nb: [[[*a]]]\n"
    parse_yaml(text, "f.yaml", Limits(max_depth=8))
    assert "nested more than 7" in refused(text, Limits(max_depth=7)).message


def test_size_is_bounded() -> None:
    problem_text = "a: " + "x" * 2000 + "\n"
    with pytest.raises(InputError) as info:
        parse_yaml(problem_text, "f.yaml", Limits(max_bytes=1000))
    assert "larger than 1,000 bytes" in str(info.value)


@pytest.mark.parametrize(("text", "word"), [("a: !!int abc\n", "int"), ("a: !!bool maybe\n", "bool"),
                                            ("a: !!timestamp x\n", "timestamp"),
                                            ("a: " + "9" * 5000 + "\n", "int"),
                                            ("a: !!python/object:os.system x\n", "not supported"),
                                            ("a: !!set {x, y}\n", "not supported")])
def test_bad_tags_and_values_are_located(text: str, word: str) -> None:
    problem = refused(text)
    assert word in problem.message and problem.line == 1 and problem.field == "a"


def test_second_document_is_refused() -> None:
    assert refused("a: 1\n---\nb: 2\n").line == 2


def test_control_character_has_a_line() -> None:
    assert refused("a: 1\nb: \x01\n").line == 2


def test_merge_key_text_as_a_value_is_only_text() -> None:
    assert parse_yaml("a: <<\n", "f.yaml").data == {"a": "<<"}


def test_empty_and_comment_only_files_are_empty_mappings() -> None:
    assert parse_yaml("", "f.yaml").data == {}
    assert parse_yaml("# nothing\n", "f.yaml").data == {}
