"""The identifier rule (hakeeper.names): what it refuses, where the refusal is reported, and that
every name it accepts stays inside a directory it is joined under."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.names import (
    MAX_NAME_LENGTH,
    PathEscapeError,
    agent_component_problem,
    contained_path,
    control_character_problem,
    name_problem,
)
from hakeeper.spec import AgentRef, parse_spec

REFUSED = ["../../x", "a\nb", "", "-x", "héllo", "x" * 300, "a b", ".", "..", ".hidden", "a/b",
           "tab\there", "nul\x00", "quote\"d", "semi;colon", "new\rline", "ünïcode", "a\u2028b"]
ACCEPTED = ["p_IP", "rsc:0", "node-1.example.com", "_x", "1", "Clone-Set.2", "x" * MAX_NAME_LENGTH,
            "status-c97a3ee5-02d8-4fad-a9fb-a79ae2b35549"]


@pytest.mark.parametrize("text", REFUSED)
def test_unsafe_names_are_refused(text: str) -> None:
    assert name_problem(text) is not None


@pytest.mark.parametrize("text", ACCEPTED)
def test_usual_names_are_accepted(text: str) -> None:
    assert name_problem(text) is None


def _spec_error(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_spec(text, "spec.yaml")
    return caught.value


@pytest.mark.parametrize("name", REFUSED)
def test_a_refused_resource_id_is_a_located_error(name: str) -> None:
    text = ("nodes: [{name: n1}]\n"
            "resources:\n"
            "  primitives:\n"
            f"    - {{id: {_yaml_string(name)}, agent: process}}\n")
    problem = _spec_error(text).problems[0]
    assert (problem.file, problem.line) == ("spec.yaml", 4)
    assert problem.field == "resources.primitives.0.id"
    assert "not a valid name" in problem.message


@pytest.mark.parametrize("field,text", [
    ("nodes.1.name", "nodes: [{name: n1}, {name: '../n2'}]\n"),
    ("constraints.ticket.0.ticket",
     "resources: {primitives: [{id: p, agent: process}]}\n"
     "constraints:\n  ticket:\n    - {id: t, ticket: \"a\\nb\", resource: p}\n"),
    ("constraints.location.0.id",
     "resources: {primitives: [{id: p, agent: process}]}\n"
     "constraints:\n  location:\n    - {id: '-l', resource: p, node: n1, score: 1}\n"),
    ("resources.clones.0.id",
     "resources:\n  primitives: [{id: p, agent: process}]\n  clones:\n    - {id: 'c/1', child: p}\n"),
    ("resources.groups.0.id",
     "resources:\n  primitives: [{id: p, agent: process}]\n  groups:\n    - {id: '', members: [p]}\n"),
    ("state.nodes.x y",
     "nodes: [{name: n1}]\nstate:\n  nodes:\n    x y: {online: true}\n"),
])
def test_every_kind_of_identifier_is_checked(field: str, text: str) -> None:
    problem = _spec_error(text).problems[0]
    assert problem.field == field and problem.line is not None
    assert "not a valid name" in problem.message


def _yaml_string(text: str) -> str:
    # A double-quoted YAML scalar carries any character, control characters included.
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,40}", fullmatch=True),
                 st.lists(st.sampled_from(["..", ".", "/", "a", "-", ":"]), max_size=8).map("".join)))
def test_every_accepted_name_stays_under_the_state_directory(tmp_path_factory: pytest.TempPathFactory,
                                                             name: str) -> None:
    if name_problem(name) is not None:
        return
    base = str(tmp_path_factory.getbasetemp() / "state")
    for file in (name, f"{name}.pid", f"{name}.log", f"Dummy-{name}.state"):
        path = contained_path(base, file)
        assert os.path.dirname(path) == base
        assert os.path.commonpath([os.path.realpath(base), os.path.realpath(path)]) == os.path.realpath(base)
    assert all(c in string.ascii_letters + string.digits + "_.:-" for c in name)


@pytest.mark.parametrize("parts", [("..", "x"), ("../../x.pid",), ("a/../../b",), ("/etc/passwd",), (".",)])
def test_contained_path_refuses_an_escape(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(PathEscapeError):
        contained_path(str(tmp_path), *parts)


def test_contained_path_follows_links(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "r1.pid").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PathEscapeError):
        contained_path(str(tmp_path / "state"), "r1.pid")
    assert contained_path(str(tmp_path / "state"), "r2.pid") == str(tmp_path / "state" / "r2.pid")


@pytest.mark.parametrize("text", ["IPaddr2", "nova-api", "openstack-nova@1", "fence_ipmilan"])
def test_agent_components(text: str) -> None:
    assert agent_component_problem(text) is None


@pytest.mark.parametrize("text", ["..", ".ocf-shellfuncs", "a/b", "", "-x", "a b", "x\n"])
def test_bad_agent_components(text: str) -> None:
    assert agent_component_problem(text) is not None


@pytest.mark.parametrize("agent", ["ocf:heartbeat:../../../bin/sh", "ocf:..:Dummy", "ocf:heartbeat:.ocf-shellfuncs",
                                   "ocf:heartbeat:a/b", "ocf:a/b:Dummy", "systemd:../x", "stonith:../../bin/sh",
                                   "stonith:external/../../x", "lsb:a/b", "lsb:/etc/../bin/sh", "stonith:fence x",
                                   "systemd:nginx\n", "ocf:heartbeat:/usr/lib//x"])
def test_agent_references_that_could_leave_their_directory_are_refused(agent: str) -> None:
    with pytest.raises(ValueError):
        AgentRef.parse(agent)


@pytest.mark.parametrize("agent", ["ocf:heartbeat:IPaddr2", "stonith:external/ipmi", "stonith:fence_xvm",
                                   "lsb:/usr/lib/heartbeat/cts/LSBDummy", "service:pacemaker-cts-dummyd@10",
                                   "ocf:heartbeat:/usr/lib/heartbeat/cts/OCFMSDummy", "process", "vip"])
def test_agent_references_pacemaker_writes_are_kept(agent: str) -> None:
    assert str(AgentRef.parse(agent)) == agent


def test_an_unsafe_agent_in_a_spec_is_located() -> None:
    problem = _spec_error("resources:\n  primitives:\n    - id: p\n      agent: ocf:heartbeat:../../../bin/sh\n"
                          ).problems[0]
    assert (problem.line, problem.field) == (4, "resources.primitives.0.agent")
    assert "'..'" in problem.message or "must start with" in problem.message


@pytest.mark.parametrize("text", ["a\nb", "x\ry", "tab\t", "\x1b[31m", "del\x7f", "line\u2028sep"])
def test_control_characters(text: str) -> None:
    assert control_character_problem(text) is not None


def test_printable_text_has_no_control_character_problem() -> None:
    assert control_character_problem("GET /v3 HTTP/1.1 ünïcode") is None
