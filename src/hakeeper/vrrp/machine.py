"""The VRRP state machine of one virtual router (RFC 3768 6.4, RFC 5798 6.4), pure.

Time comes in as an argument (seconds, float); events come in as method calls; decisions go out as
a list of actions: `Send(priority)` (send one advertisement now) and `Transition(old, new)` (the
speaker adds or removes addresses, sends gratuitous ARPs, runs notify scripts). `deadline()` says
when `tick` must be called next. No clocks, sockets or processes here.

Deviation from the RFCs, on purpose: a preempting Backup that hears an equal-priority Master with a
lower primary address does not accept it, so whichever node starts first, equal priorities always
end with the highest primary address as Master (the RFC's tie-break, applied in both states).
keepalived only breaks ties in Master state; a mixed cluster still converges, since its Master then
yields to our higher address.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PRIO_STOP = 0
PRIO_OWNER = 255


class State(enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


@dataclass(frozen=True)
class Send:
    priority: int


@dataclass(frozen=True)
class Transition:
    old: State
    new: State


Action = Send | Transition


@dataclass(frozen=True)
class Params:
    """The configured behaviour of one instance. Intervals in centiseconds (v2: whole seconds)."""

    version: int
    priority: int
    interval_cs: int
    primary: int  # our primary address as an integer, for the tie-break
    preempt: bool = True
    preempt_delay: float = 0.0
    start_master: bool = False


def skew_time(version: int, priority: int, master_interval_cs: int) -> float:
    """Skew_Time in seconds: v2 (256 - Priority) / 256 s; v3 ((256 - Priority) * MAI / 256) cs."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * master_interval_cs / 256 / 100


def master_down_interval(version: int, priority: int, master_interval_cs: int) -> float:
    """Master_Down_Interval in seconds: 3 x the (master's) advertisement interval + Skew_Time."""
    return 3 * master_interval_cs / 100 + skew_time(version, priority, master_interval_cs)


def effective_priority(base: int, scripts: list[tuple[int, bool]], faults: int = 0) -> tuple[int, bool]:
    """keepalived's rule: (weight, ok) per tracked script; weight > 0 adds when the script succeeds,
    weight < 0 adds when it fails, weight 0 puts the instance in FAULT when it fails. A tracked
    interface that is down (`faults`) also means FAULT. The address owner keeps 255."""
    fault = faults > 0
    prio = base
    for weight, ok in scripts:
        if weight == 0:
            fault = fault or not ok
        elif (weight > 0) == ok:
            prio += weight
    if base == PRIO_OWNER:
        return PRIO_OWNER, fault
    return max(1, min(254, prio)), fault


