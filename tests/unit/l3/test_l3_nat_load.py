"""The NAT table of a router namespace: a namespace just made gets it without the lines that
replace an existing table (deleting a table costs the kernel's commit an RCU grace period, 14 s
of the build of 1000 routers); a namespace that has one gets it replaced, never doubled."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from test_l3_hosting_layout import RID, SPEC

from conftest import needs_binary, needs_root
from hakeeper.l3 import nftlib
from hakeeper.l3.dataplane import NAT_TABLE, REPLACING, Layout, for_new_namespace, layout
from hakeeper.l3.model import Settings
from hakeeper.l3.scheduler import RouterWant, schedule


def router80() -> Layout:
    p = schedule([RouterWant(RID, "admin")], ["n7", "n8"], 3).routers[RID]
    return layout(SPEC.routers[0], p, "n7", Settings(), "x-")


def test_a_new_namespace_gets_the_table_without_replacing_one() -> None:
    nat = router80().nat
    assert nat.startswith(REPLACING) and "delete table" not in for_new_namespace(nat)
    assert for_new_namespace(nat) == nat[len(REPLACING):]


@pytest.fixture
def namespace() -> Iterator[str]:
    needs_root()
    needs_binary("nft", "nftables")
    name = f"hknat{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _listed(namespace: str) -> str:
    return subprocess.run(["ip", "netns", "exec", namespace, "nft", "list", "table", "ip", NAT_TABLE],
                          capture_output=True, text=True, check=True).stdout


def test_the_fresh_load_and_a_replacement_give_the_same_table(namespace: str) -> None:
    nat = router80().nat
    nftlib.load(namespace, for_new_namespace(nat))
    fresh = _listed(namespace)
    assert "snat to 10.0.80.101" in fresh and "notrack" in fresh
    nftlib.load(namespace, nat)  # what a refresh or an update does: replaced, not added to
    assert _listed(namespace) == fresh
