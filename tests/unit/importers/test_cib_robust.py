"""Whatever the XML holds, importing it gives a spec or a located InputError, never a crash."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.importers.cib import read_cib

NAMES = st.sampled_from(["n1", "n2", "r1", "r2", "g", "c", "x", "1", ""])
VALUES = st.sampled_from(["0", "1", "7", "8", "-1", "true", "false", "member", "down", "online", "10s",
                          "INFINITY", "monitor", "start", "stop", "promote", "migrate_to", "1:2:0:x", "bogus", ""])
ATTRS = st.dictionaries(st.sampled_from(["id", "uname", "rc-code", "op-status", "call-id", "operation",
                                         "interval", "transition-key", "in_ccm", "crmd", "join", "expected",
                                         "class", "provider", "type", "rsc", "with-rsc", "score", "node",
                                         "name", "value", "first", "then", "migrate_target", "last-rc-change"]),
                        st.one_of(NAMES, VALUES), max_size=6)


def element(tag: str, children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def render(attrs: dict[str, str], inner: list[str]) -> str:
        text = " ".join(f'{k}="{v}"' for k, v in attrs.items())
        return f"<{tag} {text}>{''.join(inner)}</{tag}>"
    return st.builds(render, ATTRS, st.lists(children, max_size=3))


OP = element("lrm_rsc_op", st.just(""))
LRM = element("lrm", element("lrm_resources", element("lrm_resource", OP)))
NVPAIRS = element("instance_attributes", element("nvpair", st.just("")))
STATUS = element("status", element("node_state", st.one_of(LRM, element("transient_attributes", NVPAIRS))))
PRIM = element("primitive", st.one_of(element("operations", element("op", st.just(""))), NVPAIRS))
RESOURCES = element("resources", st.one_of(PRIM, element("group", PRIM), element("clone", PRIM),
                                           element("master", PRIM)))
CONSTRAINTS = element("constraints", st.one_of(element("rsc_location", st.just("")),
                                               element("rsc_colocation", st.just("")),
                                               element("rsc_order", st.just(""))))
NODES = element("nodes", element("node", NVPAIRS))


@settings(max_examples=150, deadline=None)
@given(NODES, RESOURCES, CONSTRAINTS, STATUS)
def test_never_crashes(nodes: str, resources: str, constraints: str, status: str) -> None:
    text = f"<cib><configuration><crm_config/>{nodes}{resources}{constraints}</configuration>{status}</cib>"
    try:
        spec = read_cib(io.BytesIO(text.encode()), file="fuzz.xml", now=2e9)
    except InputError as exc:
        assert all(p.file == "fuzz.xml" for p in exc.problems)
    else:
        assert spec.state is not None


WORDS = st.sampled_from(["node", "primitive", "group", "clone", "ms", "location", "colocation", "order",
                         "property", "rsc_defaults", "op_defaults", "p", "q", "g", "c", "a", "ocf:heartbeat:Dummy",
                         "systemd:x", "params", "meta", "op", "monitor", "interval=10s", "x=1", "inf:", "-inf:",
                         "10:", "rule", "$role=Master", "#uname", "eq", "defined", "and", "or", "(", ")", "[", "]",
                         "p:start", "q:Master", "symmetrical=false", "\\", "\"", "Mandatory:", "attributes"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=1, max_size=8).map(" ".join), max_size=8))
def test_crm_never_crashes(lines: list[str]) -> None:
    from hakeeper.importers.crm import parse_crm

    try:
        parse_crm("\n".join(lines), "fuzz.crm")
    except InputError as exc:
        assert all(p.file == "fuzz.crm" and p.line is not None for p in exc.problems), exc
