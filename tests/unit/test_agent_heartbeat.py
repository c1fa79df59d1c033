"""Heartbeat failure detection (pure): silent nodes are suspected only while the store works."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as stt

from hakeeper.agent.heartbeat import Heartbeats, interval_for, write_deadline
from hakeeper.resources.stonith import fence_delay


def beat_all(hb: Heartbeats, nodes: list[str], start: float, rounds: int, step: float = 0.5) -> float:
    t = start
    for _ in range(rounds):
        t += step
        for n in nodes:
            hb.saw(n, t)
    return t


def test_silent_node_suspected_after_timeout_while_store_works() -> None:
    hb = Heartbeats("a")
    t = beat_all(hb, ["a", "b", "c"], 0.0, 4)
    assert hb.suspects(["a", "b", "c"], t + 0.1, 1.5) == set()
    # c dies: a and b keep beating.
    t2 = beat_all(hb, ["a", "b"], t, 2)
    assert hb.suspects(["a", "b", "c"], t2, 1.5) == set()  # 1.0 s: not yet
    t3 = beat_all(hb, ["a", "b"], t2, 2)
    assert hb.suspects(["a", "b", "c"], t3, 1.5) == {"c"}
    # Only members are suspects: its lease expired, the member key is gone.
    assert hb.suspects(["a", "b"], t3, 1.5) == set()
    # Disabled.
    assert hb.suspects(["a", "b", "c"], t3, 0) == set()
    # It comes back (a new incarnation beats): no longer suspected.
    hb.saw("c", t3 + 0.1)
    assert hb.suspects(["a", "b", "c"], t3 + 0.2, 1.5) == set()


def test_stalled_store_suspects_nobody() -> None:
    hb = Heartbeats("a")
    t = beat_all(hb, ["a", "b", "c"], 0.0, 4)
    # A raft election: nothing arrives for 5 s, not even my own heartbeat.
    assert hb.suspects(["a", "b", "c"], t + 5.0, 1.5) == set()
    # The store resumes; my heartbeat comes first, once: still nobody.
    hb.saw("a", t + 5.1)
    assert hb.suspects(["a", "b", "c"], t + 5.1, 1.5) == set()
    hb.saw("b", t + 5.2)
    hb.saw("c", t + 5.2)
    assert hb.suspects(["a", "b", "c"], t + 5.3, 1.5) == set()


def test_a_stall_restarts_everyones_clock() -> None:
    """A raft election stalls the store for everyone; my beats resume first, another node's
    only after its client has tried two more members (0.5 s each). It is not suspected: its
    silence counts from the end of my stall. A node that died in the stall is suspected a full
    node_timeout after it."""
    hb = Heartbeats("a")
    t = beat_all(hb, ["a", "b", "c"], 0.0, 4, step=0.375)
    resumed = t + 1.0  # the election: nothing arrives for a second
    mine = beat_all(hb, ["a"], resumed - 0.375, 4, step=0.375)  # mine: resumed .. resumed + 1.125
    assert mine - t > 1.5 and hb.own - 4 >= 3  # what used to make b and c suspects
    assert hb.suspects(["a", "b", "c"], mine, 1.5) == set()
    hb.saw("b", resumed + 1.2)  # b landed its beat on its third member
    later = beat_all(hb, ["a"], mine, 2, step=0.375)
    assert later - resumed > 1.5
    assert hb.suspects(["a", "b", "c"], later, 1.5) == {"c"}  # c died in the stall


def test_short_gaps_do_not_count_as_stalls() -> None:
    """My beats late by less than half a node_timeout are no stall: c, silent for longer than
    node_timeout, is suspected on time."""
    hb = Heartbeats("a")
    t = beat_all(hb, ["a", "b", "c"], 0.0, 4, step=0.375)
    t2 = beat_all(hb, ["a", "b"], t, 5, step=0.7)
    assert t2 - t > 1.5 + 0.7
    assert hb.suspects(["a", "b", "c"], t2, 1.5) == {"c"}


def test_reset_and_forget() -> None:
    hb = Heartbeats("a")
    t = beat_all(hb, ["a", "b"], 0.0, 2)
    hb.reset(["a", "b"], t + 10)  # after a resync: a full timeout again
    t2 = beat_all(hb, ["a"], t + 10, 3, step=0.4)
    assert hb.suspects(["a", "b"], t2, 1.5) == set()
    hb.forget("b")
    t3 = beat_all(hb, ["a"], t2, 5)
    assert hb.suspects(["a", "b"], t3, 1.5) == set()  # never seen since: the lease decides


@given(
    stt.lists(stt.tuples(stt.sampled_from("abc"), stt.floats(0, 0.6)), max_size=60),
    stt.floats(0.1, 5),
    stt.floats(0, 10),
)
def test_never_me_never_unseen_and_only_after_timeout(
    beats: list[tuple[str, float]], timeout: float, later: float
) -> None:
    hb = Heartbeats("a")
    t = 0.0
    last: dict[str, float] = {}
    for node, gap in beats:
        t += gap
        hb.saw(node, t)
        last[node] = t
    now = t + later
    got = hb.suspects(["a", "b", "c", "d"], now, timeout)
    assert "a" not in got and "d" not in got
    assert all(now - last[n] > timeout for n in got)


def test_interval_beats_at_least_four_times_per_timeout() -> None:
    assert interval_for(2, 1.5) == 0.375
    assert interval_for(2, 10) == 0.5
    assert interval_for(10, 0.01) == 0.05


@given(stt.floats(min_value=0.05, max_value=600))
def test_a_beat_can_try_a_second_endpoint_inside_node_timeout(node_timeout: float) -> None:
    # One dead endpoint plus one that answers within the same deadline still lands the beat
    # before the leader suspects the node (for any node-timeout from 0.3 s up).
    deadline = write_deadline(node_timeout)
    assert deadline > 0
    if node_timeout >= 0.3:
        assert 2 * deadline < node_timeout


def test_fence_delay_parameters() -> None:
    assert fence_delay({"pcmk_delay_base": "2s", "pcmk_delay_max": "500ms"}) == (2.0, 0.5)
    assert fence_delay({}) == (0.0, 0.0)
    # A typo never stops fencing: no delay.
    assert fence_delay({"pcmk_delay_base": "soon"}) == (0.0, 0.0)
