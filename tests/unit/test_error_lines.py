"""How an error line shows what it points at: names as they are, text from the input never."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as s

from hakeeper.errors import Problem, shown_field


def test_name_like_parts_are_shown_as_written() -> None:
    for field in ("resources.primitives.3.agent", "top.vrrp_instance", "cib-bootstrap-options.dc-version",
                  "#uname", "ping:0", "override_attributes.vips.../../x"):
        assert shown_field(field) == field


def test_a_line_of_a_file_that_is_not_a_configuration_is_not_quoted() -> None:
    line = "root:$y$j9T$abcdefgh$SECRETHASH:19000:0:99999:7:::"
    text = str(Problem("Extra inputs are not permitted", "/etc/shadow", 1, line))
    assert "SECRET" not in text and "root" not in text
    assert text == f"/etc/shadow:1: <a key of {len(line)} characters>: Extra inputs are not permitted"


@given(s.text(min_size=1, max_size=80))
def test_no_part_with_a_character_outside_names_survives(key: str) -> None:
    shown = shown_field(key)
    risky = set(key) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_#@-[]/.:")
    if risky:
        assert not risky & set(shown.replace("<a key of ", "").replace(" characters>", ""))


def test_a_command_line_value_is_located_by_its_flag() -> None:
    assert str(Problem("not a valid name", None, None, "--controller")) == "--controller: not a valid name"
    assert str(Problem("cannot read", None, None, "include")) == "<input>: include: cannot read"
