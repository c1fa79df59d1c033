"""`hakeeper galera status|bootstrap`: the pure parts (rows from the store's attributes, the
bootstrap plan) and the command line's bad-input paths (exit 2, file/line/field, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from hakeeper.errors import InputError
from hakeeper.galera.bootstrap import ZERO_UUID, Position
from hakeeper.galera.commands import NodeRow, Role, galera_resource, plan_bootstrap, render, rows

NODES = ["g1", "g2", "g3"]
U = "6b3a3c55-1e59-11ef-9d2b-6b0c3f1c2a10"


def _table(seqnos: dict[str, int | None], online: set[str] | None = None,
           roles: dict[str, Role] | None = None) -> list[NodeRow]:
    attrs = {n: {"galera-last-committed": str(s)} for n, s in seqnos.items() if s is not None}
    return rows("galera", NODES, set(NODES) if online is None else online, attrs, roles or {})


def test_rows_read_the_agents_attributes() -> None:
    attrs = {
        "g1": {"galera-last-committed": "18446744073709551615", "galera-no-grastate": "true"},
        "g2": {"galera-last-committed": "812", "galera-safe-to-bootstrap": "0", "galera-bootstrap": "true"},
        "g3": {"master-galera": "100"},
    }
    table = rows("galera", NODES, {"g1", "g2"}, attrs, {"g2": "Unpromoted", "g3": "Promoted"})
    g1, g2, g3 = table
    assert (g1.seqno, g1.no_grastate, g1.role) == (-1, True, "Stopped")
    assert (g2.seqno, g2.safe_to_bootstrap, g2.bootstrap, g2.role) == (812, False, True, "Unpromoted")
    # An offline node's leftovers are not shown as its state.
    assert (g3.online, g3.role, g3.score) == (False, "Stopped", None)
    text = render("galera", table)
    assert "812" in text and "chosen to bootstrap" in text and "OFFLINE" in text
    assert "primary component: none" in text


def test_the_most_advanced_node_needs_no_force() -> None:
    plan = plan_bootstrap(_table({"g1": 10, "g2": 12, "g3": 11}), "g2", force=False)
    assert (plan.node, plan.seqno, plan.forced, plan.may_lose) == ("g2", 12, False, ())


def test_a_node_that_is_behind_is_refused_and_the_loss_is_named() -> None:
    table = _table({"g1": 10, "g2": 12, "g3": 11})
    with pytest.raises(InputError) as info:
        plan_bootstrap(table, "g1", force=False)
    text = str(info.value)
    assert "--force" in text and "g2" in text and "g3" in text and "NODE" in text
    plan = plan_bootstrap(table, "g1", force=True)
    assert plan.forced and plan.may_lose == ("g2", "g3")
    assert "LOST" in plan.describe()


def test_a_missing_node_may_be_more_advanced() -> None:
    table = _table({"g2": 12, "g3": 11}, online={"g2", "g3"})
    with pytest.raises(InputError) as info:
        plan_bootstrap(table, "g2", force=False)
    assert "has not reported" in str(info.value) and "g1" in str(info.value)
    plan = plan_bootstrap(table, "g2", force=True)
    assert plan.may_lose == ("g1",)


@pytest.mark.parametrize(
    ("table", "node", "says"),
    [
        (_table({"g1": 1, "g2": 2, "g3": 3}), "g9", "unknown node"),
        (_table({"g1": 1, "g2": 2, "g3": 3}, roles={"g3": "Promoted"}), "g1", "primary component runs"),
        (_table({"g2": 2, "g3": 3}, online={"g2", "g3"}), "g1", "offline"),
        (_table({"g1": None, "g2": 2, "g3": 3}), "g1", "not reported"),
    ],
)
def test_refusals(table: list[NodeRow], node: str, says: str) -> None:
    with pytest.raises(InputError) as info:
        plan_bootstrap(table, node, force=True)
    assert says in str(info.value)


def test_a_node_without_history_never_bootstraps_even_forced() -> None:
    with pytest.raises(InputError) as info:
        plan_bootstrap(_table({"g1": 5, "g2": 5, "g3": 5}), "g1", force=True, grastate=Position(ZERO_UUID, -1))
    assert "zero UUID" in str(info.value)


@given(hs.dictionaries(hs.sampled_from(NODES), hs.integers(-1, 10**6), min_size=3, max_size=3),
       hs.sampled_from(NODES), hs.booleans())
def test_never_an_unforced_bootstrap_behind_another_node(seqnos: dict[str, int], node: str, force: bool) -> None:
    ahead = {n for n, s in seqnos.items() if s > seqnos[node]}
    try:
        plan = plan_bootstrap(_table(dict(seqnos)), node, force)
    except InputError:
        assert not force and ahead  # refused only when unforced and another node is ahead
        return
    assert set(plan.may_lose) == ahead and plan.forced == bool(ahead)


def test_the_galera_primitive_is_found_or_named() -> None:
    assert galera_resource({"db": "ocf:heartbeat:galera", "vip": "ocf:heartbeat:IPaddr2"}, None) == "db"
    with pytest.raises(InputError, match="--resource"):
        galera_resource({"vip": "ocf:heartbeat:IPaddr2"}, None)
    with pytest.raises(InputError, match="--resource"):
        galera_resource({"a": "ocf:heartbeat:galera", "b": "ocf:heartbeat:galera"}, None)
    with pytest.raises(InputError, match="configured"):
        galera_resource({"a": "ocf:heartbeat:galera"}, "b")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hakeeper", "galera", *args], capture_output=True, text=True,
                          timeout=60)


def test_a_corrupt_grastate_is_exit_2_with_file_line_field(tmp_path: Path) -> None:
    bad = tmp_path / "grastate.dat"
    bad.write_text(f"# GALERA saved state\nversion: 2.1\nuuid:    {U}\nseqno:   twelve\n")
    out = _cli("bootstrap", "g1", "--grastate", str(bad), "--store", str(tmp_path / "none.sock"))
    assert out.returncode == 2, out.stderr
    assert f"{bad}:4: seqno:" in out.stderr and "Traceback" not in out.stderr


def test_no_store_is_exit_2() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    out = subprocess.run([sys.executable, "-m", "hakeeper", "galera", "status"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
