"""The pure bootstrap decision and grastate.dat parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from hakeeper.errors import InputError
from hakeeper.galera.bootstrap import ZERO_UUID, Position, decide, parse_grastate, parse_recovered

U = "6b3a3c55-1e59-11ef-9d2b-6b0c3f1c2a10"
OTHER = "7c4b4d66-2f6a-11ef-8e3c-7c1d4a2d3b21"
NODES = ["a", "b", "c"]


def test_grastate_is_parsed_and_corruption_named() -> None:
    text = f"# GALERA saved state\nversion: 2.1\nuuid:    {U}\nseqno:   -1\nsafe_to_bootstrap: 0\n"
    assert parse_grastate(text) == Position(U, -1, False)
    for bad, field in (
        (text.replace(U, "12345"), "uuid"),
        (text.replace("-1\n", "many\n"), "seqno"),
        (text.replace("safe_to_bootstrap: 0", "safe_to_bootstrap: yes"), "safe_to_bootstrap"),
        ("version: 2.1\n", "uuid"),
        ("garbage without a colon\n", "grastate"),
    ):
        with pytest.raises(InputError) as info:
            parse_grastate(bad, "/var/lib/mysql/grastate.dat")
        assert field in str(info.value) and "grastate.dat" in str(info.value)


def test_recovered_position_is_the_last_logged() -> None:
    log = f"x\n[Note] WSREP: Recovered position: {U}:17\n[Note] WSREP: Recovered position: {U}:42\n"
    assert parse_recovered(log) == Position(U, 42)
    assert parse_recovered("nothing") is None


def test_highest_seqno_of_one_history_wins_and_missing_nodes_block() -> None:
    pos = {"a": Position(U, 10), "b": Position(U, 12), "c": Position(U, 11)}
    assert decide(pos, NODES).node == "b"
    waiting = decide({**pos, "b": None}, NODES)
    assert waiting.node is None and waiting.waiting_for == ("b",)
    assert decide({**pos, "c": Position(U, 5, safe_to_bootstrap=True)}, NODES).node == "c"
    assert decide({**pos, "a": Position(OTHER, 99)}, NODES).node is None  # two histories
    assert decide({**pos, "b": Position(ZERO_UUID, 99)}, NODES).node == "c"  # no history: never


def test_forced_bootstrap_says_what_may_be_lost() -> None:
    pos = {"a": Position(U, 10), "b": None, "c": Position(U, 11)}
    forced = decide(pos, NODES, force="a")
    assert forced.node == "a" and forced.may_lose == ("c", "b")
    assert decide(pos, NODES, force="b").node is None  # nothing to bootstrap from


@given(hs.lists(hs.tuples(hs.sampled_from([U, OTHER, ZERO_UUID]), hs.integers(-1, 50), hs.booleans()),
                min_size=3, max_size=3))
def test_never_from_behind_nor_without_history(raw: list[tuple[str, int, bool]]) -> None:
    pos = {n: Position(u, s, b) for n, (u, s, b) in zip(NODES, raw, strict=True)}
    d = decide(pos, NODES)
    if d.node is None:
        return
    chosen = pos[d.node]
    assert chosen.has_history
    same = [p for p in pos.values() if p.has_history]
    assert all(p.uuid == chosen.uuid for p in same)
    if not chosen.safe_to_bootstrap:
        assert all(p.seqno <= chosen.seqno for p in same)
