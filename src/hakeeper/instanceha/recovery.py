"""The evacuation engine's decisions, pure: what the store and Nova show, and the time, in; typed
actions out. The engine (engine.py) carries them out and writes each resulting record with
compare-and-set; the simulation tests drive the same functions with a fake Nova.

The rules that keep a recovery safe:
- A recovery begins only from a fence record that says ok, for a configured compute node, and only
  while the node has not joined again since that fence (a member key created after the fence means
  the host is back: its instances are its own again).
- Nothing is evacuated before nova-compute is forced down, and an instance is evacuated only
  after a claim written with compare-and-set (so two engines never both call Nova for it); a claim
  whose engine died is resolved from Nova's own record of evacuations, never by calling again blind.
- A call Nova did not answer (a timeout: Nova goes on with a request its client gave up on) is no
  failed attempt: its claim stays, and Nova's record decides after `claim_grace`, as for a claim
  whose engine died. Counted as a refusal, it was called again while Nova still held the first.
- A failed attempt is retried up to `retries` times, then the instance is reported failed. A retry
  goes out only from a view of this round; a first attempt needs none (nothing was ever sent for
  it), so calls are issued whenever a slot is free, not once per listing.
- Without quorum the engine decides nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from hakeeper.instanceha.model import (
    TERMINAL,
    InstanceRecord,
    InstanceState,
    Phase,
    Recovery,
    Settings,
)

HOST_BACKOFF = 2.0  # s between attempts at a failed host step, times the attempt number
FAILED_MIGRATION = ("failed", "error")  # the statuses of an evacuation Nova gave up on

Key = tuple[str, int]  # (node, failure)


@dataclass(frozen=True)
class Fence:
    revision: int  # the store revision of the fence record: the failure's identity
    ok: bool
    at: float


@dataclass(frozen=True)
class NovaInstance:
    """What Nova says about one instance of a host being recovered."""

    id: str
    name: str
    host: str
    status: str  # ACTIVE, SHUTOFF, ERROR, REBUILD, ...
    task_state: str | None  # "rebuilding" from the moment Nova accepted an evacuation
    ha: bool = False
    evacuations: int | None = None  # evacuate actions since the failure; None: not asked
    # The status of Nova's migration record of its latest evacuation since the failure ("done",
    # "failed", "error", or one still under way); None: not asked.
    evacuation_status: str | None = None


@dataclass(frozen=True)
class World:
    me: str  # this engine: node:pid:start
    now: float  # wall clock (claims and fences are compared across nodes)
    quorum: bool  # the engine's node is a member of a store that answers
    settings: Settings
    fences: Mapping[str, Fence]  # node -> its last fence record
    incarnations: Mapping[str, int]  # node -> create revision of its member key, if a member
    recoveries: Mapping[Key, Recovery]
    nova_ok: bool = True  # Nova answered this round: the instance views below are complete
    instances: Mapping[str, NovaInstance] = dataclasses.field(default_factory=dict)
    # Wall time at which the views above were asked (inf: as of `now`). A view asked before an
    # evacuation was accepted still shows the instance idle on the dead host: it says nothing
    # about that evacuation, and read as Nova giving up it would waste an attempt.
    viewed_at: float = math.inf
    # No view this round only to spare Nova's API (the engine paces its listings), not because Nova
    # failed: first attempts, which need no view, still go out.
    view_paused: bool = False
    service_updated: Mapping[str, str] = dataclasses.field(default_factory=dict)  # host -> updated_at
    in_flight: frozenset[str] = frozenset()  # instances this engine is calling evacuate for
    busy: frozenset[Key] = frozenset()  # recoveries with a host step (force down, list) in flight


# ----- actions -----


@dataclass(frozen=True)
class Begin:
    recovery: Recovery  # written only if absent


@dataclass(frozen=True)
class ForceDown:
    key: Key
    host: str


@dataclass(frozen=True)
class ListInstances:
    key: Key
    host: str


@dataclass(frozen=True)
class EnableReserved:
    key: Key
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Evacuate:
    """Claim (compare-and-set), then call Nova's evacuate."""

    key: Key
    instance: str
    target: str  # "" lets Nova's scheduler choose


@dataclass(frozen=True)
class Update:
    """A record change that needs no call: an instance settled from Nova's view, a phase reached."""

    recovery: Recovery
    why: str


@dataclass(frozen=True)
class Unforce:
    key: Key
    host: str


Action = Begin | ForceDown | ListInstances | EnableReserved | Evacuate | Update | Unforce


