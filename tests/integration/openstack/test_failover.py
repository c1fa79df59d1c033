"""Real haproxy and VRRP on three controller namespaces, stand-in APIs, a client namespace."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from oslab import Bed, bed_fixture, read_results, speakers, stop_probe, sweep_leftovers  # noqa: F401 - fixtures

both_speakers = pytest.mark.parametrize("bed", speakers(), indirect=True)


def test_requests_spread_over_controllers(bed: Bed) -> None:
    results = read_results(bed.probe("--url", bed.url(), "--count", "30", "--interval", "0.01"))
    assert all(r["ok"] for r in results), results
    assert set(Counter(r["node"] for r in results)) == {"c1", "c2", "c3"}


@both_speakers
def test_killing_haproxy_on_the_holder_moves_the_vip(bed: Bed) -> None:
    holder = bed.stack.wait_holder(bed.vip)
    bed.stack.kill_haproxy(holder)
    # The check fails twice (fall 2, every 0.5 s), the holder's priority drops below the others'.
    deadline = time.monotonic() + 15
    new = holder
    while new == holder and time.monotonic() < deadline:
        time.sleep(0.1)
        new = bed.stack.wait_holder(bed.vip)
    assert new != holder
    results = read_results(bed.probe("--url", bed.url(), "--count", "10", "--interval", "0.01"))
    assert all(r["ok"] for r in results), results


def test_a_stopped_backend_leaves_the_rotation(bed: Bed) -> None:
    bed.stack.stop_backends("c2")
    # haproxy checks every 200 ms and needs two failures: give it generous time, then no request
    # may reach c2 any more.
    time.sleep(2.0)
    results = read_results(bed.probe("--url", bed.url(), "--count", "30", "--interval", "0.01"))
    assert all(r["ok"] for r in results), results
    assert {r["node"] for r in results} == {"c1", "c3"}
    stats = bed.stack.nodes[bed.stack.wait_holder(bed.vip)].haproxy
    assert stats.running()


@both_speakers
def test_requests_fail_only_during_the_failover(bed: Bed) -> None:
    holder = bed.stack.wait_holder(bed.vip)
    probe = bed.probe("--url", bed.url(), "--interval", "0.02", "--timeout", "0.25")
    time.sleep(1.5)
    crashed_at = time.monotonic()
    bed.stack.crash(holder)
    new = bed.stack.wait_holder(bed.vip, exclude=holder)
    moved_at = time.monotonic()
    time.sleep(2.0)
    results = stop_probe(probe)
    assert new != holder
    before = [r for r in results if r["t"] < crashed_at - 0.3]
    after = [r for r in results if r["t"] > moved_at + 1.0]
    assert before and all(r["ok"] for r in before)
    assert after and all(r["ok"] for r in after), [r for r in after if not r["ok"]]
    assert all(r["node"] != holder for r in after if r["ok"])
    failed = [r for r in results if not r["ok"]]
    # Every failure sits inside the failover window (generous bounds; speed is measured in bench).
    assert all(crashed_at - 0.3 <= r["t"] <= moved_at + 1.0 for r in failed), failed


def test_a_reload_under_load_drops_no_connection(bed: Bed) -> None:
    holder = bed.stack.wait_holder(bed.vip)
    node = bed.stack.nodes[holder]
    slow = bed.probe("--url", bed.url("/slow?ms=1500"), "--concurrent", "20", "--timeout", "10")
    steady = bed.probe("--url", bed.url(), "--interval", "0.01", "--timeout", "1")
    time.sleep(0.5)  # the slow requests are established and waiting on their backends
    workers_before = node.haproxy.workers()
    config = bed.stack.haproxy_config(holder) + "# reloaded under load\n"
    assert node.haproxy.apply(config) is True
    assert node.haproxy.workers() != workers_before
    time.sleep(0.5)
    steady_results = stop_probe(steady)
    slow_results = read_results(slow)
    assert len(slow_results) == 20 and all(r["ok"] for r in slow_results), slow_results
    assert steady_results and all(r["ok"] for r in steady_results), [r for r in steady_results if not r["ok"]]


def _mysql_served_by(bed: Bed, url: str) -> set[str]:
    """Which controllers answered a burst of connections through the MySQL VIP (all must succeed)."""
    results = read_results(bed.probe("--url", url, "--count", "10", "--interval", "0.01"))
    assert all(r["ok"] for r in results), results
    return {r["node"] for r in results}


def _writer_fails_over_from_c1(bed: Bed, url: str) -> None:
    """The writer starts on c1; c1's MySQL stops and the writer goes to c2, the first backup."""
    assert _mysql_served_by(bed, url) == {"c1"}
    bed.stack.stop_backends("c1")
    time.sleep(2.0)  # checks every 200 ms, fall 2: generous
    assert _mysql_served_by(bed, url) == {"c2"}


def test_mysql_goes_to_one_node_at_a_time_and_does_not_fail_back(bed: Bed) -> None:
    mysql = bed.url(port=3306, vip="10.93.1.101")
    _writer_fails_over_from_c1(bed, mysql)
    # c1 comes back: the writer stays on c2 (stick on dst), no second switch of the Galera writer.
    bed.stack.start_backends("c1")
    time.sleep(2.0)
    assert _mysql_served_by(bed, mysql) == {"c2"}


def test_the_mysql_writer_stays_the_same_when_the_vip_moves(bed: Bed) -> None:
    """The controllers' haproxies share their stick table (peers): the new VIP holder keeps the
    writer the old one chose, even once the first server is back."""
    mysql_vip = bed.stack.resolved.vip_addresses()[1]
    mysql = bed.url(port=3306, vip=str(mysql_vip))
    holder = bed.stack.wait_holder(mysql_vip)
    _writer_fails_over_from_c1(bed, mysql)
    # The writer's haproxy dies: the VIP goes to another controller, whose haproxy has never
    # carried a MySQL connection itself. Then c1's MySQL comes back.
    bed.stack.kill_haproxy(holder)
    new = _settled_holder(bed, mysql_vip, exclude=holder)
    assert bed.stack.holders(mysql_vip) == [new]
    bed.stack.start_backends("c1")
    time.sleep(2.0)
    assert _mysql_served_by(bed, mysql) == {"c2"}, new


def _settled_holder(bed: Bed, vip: object, exclude: str, settle: float = 4.0, timeout: float = 30.0) -> str:
    """The node that holds the VIP once the election is over. When the holder's priority drops,
    both backups may take the VIP for a moment before the higher priority wins, so the first
    holder seen is not always the last: wait until one node has held it alone for `settle`
    seconds (several advert intervals)."""
    deadline = time.monotonic() + timeout
    held, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = [h for h in bed.stack.holders(vip) if h != exclude]  # type: ignore[arg-type]
        current = now[0] if len(now) == 1 and len(bed.stack.holders(vip)) == 1 else None  # type: ignore[arg-type]
        if current != held:
            held, since = current, time.monotonic()
        elif held is not None and time.monotonic() - since >= settle:
            return held
        time.sleep(0.1)
    raise AssertionError(f"the VIP {vip} did not settle on one node within {timeout}s")
