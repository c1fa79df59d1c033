"""The records of a recovery, as the store keeps them, and the engine's settings.

A recovery is one document, `instanceha/recovery/<node>/<failure>` (failure: the store revision
of the fence record that confirmed the host dead), rewritten with compare-and-set at every step,
so an engine that takes over reads exactly where its predecessor stopped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    FENCED = "fenced"  # the fence is confirmed; nova-compute not yet forced down
    FORCED_DOWN = "forced-down"  # Nova will accept evacuations; instances not yet listed
    EVACUATING = "evacuating"
    DONE = "done"  # every instance evacuated
    FAILED = "failed"  # something could not be done: `reason` and the instances say what


TERMINAL = (Phase.DONE, Phase.FAILED)


class InstanceState(StrEnum):
    PENDING = "pending"  # to evacuate (again, after a failed attempt, while attempts remain)
    CLAIMED = "claimed"  # an engine is calling Nova's evacuate for it right now
    ISSUED = "issued"  # Nova accepted the evacuation; waiting for it to be ACTIVE elsewhere
    EVACUATED = "evacuated"
    FAILED = "failed"  # attempts exhausted, or Nova refused for good: reported, never retried


@dataclass(frozen=True)
class InstanceRecord:
    id: str
    name: str
    ha: bool = False  # tagged, or its flavor marked: evacuated first
    state: InstanceState = InstanceState.PENDING
    attempts: int = 0
    accepted: int = 0  # evacuations Nova accepted, as far as the records know (Nova's count decides)
    claimed_by: str = ""  # the engine that claimed it (node:pid:start)
    claimed_at: float = 0.0
    issued_at: float = 0.0
    target: str = ""  # the host asked for (reserved hosts), or where it ended up
    reason: str = ""  # the last failure, in Nova's words


@dataclass(frozen=True)
class Recovery:
    node: str  # the hakeeper node that was lost
    host: str  # its nova-compute service's host name
    failure: int  # the fence record's revision: one failure of the host
    fenced_at: float
    phase: Phase = Phase.FENCED
    started_at: float = 0.0
    forced_down_at: float = 0.0
    service_seen: str = ""  # Nova's `updated_at` of the service when forced down (its return moves it)
    host_attempts: int = 0  # failed force-down / listing attempts
    reason: str = ""
    instances: tuple[InstanceRecord, ...] = ()
    finished_at: float = 0.0
    unforced: bool = False  # the host came back and its service was un-forced-down
    reserved_enabled: bool = False  # the reserved hosts' services were enabled for this recovery
    next_try: float = 0.0  # a failed host step (force down, listing) is tried again from then

    def instance(self, iid: str) -> InstanceRecord | None:
        return next((i for i in self.instances if i.id == iid), None)

    def with_instance(self, record: InstanceRecord) -> Recovery:
        return dataclasses.replace(
            self, instances=tuple(record if i.id == record.id else i for i in self.instances)
        )

    def count(self, state: InstanceState) -> int:
        return sum(1 for i in self.instances if i.state == state)

    def as_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["instances"] = [dataclasses.asdict(i) for i in self.instances]
        return doc

    def dumps(self) -> bytes:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, doc: Any) -> Recovery | None:
        """The record, or None for a document that is not one (never raises)."""
        if not isinstance(doc, dict):
            return None
        try:
            instances = tuple(
                InstanceRecord(**{**i, "state": InstanceState(i["state"])}) for i in doc.get("instances", [])
            )
            return cls(**{**doc, "phase": Phase(doc["phase"]), "instances": instances})
        except (TypeError, ValueError, KeyError):
            return None

    @classmethod
    def loads(cls, raw: bytes) -> Recovery | None:
        try:
            return cls.from_json(json.loads(raw))
        except ValueError:
            return None


@dataclass(frozen=True)
class Settings:
    """What the `instanceha:evacuator` primitive's params say (see docs/instance-ha.md)."""

    computes: frozenset[str] = frozenset()  # hakeeper nodes that are compute hosts
    host_map: Mapping[str, str] = field(default_factory=dict)  # node -> Nova host name, where they differ
    reserved: tuple[str, ...] = ()  # Nova hosts kept disabled for recoveries: the only targets if given
    only_ha: bool = False  # evacuate tagged / HA-flavored instances only (Masakari's ha_enabled)
    parallel: int = 4  # evacuate calls in flight at once
    # Evacuations Nova carries out at once per recovery (claimed or issued, not yet settled); 0: no
    # bound. A call returns once Nova accepted it, so `parallel` alone does not bound them: 110 at
    # once held the target compute's resource lock so long that the total took 270 s; 100 with 16
    # took 168 s, with 32 138 s (docs/instance-ha.md, single runs at load ~9).
    in_progress: int = 32
    retries: int = 3  # attempts per instance before it is reported failed
    host_retries: int = 5  # attempts at forcing down / listing before the recovery is reported failed
    claim_grace: float = 30.0  # s: a claim by another engine older than this has no call in flight
    evacuate_timeout: float = 300.0  # s an issued evacuation may take before it is reported failed

    def nova_host(self, node: str) -> str:
        return self.host_map.get(node, node)
