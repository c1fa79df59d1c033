"""The pure Galera bootstrap decision: which node may start a new primary component after a full
outage, and what a forced choice would lose.

Inputs are each node's position (grastate.dat, or `--wsrep-recover` when it says seqno -1); the
output is a decision, never an action. Rules, stricter than the galera agent's:
  * a node with no history (no or the zero UUID) never bootstraps;
  * positions of different histories (UUIDs) are never compared: that is two clusters;
  * while a node has not reported, nobody bootstraps (a more advanced node may be missing), unless
    the operator forces one and is told the seqnos it may lose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from hakeeper.errors import InputError

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Position:
    uuid: str
    seqno: int  # -1: unknown (not shut down cleanly; --wsrep-recover tells)
    safe_to_bootstrap: bool = False

    @property
    def has_history(self) -> bool:
        return self.uuid != ZERO_UUID


def parse_grastate(text: str, path: str = "grastate.dat") -> Position:
    """grastate.dat's uuid, seqno and safe_to_bootstrap; a corrupt file is an InputError naming
    the file, line and field (never a guess: a wrong seqno picks the wrong node)."""
    fields: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            problem = f"expected 'field: value', found {line.strip()[:40]!r}"
            raise InputError.at(problem, file=path, line=number, field="grastate")
        fields[key.strip()] = (number, value.strip())
    for required in ("uuid", "seqno"):
        if required not in fields:
            raise InputError.at("missing: this is not a Galera state file", file=path, field=required)
    at, uuid = fields["uuid"]
    if not _UUID.match(uuid):
        raise InputError.at(f"not a UUID: {uuid[:40]!r}", file=path, line=at, field="uuid")
    at, raw = fields["seqno"]
    if not re.fullmatch(r"-?\d+", raw) or int(raw) < -1:
        raise InputError.at(f"not a sequence number: {raw[:40]!r}", file=path, line=at, field="seqno")
    safe = fields.get("safe_to_bootstrap", (0, "0"))
    if safe[1] not in ("0", "1"):
        problem = f"must be 0 or 1, not {safe[1][:10]!r}"
        raise InputError.at(problem, file=path, line=safe[0], field="safe_to_bootstrap")
    return Position(uuid, int(raw), safe[1] == "1")


def parse_recovered(log: str) -> Position | None:
    """The position `mariadbd --wsrep-recover` logs ("WSREP: Recovered position: uuid:seqno")."""
    found = re.findall(r"WSREP: Recovered position: ([0-9a-f-]{36}):(-?\d+)", log)
    if not found:
        return None
    uuid, seqno = found[-1]
    return Position(uuid, int(seqno))


@dataclass(frozen=True)
class Decision:
    node: str | None  # who bootstraps; None: wait (or refuse)
    reason: str
    waiting_for: tuple[str, ...] = ()
    may_lose: tuple[str, ...] = ()  # forced: nodes whose transactions beyond the choice are lost


def decide(positions: Mapping[str, Position | None], nodes: list[str], force: str | None = None) -> Decision:
    """Who bootstraps, given each configured node's position (None: not reported)."""
    missing = tuple(n for n in nodes if positions.get(n) is None)
    known = {n: p for n, p in positions.items() if p is not None and n in nodes}
    histories = {p.uuid for p in known.values() if p.has_history}
    if len(histories) > 1:
        return Decision(None, f"nodes belong to different cluster histories: {sorted(histories)}", missing)
    candidates = {n: p for n, p in known.items() if p.has_history}
    if force is not None:
        chosen = known.get(force)
        if chosen is None or not chosen.has_history:
            return Decision(None, f"{force} has no Galera history to bootstrap from", missing)
        ahead = tuple(sorted(n for n, p in candidates.items() if p.seqno > chosen.seqno))
        return Decision(force, f"forced by the operator at seqno {chosen.seqno}", missing, ahead + missing)
    if missing:
        return Decision(None, "a node has not reported its position; it may be the most advanced", missing)
    if not candidates:
        return Decision(None, "no node has a Galera history (a new cluster is bootstrapped by its first start)")
    safe = sorted(n for n, p in candidates.items() if p.safe_to_bootstrap and p.seqno >= 0)
    if safe:
        return Decision(safe[0], "marked safe_to_bootstrap (it shut down last, cleanly)")
    best = max(sorted(candidates), key=lambda n: candidates[n].seqno)
    return Decision(best, f"highest seqno {candidates[best].seqno}")
