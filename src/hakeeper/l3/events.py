"""What happened to the routers, as events with their cause: each VRRP transition of a router on
this node, a node lost or back, two masters for one router past the VRRP bound (an alarm). Each
event is logged and, with `--events-file`, appended to that file as one JSON line, so an operator
(or a test) can tell why a router moved, not only that it did.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import IO, Literal

from hakeeper.vrrp.machine import State

log = logging.getLogger("hakeeper.l3")

# Why a router changed state: the agent started it (or adopted its master from the agent it
# replaced), no advert came for Master_Down_Interval, an advert won or lost the election, the
# master stepped down (priority 0), the router left this node, the agent stopped, its ha- port
# lost or regained carrier (keepalived's track_interface), its master's gateway stopped answering
# (Neutron's ha_vrrp_health_check_interval), or the hold after that ended.
Cause = Literal["started", "adopted", "master-down", "advert", "priority-0", "removed", "stopping", "timer",
                "link-down", "link-up", "gateway-lost", "gateway-retry"]
Kind = Literal["transition", "node-lost", "node-back", "dual-active", "dual-active-cleared"]


@dataclass(frozen=True)
class Change:
    """One router's transition on this node."""

    router: str
    old: State
    new: State
    cause: Cause
    detail: str = ""


@dataclass(frozen=True)
class L3Event:
    time: float
    node: str  # who reports it
    kind: Kind
    router: str = ""
    old: str = ""
    new: str = ""
    cause: str = ""
    detail: str = ""


class EventLog:
    def __init__(self, node: str, path: str | None = None) -> None:
        self.node = node
        self.fh: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 (kept open)

    def emit(self, kind: Kind, router: str = "", old: str = "", new: str = "", cause: str = "",
             detail: str = "") -> L3Event:
        ev = L3Event(time.time(), self.node, kind, router, old, new, cause, detail)
        level = logging.ERROR if kind == "dual-active" else logging.INFO
        if kind == "transition":
            log.log(level, "router %s: %s -> %s (%s%s)", router, old, new, cause, f": {detail}" if detail else "")
        else:
            log.log(level, "event %s%s%s", kind, f" router {router}" if router else "", f": {detail}" if detail else "")
        if self.fh is not None:
            self.fh.write(json.dumps(asdict(ev), sort_keys=True) + "\n")
        return ev

    def transition(self, c: Change) -> L3Event:
        return self.emit("transition", c.router, c.old.value, c.new.value, c.cause, c.detail)

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
