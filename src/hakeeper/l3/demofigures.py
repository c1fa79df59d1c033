"""The figures of `hakeeper demo routers`, from what its probes recorded (pure: times in, figures
out), and the demo's verdict."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hakeeper.netlab.livedemo import seconds

HostStates = Mapping[str, tuple[bool, str]]  # host -> (alive, ha_state), as list-hosting shows
Sample = tuple[float, HostStates]  # (time the read was asked, what it said)


def longest_gap(times: Sequence[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] without an event: what a person watching saw freeze."""
    inside = sorted(t for t in times if start <= t <= end)
    edges = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(edges))


def ping_loss(replies: Mapping[int, float]) -> tuple[int, int]:
    """(sent, lost) up to the last answered ping (sequence numbers from 1): the pings still in
    flight when the demo stopped are neither."""
    sent = max(replies, default=0)
    return sent, sent - len(replies)


def first_at(samples: Sequence[Sample], since: float, holds: Callable[[HostStates], bool]) -> float | None:
    """When the first read asked at or after `since` said what `holds` wants, in seconds after it."""
    return next((t - since for t, states in samples if t >= since and holds(states)), None)


def active_hosts(states: HostStates) -> list[str]:
    return sorted(h for h, (alive, state) in states.items() if alive and state == "active")


def longest_dual_active(samples: Sequence[Sample]) -> float:
    """The longest run of reads with two or more alive active hosts, from its first read to the
    first read after it that had fewer (or the last read)."""
    longest, since = 0.0, None
    for t, states in samples:
        if len(active_hosts(states)) > 1:
            since = t if since is None else since
            longest = max(longest, t - since)
        elif since is not None:
            longest, since = max(longest, t - since), None
    return longest


@dataclass(frozen=True)
class Outcome:
    """What the demo measured around the kill of the active node (None: never happened)."""

    bound: float  # the VRRP bound: 3 x advert_int + skew
    advert: float
    resolution: float  # how often list-hosting was read: a change is seen up to this much later
    takeover_s: float | None  # kill -> the standby's agent reports the router active
    traffic_back_s: float | None  # kill -> the first ping answered through the floating IP again
    pings_sent: int
    pings_lost: int
    ping_gap_s: float
    tcp_lines: int  # lines the session sent
    tcp_survived: bool  # every line echoed in order on the one connection, no error
    tcp_gap_s: float | None  # the longest time without an echo
    dead_unknown_s: float | None  # kill -> list-hosting shows the dead node `xxx`/`unknown`
    table_active_s: float | None  # kill -> list-hosting shows the new node alive and active
    dual_active_s: float  # longest time list-hosting showed two alive active nodes
    returned_standby: bool | None  # the node came back as a standby and no failback followed

    @property
    def came_back(self) -> bool:
        return self.takeover_s is not None and self.traffic_back_s is not None

    @property
    def ok(self) -> bool:
        return self.came_back and self.dual_active_s <= self.bound

    def dead_shown_in_time(self) -> bool:
        return self.dead_unknown_s is not None and self.dead_unknown_s <= self.advert + self.resolution

    def result_line(self) -> str:
        return (f"RESULT takeover_s={seconds(self.takeover_s)} traffic_back_s={seconds(self.traffic_back_s)} "
                f"bound_s={self.bound:.3f} pings_lost={self.pings_lost}/{self.pings_sent} "
                f"ping_gap_s={self.ping_gap_s:.2f} tcp_survived={'yes' if self.tcp_survived else 'no'} "
                f"tcp_gap_s={seconds(self.tcp_gap_s)} tcp_lines={self.tcp_lines} "
                f"dead_unknown_s={seconds(self.dead_unknown_s)} "
                f"dead_in_advert={'yes' if self.dead_shown_in_time() else 'no'} "
                f"table_active_s={seconds(self.table_active_s)} dual_active_s={self.dual_active_s:.2f} "
                f"returned_standby={'none' if self.returned_standby is None else self.returned_standby}")