def decide(world: World) -> list[Action]:
    if not world.quorum:
        return []  # a node cut off from the majority must not act on what it last saw
    actions: list[Action] = []
    actions += _begin(world)
    in_flight = len(world.in_flight)
    for key, rec in sorted(world.recoveries.items()):
        if rec.phase in TERMINAL:
            actions += [] if key in world.busy else _after(world, rec)
            continue
        if key in world.busy or world.now < rec.next_try:
            continue
        if rec.phase == Phase.FENCED:
            actions.append(ForceDown(key, rec.host))
        elif rec.phase == Phase.FORCED_DOWN:
            actions.append(ListInstances(key, rec.host))
        elif world.nova_ok or world.view_paused:
            more = _evacuating(world, rec, world.settings.parallel - in_flight)
            in_flight += sum(1 for a in more if isinstance(a, Evacuate))
            actions += more
    return actions


HostStep = ForceDown | ListInstances | EnableReserved | Unforce


def still_due(rec: Recovery, step: HostStep) -> bool:
    """Whether the record still needs this host step. A round decides from a snapshot, and a step
    of the round before may have landed meanwhile: applied again, a listing would reset
    instances already claimed or issued, a force-down would take the phase back."""
    if isinstance(step, ForceDown):
        return rec.phase == Phase.FENCED
    if isinstance(step, ListInstances):
        return rec.phase == Phase.FORCED_DOWN
    if isinstance(step, EnableReserved):
        return rec.phase == Phase.EVACUATING and not rec.reserved_enabled
    return rec.phase in TERMINAL and not rec.unforced


def fence_confirms(fence: Fence | None, incarnation: int) -> bool:
    """The host is confirmed dead: fenced, and not a member again since."""
    return fence is not None and fence.ok and incarnation < fence.revision


def _begin(world: World) -> list[Action]:
    out: list[Action] = []
    known = {failure for (_, failure) in world.recoveries}
    for node, fence in sorted(world.fences.items()):
        if node not in world.settings.computes or fence.revision in known:
            continue
        if not fence_confirms(fence, world.incarnations.get(node, 0)):
            continue
        rec = Recovery(
            node=node,
            host=world.settings.nova_host(node),
            failure=fence.revision,
            fenced_at=fence.at,
            started_at=world.now,
        )
        out.append(Begin(rec))
    return out


def _after(world: World, rec: Recovery) -> list[Action]:
    """A finished recovery: once the host is back (a new member, and its nova-compute reporting
    again), its service is un-forced-down. Nova frees the placement usage of the evacuated
    instances when that compute starts (it deletes their leftovers), which is why it comes first."""
    if rec.unforced or not rec.forced_down_at or world.now < rec.next_try:
        return []
    back = world.incarnations.get(rec.node, 0) > rec.failure
    updated = world.service_updated.get(rec.host, "")
    if back and updated and updated != rec.service_seen:
        return [Unforce((rec.node, rec.failure), rec.host)]
    return []


def _evacuating(world: World, rec: Recovery, room: int) -> list[Action]:
    """Settle instances from Nova's view (when there is one this round) and, in the same round,
    claim and evacuate pending ones up to `room`: issuing is not bound to the listing cycle."""
    s = world.settings
    key = (rec.node, rec.failure)
    if s.reserved and not rec.reserved_enabled:
        return [EnableReserved(key, s.reserved)]
    settled = rec
    if world.nova_ok:
        for inst in rec.instances:
            new = _settle(world, rec, inst)
            if new is not None and new != inst:
                settled = settled.with_instance(new)
    pending = [i for i in settled.instances if _may_call(world, i)]
    if s.in_progress:
        in_nova = settled.count(InstanceState.CLAIMED) + settled.count(InstanceState.ISSUED)
        room = min(room, s.in_progress - in_nova)
    calls: list[Action] = []
    for inst in sorted(pending, key=lambda i: (not i.ha, i.name, i.id))[: max(0, room)]:
        target = s.reserved[inst.attempts % len(s.reserved)] if s.reserved else ""
        calls.append(Evacuate(key, inst.id, target))
    if not calls and all(i.state in (InstanceState.EVACUATED, InstanceState.FAILED) for i in settled.instances):
        failed = settled.count(InstanceState.FAILED)
        done = dataclasses.replace(
            settled,
            phase=Phase.FAILED if failed else Phase.DONE,
            finished_at=world.now,
            reason=f"{failed} of {len(settled.instances)} instances could not be evacuated" if failed else "",
        )
        return [Update(done, "every instance settled")]
    # The settled record is written first; each claim then reads the record as it is by then.
    update: list[Action] = [Update(settled, "instances settled from Nova's view")] if settled != rec else []
    return update + calls


def _may_call(world: World, inst: InstanceRecord) -> bool:
    """A pending instance that may be evacuated now. A first attempt may go out without a view:
    every call is claimed first, so none was ever sent for it. A retry only from this round's
    view, in which _settle found Nova idle on the dead host with no evacuation we do not know of."""
    if inst.state != InstanceState.PENDING or inst.id in world.in_flight:
        return False
    if inst.attempts == 0:
        return True
    nova = world.instances.get(inst.id)
    return world.nova_ok and nova is not None and nova.evacuations is not None


