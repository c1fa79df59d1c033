"""Configuration versions and previews as the operator commands compute them (pure parts, and
the bounded history against the in-memory store): what changed, who and when, the orphans a new
configuration leaves, the known names an error lists, the --etcd endpoint list."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as s

from hakeeper.agent import history as hist
from hakeeper.agent import operator as op
from hakeeper.agent import state as st
from hakeeper.coord.etcd import parse_endpoints
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import Delete, Put
from hakeeper.errors import InputError
from hakeeper.spec import ClusterSpec, parse_spec

BASE = """\
cluster: {stonith-enabled: false, resource-stickiness: 100}
nodes: [{name: n1}, {name: n2}]
resources:
  primitives:
    - {id: web, agent: process, params: {command: "sleep 100"}}
    - {id: db, agent: process, params: {command: "sleep 101"}}
constraints:
  location: [{id: web-on-n1, resource: web, node: n1, score: 10}]
"""


def spec(text: str = BASE) -> ClusterSpec:
    return parse_spec(text, "c.yaml")


def test_changes_name_what_was_added_removed_and_changed() -> None:
    old = spec()
    new = spec(
        BASE.replace('command: "sleep 100"', 'command: "sleep 200"')
        .replace("    - {id: db, agent: process, params: {command: \"sleep 101\"}}\n",
                 "    - {id: cache, agent: process, params: {command: \"sleep 1\"}}\n")
        .replace("[{name: n1}, {name: n2}]", "[{name: n1}, {name: n3}]")
        .replace("resource-stickiness: 100", "resource-stickiness: 5")
        .replace("score: 10", "score: 20")
    )
    changes = hist.spec_changes(old, new)
    assert changes == {
        "resources": {"added": ["cache"], "removed": ["db"], "changed": ["web"]},
        "nodes": {"added": ["n3"], "removed": ["n2"]},
        "constraints": {"changed": ["web-on-n1"]},
        "cluster": {"changed": ["resource-stickiness"]},
    }
    assert hist.describe_changes(changes) == (
        "resources +cache -db ~web; nodes +n3 -n2; constraints ~web-on-n1; cluster ~resource-stickiness"
    )
    assert hist.removed(changes) == (["db"], ["n2"])
    assert hist.spec_changes(old, spec()) == {}
    assert hist.describe_changes({}) == "no change"


def test_first_version_lists_everything_as_added() -> None:
    changes = hist.spec_changes(None, spec())
    assert changes["resources"] == {"added": ["web", "db"]} and "cluster" not in changes


def test_a_write_keeps_the_old_version_and_drops_the_one_beyond_the_bound() -> None:
    keys = st.Keys("t")
    raw = op.config_doc(spec(), 60, "old.yaml", "ann@h1")
    ops = op.config_writes(keys, raw, spec(), 60, "new.yaml", "bob@h2")
    puts = {o.key: o.value for o in ops if isinstance(o, Put)}
    deletes = [o.key for o in ops if isinstance(o, Delete)]
    assert set(puts) == {keys.config, hist.history_key(keys.prefix, 60)}
    assert deletes == [hist.history_key(keys.prefix, 10)]
    assert puts[hist.history_key(keys.prefix, 60)] == raw  # the old version, verbatim
    written = hist.version_of(puts[keys.config])
    assert written is not None and written.version == 61 and written.by == "bob@h2"
    assert written.changes == {}
    assert hist.pruned_version(50) is None and hist.pruned_version(52) == 1


def test_the_store_holds_at_most_keep_earlier_versions() -> None:
    async def run() -> list[hist.Version]:
        store = MemoryStore()
        keys = st.Keys("t")
        for i in range(hist.KEEP + 7):
            raw, version, _ = await op.current_config(store, keys)
            text = BASE.replace("score: 10", f"score: {i}")
            assert await op.write_config(store, keys, raw, spec(text), version, f"v{i}.yaml", "ann@h")
        kvs, _ = await store.get_prefix(keys.prefix)
        return hist.versions({kv.key: kv.value for kv in kvs}, keys.prefix)

    found = asyncio.run(run())
    numbers = [v.version for v in found]
    assert numbers == list(range(hist.KEEP + 7 - hist.KEEP, hist.KEEP + 8))  # KEEP kept + the current
    assert found[-1].current and not any(v.current for v in found[:-1])
    assert found[-1].changes == {"constraints": {"changed": ["web-on-n1"]}}


def test_history_table() -> None:
    versions = [
        hist.Version(1, 0.0, "ann@h1", "/etc/c.yaml", {"resources": {"added": ["web"]}}),
        hist.Version(2, None, None, None, None, current=True),
    ]
    text = hist.render_history(versions, lambda at: "T")
    assert text.splitlines() == [
        "VERSION  WHEN  BY      CHANGES",
        "1        T     ann@h1  resources +web  (/etc/c.yaml)",
        "2 *      ?     ?       ?",
    ]


def _values_running(old: ClusterSpec, reports: dict[tuple[str, str], str]) -> dict[str, bytes]:
    keys = st.Keys("t")
    values = {keys.config: op.config_doc(old, 4, "c.yaml")}
    values |= {keys.member(n): st.dumps({"probed": True}) for n in ("n1", "n2")}
    for (node, rsc), role in reports.items():
        d = st.definition(old, rsc, node) if hasattr(st, "definition") else None
        doc = {"role": role} | ({"definition": d.as_json()} if d is not None else {})
        values[keys.status_of(node, rsc)] = st.dumps(doc)
    return values


def test_preview_labels_the_stop_of_a_resource_no_longer_configured() -> None:
    values = _values_running(spec(), {("n1", "web"): "Started", ("n2", "db"): "Started"})
    new = spec(BASE.replace("    - {id: db, agent: process, params: {command: \"sleep 101\"}}\n", ""))
    preview = op.preview_of(new, values, st.Keys("t"), now=100.0)
    stops = [line for line in preview.lines if "Stop" in line]
    assert len(stops) == 1 and "db (orphan)" in stops[0] and "n2" in stops[0], preview.lines
    assert preview.removes and preview.removed_resources == ["db"] and preview.orphans == ["db on n2"]
    assert preview.removal() == "resource db"


def test_an_empty_configuration_never_previews_no_changes_while_things_run() -> None:
    values = _values_running(spec(), {("n1", "web"): "Started"})
    preview = op.preview_of(ClusterSpec(), values, st.Keys("t"), now=100.0)
    assert preview.lines != ["(no changes)"]
    assert any("web" in line for line in preview.lines), preview.lines
    assert any("Remove node n1" in line for line in preview.lines) and preview.removed_nodes == ["n1", "n2"]
    assert preview.removal() == "resources db, web and nodes n1, n2"


def test_a_preview_that_removes_nothing_needs_no_confirmation() -> None:
    values = _values_running(spec(), {("n1", "web"): "Started"})
    preview = op.preview_of(spec(BASE.replace("score: 10", "score: 11")), values, st.Keys("t"), now=100.0)
    assert not preview.removes


def test_unknown_names_come_with_the_known_ones_on_one_line() -> None:
    error = op.unknown("node", "n9", [f"node{i:02d}" for i in range(40)], "the configuration")
    text = str(error)
    assert "\n" not in text and "'n9'" in text and "node00, node01" in text and "(28 more)" in text
    assert "known: a, b" in str(op.unknown("ticket", "x", ["b", "a"], "the configuration"))
    edit = op.prefer("nosuch", "n1")
    with pytest.raises(InputError, match="no resource 'nosuch'; known: db, web"):
        edit(spec())
    with pytest.raises(InputError, match="no node 'n7'; known: n1, n2"):
        op.ban("web", "n7")(spec())
    with pytest.raises(InputError, match="no resource 'nosuch'"):
        op.clear("nosuch")(spec())


# ----- --etcd -----


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10.0.0.1", "no port"),
        ("10.0.0.1:0", "not a number from 1 to 65535"),
        ("10.0.0.1:99999", "not a number from 1 to 65535"),
        ("10.0.0.1:http", "not a number from 1 to 65535"),
        ("10.0.0.1:-1", "not a number from 1 to 65535"),
        ("::1:2379", "in brackets"),
        ("[::1]", "no port"),
        ("[::1", "[ADDRESS]:PORT"),
        (":2379", "no host"),
        ("https://a:2379", "http://"),
        ("a b:1", "spaces"),
        (" , ", "no etcd endpoint"),
    ],
)
def test_bad_endpoints_are_located_errors(text: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_endpoints(text, "HAKEEPER_ETCD")
    message = str(caught.value)
    assert message.startswith("error: HAKEEPER_ETCD: ") and why in message and "\n" not in message


def test_good_endpoints() -> None:
    assert parse_endpoints("10.0.0.1:2379, [fd00::1]:2380,http://etcd-3:02379") == [
        "10.0.0.1:2379",
        "[fd00::1]:2380",
        "etcd-3:2379",
    ]
    # Its own member first, then the whole list (as docs/agent.md starts each agent): no repeat.
    assert parse_endpoints("10.0.0.2:2379,10.0.0.1:2379,http://10.0.0.2:2379,10.0.0.3:2379") == [
        "10.0.0.2:2379", "10.0.0.1:2379", "10.0.0.3:2379"]


@given(s.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True), s.integers(-10, 200_000))
def test_a_port_is_accepted_exactly_when_it_is_one_to_65535(host: str, port: int) -> None:
    text = f"{host}:{port}"
    if 1 <= port <= 65535:
        assert parse_endpoints(text) == [text]
    else:
        with pytest.raises(InputError):
            parse_endpoints(text)
