"""Leader election and membership on a Store, by compare-and-set on lease-bound keys.

The leader key exists only while its holder's lease lives: a leader that dies or loses the store
loses the key when the lease expires, and the next campaign's compare "key absent" succeeds for
exactly one candidate (etcd orders transactions). Membership is the same idea, one key per node.
"""

from __future__ import annotations

import json
from typing import Any

from hakeeper.coord.store import Compare, Delete, Put, Store, absent


async def campaign(store: Store, key: str, name: str, lease: int) -> bool:
    """Try to become leader; True if `name` holds the key under `lease` afterwards."""
    result = await store.txn([absent(key)], [Put(key, name.encode(), lease)])
    if result.succeeded:
        return True
    current = await store.get(key)
    return current is not None and current.value == name.encode() and current.lease == lease


async def resign(store: Store, key: str, name: str) -> bool:
    return (await store.txn([Compare(key, "value", "==", name.encode())], [Delete(key)])).succeeded


async def leader(store: Store, key: str) -> str | None:
    kv = await store.get(key)
    return None if kv is None else kv.value.decode()


async def register(store: Store, members_prefix: str, node: str, lease: int, info: dict[str, Any]) -> None:
    await store.put(members_prefix + node, json.dumps(info, sort_keys=True).encode(), lease)


async def members(store: Store, members_prefix: str) -> dict[str, dict[str, Any]]:
    kvs, _ = await store.get_prefix(members_prefix)
    return {kv.key[len(members_prefix) :]: json.loads(kv.value) for kv in kvs}