def rebase(new: Recovery, base: Recovery | None, current: Recovery) -> Recovery | None:
    """An Update decided from `base`, applied to the record as it is now: instance by instance where
    the instance is still as it was decided from (a call's result written meanwhile wins), the whole
    record only when nothing else changed. None when nothing of it applies any more."""
    if base is None:
        return None
    if current == base:
        return new
    if dataclasses.replace(new, instances=base.instances) != base:
        return None  # a phase change decided from a record that has moved on: decided again next round
    was = {i.id: i for i in base.instances}
    changed = {i.id: i for i in new.instances if was.get(i.id) != i}
    merged = tuple(changed[i.id] if i.id in changed and was.get(i.id) == i else i for i in current.instances)
    out = dataclasses.replace(current, instances=merged)
    return out if out != current else None


def _settle(world: World, rec: Recovery, inst: InstanceRecord) -> InstanceRecord | None:
    """The instance's record as Nova's view makes it, or None to leave it."""
    s = world.settings
    nova = world.instances.get(inst.id)
    if inst.state in (InstanceState.EVACUATED, InstanceState.FAILED):
        return None
    if inst.state == InstanceState.CLAIMED:
        if inst.id in world.in_flight:
            return None
        if min(world.now, world.viewed_at) - inst.claimed_at < s.claim_grace:
            # Its engine may still be calling Nova, or Nova may not have got to the request yet; and
            # a view asked before then cannot say whether Nova took it.
            return None
        if nova is None:
            return _missing(inst)
        if nova.evacuations is None:
            return None  # the engine asks Nova for the instance's actions next round
        if nova.evacuations > inst.accepted or _rebuilding(nova):
            return _issued(inst, nova, world.now)
        return _attempt_failed(inst, inst.reason or "its engine stopped before Nova accepted the evacuation", s)
    if nova is None:
        return _missing(inst)
    if nova.host != rec.host and nova.task_state is None and nova.status == "ACTIVE":
        return dataclasses.replace(inst, state=InstanceState.EVACUATED, target=nova.host, reason="")
    if inst.state == InstanceState.PENDING:
        # Evacuated by someone, or accepted by Nova for a claim we lost track of: never again.
        if _rebuilding(nova) or (nova.evacuations or 0) > inst.accepted:
            return _issued(inst, nova, world.now)
        return None
    # ISSUED: a view asked before the evacuation was accepted cannot tell anything.
    if world.viewed_at <= inst.issued_at:
        return None
    if nova.status == "ERROR":
        return _attempt_failed(inst, f"Nova left it ERROR on {nova.host}", s)
    if nova.task_state is None and nova.host == rec.host:
        # No task on the dead host is Nova giving up, or the rebuild just finished: the target
        # compute clears the task and then, under its resource lock (seconds when it rebuilds many
        # at once), moves the host. Taken for a failure, the instance was called again (Nova:
        # "Compute service of compute-1 is still in use", or in that window a second evacuation).
        # Nova's migration record tells them apart.
        if nova.evacuation_status in FAILED_MIGRATION:
            return _attempt_failed(inst, f"Nova's evacuation {nova.evacuation_status} (left on {nova.host})", s)
        return None
    if world.now - inst.issued_at > s.evacuate_timeout:
        return dataclasses.replace(
            inst, state=InstanceState.FAILED, reason=f"not ACTIVE elsewhere {s.evacuate_timeout:g}s after evacuate"
        )
    return None


def needs_migration_status(rec: Recovery, inst: InstanceRecord, nova: NovaInstance, viewed_at: float) -> bool:
    """An issued instance idle on the dead host: only Nova's migration record says whether Nova
    gave up or is moving the host (one call for such an instance and round)."""
    idle_on_dead_host = nova.task_state is None and nova.host == rec.host and nova.status != "ERROR"
    return inst.state == InstanceState.ISSUED and viewed_at > inst.issued_at and idle_on_dead_host


def _rebuilding(nova: NovaInstance) -> bool:
    """Nova is carrying out an evacuation: "rebuilding" from the moment it accepted the call, then
    "rebuild_block_device_mapping" and "rebuild_spawning" on the target."""
    return (nova.task_state or "").startswith("rebuild")


def _issued(inst: InstanceRecord, nova: NovaInstance, now: float) -> InstanceRecord:
    accepted = max(inst.accepted, nova.evacuations or 0)
    return dataclasses.replace(inst, state=InstanceState.ISSUED, issued_at=now, accepted=accepted)


