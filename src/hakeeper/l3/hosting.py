"""What the l3-agents report, and Neutron's `l3-agent-list-hosting-router` table made from it (pure).

Each agent puts one report under `/<cluster>/l3/agents/<node>`: its routers' states and the time
it wrote it. It rewrites it at every state change (within 50 ms) and at least every half advert
interval, so a report older than one advert interval means the agent is gone: its rows say `xxx`
and `unknown`, never `active` (Neutron kept showing a dead agent's last `active`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

HaState = Literal["active", "standby", "fault", "unknown"]


def report_key(cluster: str, node: str = "") -> str:
    return f"/{cluster}/l3/agents/{node}"


@dataclass(frozen=True)
class Report:
    node: str
    time: float  # wall clock of the agent when written
    interval: float  # the advert interval: the report is stale after it
    routers: Mapping[str, tuple[str, HaState]]  # id -> (name, state)

    def encode(self) -> bytes:
        return json.dumps({"node": self.node, "time": self.time, "interval": self.interval,
                           "routers": {k: list(v) for k, v in sorted(self.routers.items())}}).encode()

    @staticmethod
    def decode(raw: bytes) -> Report:
        d = json.loads(raw)
        return Report(str(d["node"]), float(d["time"]), float(d["interval"]),
                      {k: (str(v[0]), v[1]) for k, v in d["routers"].items()})


@dataclass(frozen=True)
class Row:
    id: str  # the router's id (Neutron's first column is the agent id; here the node is the agent)
    host: str
    admin_state_up: bool
    alive: bool
    ha_state: HaState

    def as_json(self) -> dict[str, object]:
        return {"host": self.host, "admin_state_up": self.admin_state_up,
                "alive": ":-)" if self.alive else "xxx", "ha_state": self.ha_state}


def alive(report: Report, now: float) -> bool:
    return now - report.time <= report.interval


def hosting(reports: list[Report], router: str, now: float) -> list[Row]:
    """Rows for `router` (id or name): one per node whose agent reports it."""
    rows = []
    for rep in sorted(reports, key=lambda r: r.node):
        for rid, (name, state) in rep.routers.items():
            if router not in (rid, name):
                continue
            ok = alive(rep, now)
            rows.append(Row(rid, rep.node, True, ok, state if ok else "unknown"))
    return rows


@dataclass(frozen=True)
class RouterSummary:
    id: str
    name: str
    active: tuple[str, ...]
    replicas: int  # alive replicas


def summary(reports: list[Report], now: float) -> list[RouterSummary]:
    names: dict[str, str] = {}
    active: dict[str, list[str]] = {}
    replicas: dict[str, int] = {}
    for rep in sorted(reports, key=lambda r: r.node):
        ok = alive(rep, now)
        for rid, (name, state) in rep.routers.items():
            names[rid] = name
            active.setdefault(rid, [])
            replicas[rid] = replicas.get(rid, 0) + ok
            if ok and state == "active":
                active[rid].append(rep.node)
    return [RouterSummary(rid, names[rid], tuple(active[rid]), replicas[rid]) for rid in sorted(names)]


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Neutron's client table: +---+ borders, left-aligned cells."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([rule, line(headers), rule, *(line(r) for r in rows), rule]) + "\n"


def hosting_table(rows: list[Row]) -> str:
    return table(["id", "host", "admin_state_up", "alive", "ha_state"],
                 [[r.id, r.host, str(r.admin_state_up), ":-)" if r.alive else "xxx", r.ha_state] for r in rows])
