"""Two masters for one router longer than the VRRP bound: an alarm (pure, time passed in).

For a moment two masters are normal: a returning node's first adverts, a partition healing. VRRP
settles it within one advert interval once both hear each other; a pair of masters that lasts
past the bound (3 x advert_int + skew) means the two cannot hear each other (a broken HA network,
a filter, a VRID clash) while both forward traffic. The controller agent watches every agent's
report and raises the alarm once per episode, and clears it when the router has one master again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Alarm:
    kind: Literal["dual-active", "dual-active-cleared"]
    router: str
    nodes: tuple[str, ...]
    lasted: float  # seconds with two masters when raised (0 when cleared)


@dataclass
class DualActiveWatch:
    bound: float
    since: dict[str, float] = field(default_factory=dict)  # router -> first seen with 2+ masters
    raised: set[str] = field(default_factory=set)

    def observe(self, active: Mapping[str, tuple[str, ...]], now: float) -> list[Alarm]:
        """`active`: each router's nodes reporting it active (alive reports only)."""
        out = []
        for rid in sorted(active):
            nodes = active[rid]
            if len(nodes) >= 2:
                start = self.since.setdefault(rid, now)
                if now - start > self.bound and rid not in self.raised:
                    self.raised.add(rid)
                    out.append(Alarm("dual-active", rid, tuple(sorted(nodes)), now - start))
            else:
                self.since.pop(rid, None)
                if rid in self.raised:
                    self.raised.discard(rid)
                    out.append(Alarm("dual-active-cleared", rid, tuple(nodes), 0.0))
        for rid in sorted(set(self.since) - set(active)):  # the router is gone
            self.since.pop(rid)
            if rid in self.raised:
                self.raised.discard(rid)
                out.append(Alarm("dual-active-cleared", rid, (), 0.0))
        return out

    def count(self) -> int:
        return len(self.raised)
