"""The soak observer's checks on crafted sample streams: each check can fail, and a clean stream
passes (bench/soak_observer.py is pure: no clock, no I/O)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak_observer import Bounds, Expect, NodeSample, Observer, Sample

NODES = ("a", "b", "c")
EXPECT = Expect(NODES, frozenset({"db", "api"}), frozenset({"dummy"}), frozenset({"ovs"}),
                frozenset({"10.0.0.100"}), frozenset({"10.0.0.101"}))
BOUNDS = Bounds(recovery=10.0, vrrp=1.0, grace=1.0)


def node(*procs: str, link: bool = True, files: tuple[str, ...] = (), addrs: tuple[str, ...] = ()) -> NodeSample:
    return NodeSample(link, frozenset({"ovs", *procs}), frozenset(files), frozenset(addrs))


def healthy(t: float, **over: NodeSample) -> Sample:
    nodes = {
        "a": node("db", "api", files=("dummy",), addrs=("10.0.0.100",)),
        "b": node(addrs=("10.0.0.101",)),
        "c": node(),
    }
    return Sample(t, {**nodes, **over})


def test_a_clean_stream_has_no_violation_and_measures_recovery() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.sample(healthy(0.0))
    o.fault(1.0, "kill-service", "a")
    o.request(1.2, "vip", False)
    o.sample(healthy(1.5, a=node("api", files=("dummy",), addrs=("10.0.0.100",))))
    o.heal(3.0)
    o.sample(healthy(3.05, a=node("api", files=("dummy",), addrs=("10.0.0.100",))))
    o.sample(healthy(4.5))
    o.request(5.0, "vip", True)
    r = o.finish()
    assert r.violations == []
    assert r.recoveries == [1.5]
    assert (r.requests, r.lost, r.lost_outside) == (2, 1, 0)
    assert r.faults == {"kill-service": 1}


def test_a_primitive_on_two_nodes_is_one_violation_per_episode() -> None:
    o = Observer(EXPECT, BOUNDS)
    double = healthy(1.0, b=node("db", addrs=("10.0.0.101",)))
    assert [v.check for v in o.sample(double)] == ["double"]
    assert o.sample(healthy(1.05, b=node("db", addrs=("10.0.0.101",)))) == []  # same episode
    o.sample(healthy(1.1))
    assert len(o.sample(healthy(1.2, c=node("db")))) == 1  # a new episode
    assert "db active on a, c" in o.finish().violations[-1].what


def test_a_process_counts_even_on_a_node_whose_link_is_down() -> None:
    o = Observer(EXPECT, BOUNDS)
    assert len(o.sample(healthy(1.0, c=node("api", link=False)))) == 1


def test_file_resources_and_addresses_count_only_on_a_link_that_is_up() -> None:
    o = Observer(EXPECT, BOUNDS)
    fenced = node("db", link=False, files=("dummy",), addrs=("10.0.0.100",))
    # The fenced node's processes are gone; its state file and address stay but do not serve.
    fenced = NodeSample(False, frozenset({"ovs"}), fenced.files, fenced.addresses)
    assert o.sample(healthy(1.0, c=fenced)) == []
    up = NodeSample(True, frozenset({"ovs"}), fenced.files, fenced.addresses)
    assert sorted(v.what for v in o.sample(healthy(1.1, c=up))) == [
        "VIP 10.0.0.100 active on a, c", "dummy active on a, c"]


def test_vrrp_overlap_beyond_the_bound_is_a_violation_unless_isolated() -> None:
    o = Observer(EXPECT, BOUNDS)
    both = healthy(0.0, c=node(addrs=("10.0.0.101",)))
    for i in range(10):  # 0.5 s of overlap: within the bound
        assert o.sample(Sample(i * 0.05, both.nodes)) == []
    assert o.sample(healthy(0.6)) == []
    for i in range(30):  # 1.5 s: beyond it
        o.sample(Sample(1.0 + i * 0.05, both.nodes))
    assert [v.check for v in o.violations] == ["vrrp"]

    iso = Observer(EXPECT, BOUNDS)
    iso.fault(0.0, "partition", "c", isolates=True)
    for i in range(60):
        iso.sample(Sample(i * 0.05, both.nodes))
    iso.heal(3.0)
    for i in range(15):  # up to the bound after the heal: still allowed
        iso.sample(Sample(3.0 + i * 0.05, both.nodes))
    assert iso.violations == []
    for i in range(40):
        iso.sample(Sample(3.75 + i * 0.05, both.nodes))
    assert [v.check for v in iso.violations] == ["vrrp"]


def test_no_recovery_within_the_bound_is_a_violation() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.fault(0.0, "kill-agent", "a")
    o.heal(1.0)
    missing = healthy(0.0, c=NodeSample(True))  # ovs gone from c
    o.sample(Sample(5.0, missing.nodes))
    assert o.violations == []
    o.sample(Sample(11.5, missing.nodes))
    assert [v.check for v in o.violations] == ["recovery"]
    assert "ovs not on c" in o.violations[0].what


def test_a_heal_never_followed_by_recovery_is_reported_at_the_end() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.fault(0.0, "link-down", "b")
    o.heal(1.0)
    assert [v.check for v in o.finish().violations] == ["recovery"]


def test_requests_lost_outside_failover_windows_are_violations() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.request(0.5, "vip", False)  # before any fault
    o.fault(1.0, "partition", "a", isolates=True)
    o.request(1.5, "vip", False)
    o.heal(2.0)
    o.sample(healthy(2.5))
    o.request(3.2, "vip", False)  # within the grace after recovery
    o.request(4.0, "vrrp", False)  # after it
    r = o.finish()
    assert (r.lost, r.lost_outside) == (4, 2)
    assert [v.check for v in r.violations] == ["request"]


def test_a_changed_configuration_is_a_violation() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.config(1.0, True)
    o.config(2.0, False, "(hash 1 -> 2)")
    assert [v.check for v in o.finish().violations] == ["config"]


def test_percentiles() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.recoveries = [float(x) for x in range(1, 101)]
    r = o.finish()
    assert (r.percentile(0.5), r.percentile(0.99)) == (50.0, 99.0)
    assert any("p50 50.00s" in line for line in r.lines())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NODES), st.sampled_from(NODES), st.booleans()), min_size=1, max_size=40),
       st.data())
def test_any_stream_with_single_holders_is_clean_and_one_double_is_caught(
    moves: list[tuple[str, str, bool]], data: st.DataObject,
) -> None:
    """Random placements where each primitive sits on one node give no safety violation; a single
    sample with one primitive on two nodes gives exactly one."""
    o = Observer(EXPECT, BOUNDS)
    samples = []
    for i, (db_on, api_on, link) in enumerate(moves):
        nodes = {n: NodeSample(link or n != db_on, frozenset({"ovs"} | ({"db"} if n == db_on else set())
                                                          | ({"api"} if n == api_on else set())),
                               frozenset({"dummy"}) if n == api_on else frozenset(),
                               frozenset({"10.0.0.100"}) if n == api_on else frozenset())
                 for n in NODES}
        samples.append(Sample(i * 0.05, nodes))
    for s in samples:
        assert o.sample(s) == []
    at = data.draw(st.integers(0, len(samples) - 1))
    s = samples[at]
    other = next(n for n in NODES if "db" not in s.nodes[n].processes)
    bad = dict(s.nodes)
    bad[other] = NodeSample(True, bad[other].processes | {"db"}, bad[other].files, bad[other].addresses)
    fresh = Observer(EXPECT, BOUNDS)
    got = [v for x in samples[:at] for v in fresh.sample(x)] + fresh.sample(Sample(s.t, bad))
    assert [v.check for v in got] == ["double"]


def test_a_sample_taken_before_the_heal_does_not_count_as_recovery() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.fault(0.0, "stop-etcd", "b")
    o.heal(2.0)
    o.sample(healthy(1.95))  # scanned before the heal, checked after it
    assert o.recoveries == []
    o.sample(healthy(2.05))
    assert [round(x, 2) for x in o.recoveries] == [0.05]


def test_settled_since_marks_the_start_of_a_settled_stretch() -> None:
    o = Observer(EXPECT, BOUNDS)
    o.sample(healthy(1.0))
    o.sample(healthy(1.05))
    assert o.settled_since == 1.0
    o.sample(healthy(1.1, c=NodeSample(True)))
    assert o.settled_since is None
    o.sample(healthy(1.15))
    assert o.settled_since == 1.15