def _missing(inst: InstanceRecord) -> InstanceRecord:
    """Nova answered and does not list it: deleted by its owner meanwhile."""
    return dataclasses.replace(inst, state=InstanceState.FAILED, reason="Nova no longer knows this instance")


def _attempt_failed(inst: InstanceRecord, reason: str, s: Settings) -> InstanceRecord:
    state = InstanceState.PENDING if inst.attempts < s.retries else InstanceState.FAILED
    return dataclasses.replace(inst, state=state, reason=reason)


# ----- the records that results of calls make -----


def forced_down(rec: Recovery, service_updated: str, now: float) -> Recovery:
    return dataclasses.replace(
        rec, phase=Phase.FORCED_DOWN, forced_down_at=now, service_seen=service_updated, host_attempts=0, reason=""
    )


def listed(rec: Recovery, instances: list[NovaInstance], settings: Settings) -> Recovery:
    chosen = [i for i in instances if i.ha or not settings.only_ha]
    records = tuple(InstanceRecord(id=i.id, name=i.name, ha=i.ha) for i in chosen)
    return dataclasses.replace(rec, phase=Phase.EVACUATING, instances=records, host_attempts=0, reason="")


def host_step_failed(rec: Recovery, reason: str, permanent: bool, settings: Settings, now: float) -> Recovery:
    """A force-down or listing that failed: tried again after a backoff, reported failed after
    `host_retries` attempts, at once if Nova's answer cannot change (an unknown host)."""
    attempts = rec.host_attempts + 1
    if permanent or attempts >= settings.host_retries:
        return dataclasses.replace(rec, phase=Phase.FAILED, host_attempts=attempts, reason=reason, finished_at=now)
    return dataclasses.replace(rec, host_attempts=attempts, reason=reason, next_try=now + HOST_BACKOFF * attempts)


def claim(rec: Recovery, iid: str, engine: str, target: str, now: float) -> Recovery:
    inst = rec.instance(iid)
    assert inst is not None and inst.state == InstanceState.PENDING
    return rec.with_instance(
        dataclasses.replace(
            inst,
            state=InstanceState.CLAIMED,
            attempts=inst.attempts + 1,
            claimed_by=engine,
            claimed_at=now,
            target=target,
        )
    )


def evacuate_result(
    rec: Recovery,
    iid: str,
    ok: bool,
    reason: str,
    permanent: bool,
    settings: Settings,
    now: float,
    unsure: bool = False,
) -> Recovery:
    """The record after an evacuate call. `unsure`: no answer came (Nova may still accept the
    request): the claim stays, renewed from now, and Nova's record of evacuations decides once it is
    `claim_grace` old, exactly as for a claim whose engine died."""
    inst = rec.instance(iid)
    assert inst is not None
    if unsure and not ok:
        waiting = f"no answer from Nova ({reason}); Nova's own record decides"
        return rec.with_instance(dataclasses.replace(inst, claimed_at=now, reason=waiting))
    if ok:
        accepted = inst.accepted + 1
        issued = dataclasses.replace(inst, state=InstanceState.ISSUED, issued_at=now, reason="", accepted=accepted)
        return rec.with_instance(issued)
    if permanent:
        return rec.with_instance(dataclasses.replace(inst, state=InstanceState.FAILED, reason=reason))
    return rec.with_instance(_attempt_failed(inst, reason, settings))


def unforced(rec: Recovery) -> Recovery:
    return dataclasses.replace(rec, unforced=True, reason="")


def unforce_refused(rec: Recovery, reason: str, now: float) -> Recovery:
    """Nova refuses while the returning compute still cleans up its evacuated instances (their
    migration records stay `done` until it has): asked again after a pause."""
    return dataclasses.replace(
        rec,
        reason=f"un-force-down waits: {reason}",
        next_try=now + 2 * HOST_BACKOFF,
        host_attempts=rec.host_attempts + 1,
    )


def reserved_enabled(rec: Recovery) -> Recovery:
    return dataclasses.replace(rec, reserved_enabled=True)


def retried(rec: Recovery, now: float) -> Recovery:
    """`hakeeper recovery retry`: the failed instances get a fresh round of attempts, and a failed
    host step starts over. Instances evacuated or in Nova's hands are left as they are."""
    instances = tuple(
        dataclasses.replace(i, state=InstanceState.PENDING, attempts=0) if i.state == InstanceState.FAILED else i
        for i in rec.instances
    )
    phase = _restart(rec) if rec.phase == Phase.FAILED else rec.phase
    return dataclasses.replace(
        rec, phase=phase, instances=instances, host_attempts=0, next_try=now, finished_at=0.0, reason=""
    )


def _restart(rec: Recovery) -> Phase:
    if not rec.forced_down_at:
        return Phase.FENCED
    return Phase.EVACUATING if rec.instances else Phase.FORCED_DOWN
