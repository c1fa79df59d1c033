"""The pure VRRP state machine: unit tests and a discrete-event simulation of N peers."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.vrrp.machine import (
    Machine,
    Params,
    Send,
    State,
    SyncGroup,
    Transition,
    effective_priority,
    master_down_interval,
    skew_time,
)


def test_formulas() -> None:
    assert skew_time(2, 100, 100) == pytest.approx(156 / 256)
    assert master_down_interval(2, 200, 100) == pytest.approx(3 + 56 / 256)
    # v3 in centiseconds: MAI 10 cs, priority 100 -> skew 6.09 cs.
    assert skew_time(3, 100, 10) == pytest.approx(156 * 10 / 256 / 100)
    assert master_down_interval(3, 100, 100) == pytest.approx(3 + 156 / 256)


def test_backup_takes_over_after_down_interval() -> None:
    m = Machine(Params(2, 100, 100, 1))
    assert m.start(0.0) == [Transition(State.INIT, State.BACKUP)]
    assert m.deadline() == pytest.approx(3 + 156 / 256)
    m.on_advert(1.0, 200, 100, 2)
    assert m.tick(3.7) == []
    acts = m.tick(1.0 + m.down_interval())
    assert acts == [Send(100), Transition(State.BACKUP, State.MASTER)]


def test_priority_zero_means_skew_time() -> None:
    m = Machine(Params(3, 100, 100, 1))
    m.start(0.0)
    m.on_advert(0.5, 0, 100, 2)
    assert m.deadline() == pytest.approx(0.5 + skew_time(3, 100, 100))


def test_v3_learns_master_interval() -> None:
    m = Machine(Params(3, 100, 100, 1))
    m.start(0.0)
    m.on_advert(0.1, 200, 10, 2)
    assert m.deadline() == pytest.approx(0.1 + master_down_interval(3, 100, 10))


def test_owner_starts_master_and_shutdown_sends_zero() -> None:
    m = Machine(Params(2, 255, 100, 1))
    assert m.start(0.0) == [Send(255), Transition(State.INIT, State.MASTER)]
    assert m.shutdown(1.0) == [Send(0), Transition(State.MASTER, State.STOP)]


def test_master_yields_to_higher_and_tie_break() -> None:
    m = Machine(Params(2, 100, 100, 5))
    m.start(0.0)
    m.tick(10.0)
    assert m.state == State.MASTER
    assert m.on_advert(10.5, 100, 100, 4) == [Send(100)]  # lower address: we stay
    assert m.state == State.MASTER
    m.on_advert(10.6, 100, 100, 6)
    assert m.state == State.BACKUP


def test_nopreempt_and_preempt_delay() -> None:
    m = Machine(Params(2, 200, 100, 1, preempt=False))
    m.start(0.0)
    for t in range(1, 20):
        m.on_advert(float(t), 100, 100, 2)
        m.tick(float(t))
    assert m.state == State.BACKUP
    d = Machine(Params(2, 200, 100, 1, preempt_delay=5.0))
    d.start(0.0)
    t = 0.0
    while d.state == State.BACKUP and t < 30:
        t += 1.0
        d.tick(t)
        if d.state == State.BACKUP:
            d.on_advert(t, 100, 100, 2)
    assert d.state == State.MASTER and t >= 5.0


def test_fault_and_effective_priority() -> None:
    assert effective_priority(100, [(-30, False), (20, True), (10, False)]) == (90, False)
    assert effective_priority(100, [(0, False)]) == (100, True)
    assert effective_priority(250, [(20, True)]) == (254, False)
    assert effective_priority(255, [(-20, False)]) == (255, False)
    assert effective_priority(100, [], faults=1) == (100, True)
    m = Machine(Params(2, 100, 100, 1))
    m.start(0.0)
    m.tick(5.0)
    assert m.set_fault(6.0, True) == [Send(0), Transition(State.MASTER, State.FAULT)]
    assert m.set_fault(7.0, False) == [Transition(State.FAULT, State.BACKUP)]


def test_sync_group_follows() -> None:
    a, b = Machine(Params(2, 100, 100, 1)), Machine(Params(2, 100, 100, 1))
    g = SyncGroup([a, b])
    a.start(0.0)
    b.start(0.0)
    acts = a.tick(4.0)
    follow = g.follow(4.0, a, acts)
    assert b.state == State.MASTER and follow[1][-1] == Transition(State.BACKUP, State.MASTER)
    acts = a.set_fault(5.0, True)
    g.follow(5.0, a, acts)
    assert b.state == State.FAULT
    acts = a.set_fault(6.0, False)
    g.follow(6.0, a, acts)
    assert b.state == State.BACKUP


# -- a small discrete-event simulator over the pure machine --------------------------------------

@dataclass(order=True)
class Event:
    at: float
    seq: int
    node: int = field(compare=False)
    kind: str = field(compare=False)  # "start", "advert"
    prio: int = field(compare=False, default=0)
    interval: int = field(compare=False, default=0)
    src: int = field(compare=False, default=0)


def simulate(params: list[Params], starts: list[float], delay: float, until: float) -> list[Machine]:
    """N peers that all hear each other after `delay`; returns the machines at `until`."""
    nodes = [Machine(p) for p in params]
    queue: list[Event] = []
    seq = 0

    def push(ev: Event) -> None:
        heapq.heappush(queue, ev)

    for i, t in enumerate(starts):
        seq += 1
        push(Event(t, seq, i, "start"))

    def emit(i: int, now: float, actions: list[Send | Transition]) -> None:
        nonlocal seq
        for act in actions:
            if isinstance(act, Send):
                for j in range(len(nodes)):
                    if j != i:
                        seq += 1
                        push(Event(now + delay, seq, j, "advert", act.priority,
                                   nodes[i].params.interval_cs, nodes[i].params.primary))

    now = 0.0
    while True:
        timers = [(m.deadline(), i) for i, m in enumerate(nodes) if m.deadline() is not None]
        next_timer = min(timers, key=lambda x: (x[0], x[1])) if timers else None
        next_ev = queue[0] if queue else None
        if next_timer and (next_ev is None or next_timer[0] < next_ev.at):  # type: ignore[operator]
            now, i = next_timer  # type: ignore[assignment]
            if now > until:
                break
            emit(i, now, nodes[i].tick(now))
            continue
        if next_ev is None or next_ev.at > until:
            break
        heapq.heappop(queue)
        now = next_ev.at
        m = nodes[next_ev.node]
        if next_ev.kind == "start":
            emit(next_ev.node, now, m.start(now))
        elif m.state != State.INIT:
            emit(next_ev.node, now, m.on_advert(now, next_ev.prio, next_ev.interval, next_ev.src))
    return nodes


peers = st.lists(
    st.tuples(st.integers(1, 255), st.floats(0, 5), st.booleans()), min_size=1, max_size=6
)


@settings(max_examples=150, deadline=None)
@given(peers=peers, version=st.sampled_from([2, 3]), delay=st.floats(0.0001, 0.05),
       fast=st.booleans())
def test_simulation_elects_one_highest_master(
    peers: list[tuple[int, float, bool]], version: int, delay: float, fast: bool
) -> None:
    interval = 10 if (fast and version == 3) else 100
    params = []
    for n, (prio, _, start_master) in enumerate(peers):
        # Only one address owner (255) can exist on a segment.
        p = 254 if prio == 255 and n > 0 else prio
        params.append(Params(version, p, interval, primary=1000 + (n * 7919) % 101,
                             start_master=start_master))
    starts = [s for _, s, _ in peers]
    nodes = simulate(params, starts, delay, until=max(starts) + 40 * interval / 100 + 10)
    masters = [m for m in nodes if m.state == State.MASTER]
    assert len(masters) == 1
    best = max(nodes, key=lambda m: (m.priority, m.params.primary))
    assert masters[0] is best


@settings(max_examples=50, deadline=None)
@given(prios=st.lists(st.integers(1, 254), min_size=2, max_size=5))
def test_simulation_master_stop_hands_over(prios: list[int]) -> None:
    params = [Params(2, p, 100, primary=10 + i) for i, p in enumerate(prios)]
    nodes = simulate(params, [0.0] * len(prios), 0.001, until=20.0)
    master = next(m for m in nodes if m.state == State.MASTER)
    master.shutdown(20.0)
    # The others learn of the stop through a priority-0 advert; they then wait Skew_Time.
    for m in nodes:
        if m is not master:
            m.on_advert(20.001, 0, 100, master.params.primary)
    rest = [m for m in nodes if m is not master]
    soonest = min(m.deadline() or 99 for m in rest)
    assert soonest <= 20.001 + 1.0
