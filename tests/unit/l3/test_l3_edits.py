"""`hakeeper router create|delete|add-interface|...` as pure spec edits, and the stored document
(spec + schedule) with its compare-and-set: VRIDs recorded once and kept for life."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.coord.memory import MemoryStore
from hakeeper.errors import InputError
from hakeeper.l3 import edits
from hakeeper.l3.model import RouterSpec, Settings
from hakeeper.l3.routerstore import decode, encode, read, update

BASE = RouterSpec(settings=Settings(l3_ha=True, max_l3_agents_per_router=2))
R80 = "7a46dba8-8846-498c-9e10-588664558473"


def router80() -> RouterSpec:
    spec = edits.create(R80, "router80", "service")(BASE)
    spec = edits.add_interface("router80", "vxlan-subnet80", "192.168.80.1/24")(spec)
    spec = edits.set_gateway("router80", "ext-net80", "10.0.80.101/24", "10.0.80.1")(spec)
    return edits.add_floating_ip("router80", "10.0.80.110", "192.168.80.10")(spec)


def test_edits_build_router80() -> None:
    r, = router80().routers
    assert (r.id, r.name, r.project) == (R80, "router80", "service")
    assert str(r.interfaces[0].address) == "192.168.80.1/24"
    assert r.gateway is not None and str(r.gateway.upstream) == "10.0.80.1"
    assert str(r.floating_ips[0].external) == "10.0.80.110"
    no_fip = edits.set_gateway("router80", "ext-net80", "10.0.80.101/24", "10.0.80.1")(
        edits.add_interface("router80", "vxlan-subnet80", "192.168.80.1/24")(edits.create(R80, "router80", "s")(BASE)))
    spec = edits.remove_interface(R80, "vxlan-subnet80")(no_fip)
    assert spec.routers[0].interfaces == []
    assert edits.delete("router80")(router80()).routers == []


@pytest.mark.parametrize(("edit", "option", "words"), [
    (edits.set_gateway("router80", "ext-net80", "10.0.80.101/24", "10.0.81.1"), "--network/--address/--upstream",
     "outside the gateway's subnet"),
    (edits.add_floating_ip("router80", "10.0.80.110", "192.168.80.11"), "--external/--fixed", "already used"),
    (edits.add_floating_ip("router80", "10.0.90.5", "192.168.80.11"), "--external/--fixed", "not a free address"),
    (edits.add_interface("router80", "vxlan-subnet80", "192.168.81.1/24"), "--subnet", "already has"),
    (edits.add_interface("router80", "other", "192.168.80.129/25"), "--subnet/--address", "overlap"),
    (edits.remove_interface("router80", "vxlan-subnet80"), "--subnet", "still points"),
    (edits.create("x1", "router80", "service"), "NAME", "router name router80"),
    (edits.create("bad/id", "r2", "service"), "--id", "not an id"),
    (edits.delete("nosuch"), "ROUTER", "no router"),
])
def test_bad_edits_name_their_option(edit: edits.Edit, option: str, words: str) -> None:
    with pytest.raises(InputError) as exc:
        edit(router80())
    problem, = exc.value.problems
    assert problem.field == option
    assert words in problem.message


def test_stored_document_round_trips() -> None:
    async def go() -> None:
        store = MemoryStore()
        stored = await update(store, "c", spec=router80(), nodes=("network7", "network8"))
        again = decode(encode(stored))
        assert again.spec == stored.spec and again.nodes == stored.nodes
        assert again.schedule.routers == stored.schedule.routers
        assert (await read(store, "c")) is not None
    asyncio.run(go())


def test_no_spec_in_the_store_is_a_clear_error() -> None:
    async def go() -> None:
        with pytest.raises(InputError, match="router init"):
            await update(MemoryStore(), "c", edit=edits.delete("router80"))
    asyncio.run(go())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), min_size=1, max_size=25))
def test_vrids_kept_for_life_across_creates_and_deletes(steps: list[tuple[bool, int]]) -> None:
    """Routers created (with any id, so a new one may sort first) and deleted through the store:
    a router's VRID and nodes never change while it exists, and no two routers share a VRID."""
    async def go() -> None:
        store = MemoryStore()
        await update(store, "c", spec=BASE, nodes=("n1", "n2", "n3"))
        seen: dict[str, tuple[int, tuple[str, ...]]] = {}
        for create, k in steps:
            rid = f"r{k:02d}"
            stored = await read(store, "c")
            assert stored is not None
            exists = any(r.id == rid for r in stored.spec.routers)
            if create and not exists:
                stored = await update(store, "c", edit=edits.create(rid, f"name{k}", "p"))
            elif not create and exists:
                stored = await update(store, "c", edit=edits.delete(rid))
                seen.pop(rid)
            else:
                continue
            vrids = [p.vrid for p in stored.schedule.routers.values()]
            assert len(vrids) == len(set(vrids))
            for r, p in stored.schedule.routers.items():
                assert seen.setdefault(r, (p.vrid, p.nodes)) == (p.vrid, p.nodes)
    asyncio.run(go())
