"""The routers in the store: one document, `/<cluster>/l3/routers`, holding the spec (YAML, as a
file would), the network nodes and the schedule (nodes, HA network, VRID and ha- host numbers of
every router).

Whoever changes the spec (`hakeeper router create ...`) also places the routers, with the stored
schedule as `previous`, and writes both in one compare-and-set: VRIDs and ha- addresses are
recorded once and kept for life, and every agent reads the same answer instead of working it out
(a new router with a lower id never moves another router's VRID). The agents follow the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hakeeper.coord.store import Put, Store, absent, unchanged_since
from hakeeper.errors import InputError
from hakeeper.l3.edits import Edit
from hakeeper.l3.model import RouterSpec
from hakeeper.l3.scheduler import HaNetwork, Placement, RouterWant, Schedule, schedule
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec

CAS_TRIES = 20


def routers_key(cluster: str) -> str:
    return f"/{cluster}/l3/routers"


@dataclass(frozen=True)
class Stored:
    spec: RouterSpec
    nodes: tuple[str, ...]
    schedule: Schedule
    revision: int = 0  # the key's mod revision when read (0: absent)
    down: tuple[str, ...] = ()  # network nodes lost (membership.py): no replicas are placed there


def encode_schedule(sched: Schedule) -> dict[str, object]:
    return {rid: {"nodes": list(p.nodes), "project": p.network.project, "segment": p.network.segment,
                  "vrid": p.vrid, "ha-hosts": dict(sorted(p.ha_hosts.items()))}
            for rid, p in sorted(sched.routers.items())}


def decode_schedule(data: dict[str, dict[str, object]]) -> Schedule:
    out = {}
    for rid, p in data.items():
        nodes = p["nodes"]
        hosts = p["ha-hosts"]
        assert isinstance(nodes, list) and isinstance(hosts, dict)
        out[rid] = Placement(tuple(str(n) for n in nodes), HaNetwork(str(p["project"]), int(str(p["segment"]))),
                             int(str(p["vrid"])), {str(k): int(v) for k, v in hosts.items()})
    return Schedule(out)


def encode(stored: Stored) -> bytes:
    return json.dumps({"spec": dump_router_spec(stored.spec), "nodes": list(stored.nodes),
                       "down": list(stored.down), "schedule": encode_schedule(stored.schedule)},
                      sort_keys=True).encode()


def decode(raw: bytes, revision: int = 0) -> Stored:
    d = json.loads(raw)
    spec = parse_router_spec(d["spec"], "<store>")
    return Stored(spec, tuple(d["nodes"]), decode_schedule(d["schedule"]), revision, tuple(d.get("down", ())))


def place(spec: RouterSpec, nodes: Sequence[str], previous: Schedule | None) -> Schedule:
    s = spec.settings
    wants = [RouterWant(r.id, r.project) for r in spec.routers if r.admin_state_up]
    return schedule(wants, nodes, s.replicas(len(nodes)), previous, ha_hosts=s.l3_ha_net_cidr.num_addresses - 2)


async def read(store: Store, cluster: str) -> Stored | None:
    kv = await store.get(routers_key(cluster))
    return None if kv is None else decode(kv.value, kv.mod_revision)


async def update(store: Store, cluster: str, edit: Edit | None = None, spec: RouterSpec | None = None,
                 nodes: Sequence[str] | None = None, down: Sequence[str] | None = None) -> Stored:
    """Apply `edit` to the stored spec (or store `spec`, and/or the `nodes`, and/or the nodes
    `down`), place the routers on the nodes not down with the stored schedule as the previous
    one, and write it all in one compare-and-set."""
    key = routers_key(cluster)
    for _ in range(CAS_TRIES):
        kv = await store.get(key)
        old = None if kv is None else decode(kv.value, kv.mod_revision)
        base = spec if spec is not None else (old.spec if old is not None else None)
        if base is None:
            raise InputError.at("no routers in the store yet: `hakeeper router init --spec FILE --nodes ...` first",
                                field="--store")
        new_nodes = tuple(nodes) if nodes is not None else (old.nodes if old is not None else ())
        if not new_nodes:
            raise InputError.at("no network nodes: give --nodes", field="--nodes")
        old_down = old.down if old is not None else ()
        new_down = tuple(sorted(set(down if down is not None else old_down) & set(new_nodes)))
        new_spec = edit(base) if edit is not None else base
        alive = [n for n in new_nodes if n not in new_down]
        sched = place(new_spec, alive, old.schedule if old is not None else None)
        stored = Stored(new_spec, new_nodes, sched, 0, new_down)
        guard = absent(key) if kv is None else unchanged_since(key, kv.mod_revision)
        result = await store.txn([guard], [Put(key, encode(stored))])
        if result.succeeded:
            return Stored(new_spec, new_nodes, sched, result.revision, new_down)
    raise RuntimeError(f"{key}: changed by others {CAS_TRIES} times in a row")