@dataclass
class Machine:
    params: Params
    state: State = State.INIT
    priority: int = 0
    fault: bool = False
    master_interval_cs: int = 0
    adver_at: float | None = None
    down_at: float | None = None
    lower_seen_at: float | None = None
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.priority = self.priority or self.params.priority
        self.master_interval_cs = self.params.interval_cs

    # -- derived timers ------------------------------------------------------------------------
    def skew(self) -> float:
        return skew_time(self.params.version, self.priority, self.master_interval_cs)

    def down_interval(self) -> float:
        return master_down_interval(self.params.version, self.priority, self.master_interval_cs)

    def deadline(self) -> float | None:
        if self.state == State.MASTER:
            return self.adver_at
        if self.state == State.BACKUP:
            return self.down_at
        return None

    # -- events --------------------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        self.started_at = now
        if self.fault:
            return self._go(State.FAULT)
        if self.priority == PRIO_OWNER:
            return self._become_master(now)
        out = self._go(State.BACKUP)
        # A configured MASTER listens one interval for a current master, not three.
        wait = self.down_interval()
        if self.params.start_master:
            wait = self.master_interval_cs / 100 + self.skew()
        self.down_at = now + wait
        return out

    def tick(self, now: float) -> list[Action]:
        if self.state == State.MASTER and self.adver_at is not None and now >= self.adver_at:
            self.adver_at = now + self.params.interval_cs / 100
            return [Send(self.priority)]
        if self.state == State.BACKUP and self.down_at is not None and now >= self.down_at:
            return self._become_master(now)
        return []

    def on_advert(self, now: float, priority: int, interval_cs: int, src: int) -> list[Action]:
        """An advert that passed every packet check (version, VRID, auth, TTL)."""
        if self.state == State.MASTER:
            if priority == PRIO_STOP:
                self.adver_at = now + self.params.interval_cs / 100
                return [Send(self.priority)]
            if priority > self.priority or (priority == self.priority and src > self.params.primary):
                self._learn(interval_cs)
                out = self._go(State.BACKUP)
                self.down_at = now + self.down_interval()
                return out
            # Another master below us: answer at once so it steps down without waiting.
            self.adver_at = now + self.params.interval_cs / 100
            return [Send(self.priority)]
        if self.state == State.BACKUP:
            if priority == PRIO_STOP:
                self.down_at = now + self.skew()
                return []
            if self._accepts(now, priority, src):
                self._learn(interval_cs)
                self.down_at = now + self.down_interval()
            return []
        return []

    def _accepts(self, now: float, priority: int, src: int) -> bool:
        if not self.params.preempt:
            return True
        if priority > self.priority or (priority == self.priority and src > self.params.primary):
            self.lower_seen_at = None
            return True
        if self.params.preempt_delay > 0:
            # preempt_delay: put up with a lower master this long after startup or first sight.
            if self.lower_seen_at is None:
                self.lower_seen_at = now
            since = max(self.started_at, self.lower_seen_at)
            return now - since < self.params.preempt_delay
        return False

    def shutdown(self, now: float) -> list[Action]:
        """Stop: a Master sends priority 0 so a Backup takes over after Skew_Time."""
        out: list[Action] = [Send(PRIO_STOP)] if self.state == State.MASTER else []
        return out + self._go(State.STOP)

    def set_priority(self, now: float, priority: int) -> list[Action]:
        self.priority = priority
        if self.state == State.MASTER:
            # Tell the backups now, so a preempting one takes over without waiting an interval.
            self.adver_at = now + self.params.interval_cs / 100
            return [Send(priority)]
        return []

    def set_fault(self, now: float, fault: bool) -> list[Action]:
        if fault == self.fault:
            return []
        self.fault = fault
        if fault:
            out: list[Action] = [Send(PRIO_STOP)] if self.state == State.MASTER else []
            if self.state == State.STOP:
                return out
            return out + self._go(State.FAULT)
        if self.state == State.FAULT:
            out = self._go(State.BACKUP)
            self.down_at = now + self.down_interval()
            return out
        return []

    def force(self, now: float, state: State) -> list[Action]:
        """A sync group moves this member along with another one."""
        if state == self.state or self.state in (State.STOP, State.INIT):
            return []
        if state == State.MASTER and self.state == State.BACKUP:
            return self._become_master(now)
        if state == State.BACKUP and self.state == State.MASTER:
            out = self._go(State.BACKUP)
            self.down_at = now + self.down_interval()
            return out
        if state == State.FAULT:
            out = [Send(PRIO_STOP)] if self.state == State.MASTER else []
            return out + self._go(State.FAULT)
        if state == State.BACKUP and self.state == State.FAULT and not self.fault:
            out = self._go(State.BACKUP)
            self.down_at = now + self.down_interval()
            return out
        return []

    # -- helpers -------------------------------------------------------------------------------
    def _learn(self, interval_cs: int) -> None:
        # v3 learns the master's interval; v2 intervals must match (checked on receipt).
        if self.params.version == 3:
            self.master_interval_cs = interval_cs

    def _become_master(self, now: float) -> list[Action]:
        out = self._go(State.MASTER)
        self.adver_at = now + self.params.interval_cs / 100
        self.master_interval_cs = self.params.interval_cs
        return [Send(self.priority), *out]

    def _go(self, new: State) -> list[Action]:
        old, self.state = self.state, new
        self.down_at = None
        if new != State.MASTER:
            self.adver_at = None
        return [Transition(old, new)] if old != new else []


@dataclass
class SyncGroup:
    """Members change state together: one goes MASTER, BACKUP or FAULT, the others follow."""

    members: list[Machine]

    def follow(self, now: float, leader: Machine, actions: list[Action]) -> dict[int, list[Action]]:
        """Given `leader`'s actions, the actions of the other members (by index)."""
        out: dict[int, list[Action]] = {}
        for act in actions:
            if not isinstance(act, Transition):
                continue
            for i, m in enumerate(self.members):
                if m is leader:
                    continue
                if act.new == State.BACKUP and act.old == State.FAULT:
                    if any(o.fault for o in self.members):
                        continue
                    got = m.force(now, State.BACKUP)
                elif act.new in (State.MASTER, State.BACKUP, State.FAULT):
                    if act.new != State.FAULT and any(o.fault for o in self.members):
                        continue
                    got = m.force(now, act.new)
                else:
                    continue
                if got:
                    out.setdefault(i, []).extend(got)
        return out
