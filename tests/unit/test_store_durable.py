"""The durable embedded store reads back exactly what it acknowledged, and refuses files it did
not write. The reference is the in-memory store given the same operations."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.coord.durable import DurableStore
from hakeeper.coord.memory import MemoryStore
from hakeeper.coord.store import Compare, Delete, Put, Store
from hakeeper.errors import InputError

KEYS = st.sampled_from(["/a", "/b", "/c/1", "/c/2"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.binary(max_size=8), st.booleans()),
        st.tuples(st.just("delete"), KEYS),
        st.tuples(st.just("delete_prefix"), st.just("/c/")),
        st.tuples(st.just("cas"), KEYS, st.integers(0, 4), st.binary(max_size=4)),
        st.tuples(st.just("revoke")),
        st.tuples(st.just("compact"), st.integers(0, 3)),
    ),
    max_size=40,
)


async def _apply(store: Store, ops: list[tuple[Any, ...]]) -> list[int]:
    leases = [await store.grant(60)]
    for op in ops:
        kind = op[0]
        if kind == "put":
            await store.put(str(op[1]), bytes(op[2]), leases[-1] if op[3] and leases else 0)
        elif kind == "delete":
            await store.delete(str(op[1]))
        elif kind == "delete_prefix":
            await store.delete_prefix(str(op[1]))
        elif kind == "cas":
            key = str(op[1])
            await store.txn([Compare(key, "version", "==", op[2])], [Put(key, bytes(op[3]))], [Delete("/a")])
        elif kind == "revoke" and leases:
            await store.revoke(leases.pop())
        elif kind == "compact":
            _, rev = await store.get_prefix("/")
            await store.compact(max(1, rev - int(op[1])))
    return leases


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_reopened_store_equals_the_reference(ops: list[tuple[Any, ...]]) -> None:
    async def main(directory: str) -> None:
        reference = MemoryStore()
        await _apply(reference, ops)
        durable = DurableStore.open(directory, "prop")
        live = await _apply(durable, ops)
        await durable.close()
        again = DurableStore.open(directory, "prop")
        try:
            assert again.revision == reference.revision
            assert (await again.get_prefix("/"))[0] == (await reference.get_prefix("/"))[0]
            # Every change a watch could still ask for is there, as the reference has it.
            assert again._compacted == reference._compacted
            assert again._history == reference._history
            assert set(again._leases) == set(live)
            if live:
                assert await again.keepalive(live[0]) == 60
            new = await again.grant(5)
            assert new not in live and new > max([0x1000 - 1, *live])
        finally:
            await again.close()
            await reference.close()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(d))


def _refused(directory: Path, cluster: str = "c") -> str:
    with pytest.raises(InputError) as err:
        DurableStore.open(directory, cluster)
    return str(err.value)


def test_foreign_and_corrupt_files_are_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    before = db.read_bytes()
    assert "another program's SQLite database" in _refused(tmp_path)
    assert db.read_bytes() == before
    db.write_bytes(b"\x00garbage" * 1000)
    message = _refused(tmp_path)
    assert "corrupt or not a hakeeper store" in message and str(db) in message
    assert db.read_bytes() == b"\x00garbage" * 1000
    db.unlink()
    db.mkdir()
    assert "not a regular file" in _refused(tmp_path)


def test_damaged_page_is_refused(tmp_path: Path) -> None:
    async def fill() -> None:
        store = DurableStore.open(tmp_path, "c")
        for i in range(300):
            await store.put(f"/k/{i:04}", b"v" * 200)
        await store.close()

    asyncio.run(fill())
    db = tmp_path / "store.db"
    data = bytearray(db.read_bytes())
    page = 4096
    data[2 * page : 4 * page] = b"\xff" * 2 * page  # two b-tree pages scribbled over
    db.write_bytes(bytes(data))
    assert "corrupt" in _refused(tmp_path)
    assert db.read_bytes() == bytes(data)


def test_one_server_per_directory(tmp_path: Path) -> None:
    first = DurableStore.open(tmp_path, "c")
    try:
        assert "another hakeeper store is serving" in _refused(tmp_path)
    finally:
        asyncio.run(first.close())
    asyncio.run(DurableStore.open(tmp_path, "c").close())


def test_a_served_store_expires_reloaded_leases_without_any_client(tmp_path: Path) -> None:
    from hakeeper.coord.localserver import LocalServer

    async def main() -> None:
        store = DurableStore.open(tmp_path / "data", "c")
        await store.put("/held", b"x", await store.grant(1))
        await store.close()
        again = DurableStore.open(tmp_path / "data", "c")
        server = LocalServer(str(tmp_path / "s.sock"), again)
        await server.start()
        try:
            await asyncio.sleep(2.5)  # no request at all: the reaper runs from the start
            assert "/held" not in again._data
        finally:
            await server.close()
        assert await _keys_after_reopen(tmp_path / "data") == []

    async def _keys_after_reopen(directory: Path) -> list[str]:
        store = DurableStore.open(directory, "c")
        try:
            return [kv.key for kv in (await store.get_prefix("/"))[0]]
        finally:
            await store.close()

    asyncio.run(main())
