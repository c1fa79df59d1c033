"""What goes into the agent's pure core and what comes out of it.

The core is the agent's and the leader's decisions with no I/O and no clock inside, in the style
of `hakeeper.vrrp.machine` and etcd raft's Ready/Advance: the caller (the asyncio shell in
`agent/daemon.py` and `agent/leader.py`, or the cluster simulation in `tests/sim/`) owns the
store connection, the resource agents, the fence devices and the clock. It feeds the core
*inputs*, each with `now`, and carries out the *effects* the core returns, in order.

Driving it. The leader's core, `LeaderCore` in `core/leader.py`, is driven this way, by the
asyncio leader loop in `agent/leader.py` and by the simulation's agents (tests/sim/brain.py); it
takes a `LeaderView` (the store's values, the lease, whether the store answers, the suspects):

    core = LeaderCore(node="n1", cluster="c")
    while True:
        effects = core.handle(now, LeaderView(values, lease, healthy, suspects, changed))
        for effect in effects (in order):
            carry it out; an effect with a `token` is answered by an input with that token,
            and that answer's effects are carried out next: effects += core.handle(now, answer)
        wait for the first of: a watch update, a fence's answer, core.deadline()

Rules the caller keeps, which the core relies on:
  * One clock. Every `handle` gets `now` in seconds from the same clock, never decreasing. The
    daemon passes its wall clock (store stamps such as a fail count's `last` are compared by the
    leader against failure-timeout, so they must mean the same on every node); the simulation
    passes its simulated time. Durations (quorum margin, heartbeat silence, fence retry) are
    differences of `now`.
  * Watch updates arrive in revision order, as `hakeeper.coord.watch.follow` yields them (a
    `Snapshot` after a resynchronisation, else `Changes`). The core keeps its own mirror.
  * Every effect with a token gets exactly one answer (`TxnDone`, `OpDone`, `Decided`,
    `FenceDone`), unless the core cancelled it (`Cancel`) or the node crashed: then the whole
    core is thrown away and a new one is built, exactly as the agent process restarts. An
    answer to a token the core no longer waits for is ignored.
  * `Txn` runs as one store transaction (etcd's If/Then): compares, then operations, atomically.
    A transaction that could not be sent or answered comes back as `TxnDone(ok=False,
    error="...")`; the core treats that as "may or may not have happened", as the real store
    client must. `Campaign` is `hakeeper.coord.election.campaign`: put the key bound to the
    lease if it is absent; ok if the key then holds this node's name under this lease.
  * `deadline()` is the latest time the core must be called again (with `Tick`) if nothing else
    happens; None means only an input can change anything.

What is in this file is the stable interface the simulation builds on; new inputs or effects
may be added, none of these will change meaning. The node's own side is a set of pure decisions
(`core/node.py`: the claim, the report of a result, probes, failed monitors, what runs here, the
stop order without the leader) which the daemon's tasks and the simulation's node
(tests/sim/adapter.py, with the node inputs and effects here: `LeaseGranted`, `LeaseRefreshed`,
`LeaseLost`, `OpDone`, `MonitorFailed`; `RunOp`, `StartMonitor`, `StopMonitor`) both call; each
sequences them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hakeeper.agent.plan import Task
from hakeeper.coord.store import Compare, Delete, Put
from hakeeper.coord.watch import Changes, Snapshot
from hakeeper.placement import Plan
from hakeeper.resources.result import Result
from hakeeper.spec import ClusterSpec, ClusterState

Op = Put | Delete
# A resource operation: the plan's tasks, and monitor (probes and recurring monitors).
OpName = Task | Literal["monitor"]
Role = Literal["Started", "Promoted", "Unpromoted", "Stopped"]


# ----- inputs -----


@dataclass(frozen=True)
class Started:
    """The agent process started (or the simulated node booted): nothing is known yet."""


@dataclass(frozen=True)
class StoreUpdate:
    """A watch update under the cluster's prefix, in revision order."""

    update: Snapshot | Changes


@dataclass(frozen=True)
class LeaseGranted:
    """A new lease: a new incarnation of this node (register, then probe before acting)."""

    lease: int


@dataclass(frozen=True)
class LeaseRefreshed:
    """The lease keep-alive was answered: the store is reachable (the quorum rule counts from the
    last of these)."""

    lease: int


@dataclass(frozen=True)
class LeaseLost:
    """The lease expired or was revoked: its keys are gone."""


@dataclass(frozen=True)
class TxnDone:
    """The answer to a `Txn` effect: ok is the transaction's `succeeded` (its compares held);
    `error` says it failed to reach the store, when it may or may not have been applied."""

    token: int
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class OpDone:
    """The answer to a `RunOp` effect: what the resource agent returned."""

    token: int
    result: Result


@dataclass(frozen=True)
class MonitorFailed:
    """A recurring monitor (started by `StartMonitor`) found the resource not in its role."""

    rsc: str
    result: Result
    interval: float


@dataclass(frozen=True)
class Decided:
    """The answer to a `Decide` effect: the scheduler's plan, and how long it took."""

    token: int
    plan: Plan
    seconds: float


@dataclass(frozen=True)
class FenceDone:
    """The answer to a `Fence` effect: one device tried once on the victim."""

    token: int
    ok: bool
    output: str
    seconds: float


@dataclass(frozen=True)
class Tick:
    """Time passed (the caller's deadline came, or its periodic tick)."""


@dataclass(frozen=True)
class ShutdownRequested:
    """Leave cleanly: drain (the leader moves everything away), then stop what is left here."""

    stop_resources: bool = True
    drain_timeout: float = 120.0


Input = (
    Started
    | StoreUpdate
    | LeaseGranted
    | LeaseRefreshed
    | LeaseLost
    | TxnDone
    | OpDone
    | MonitorFailed
    | Decided
    | FenceDone
    | Tick
    | ShutdownRequested
)


# ----- effects -----


@dataclass(frozen=True)
class Txn:
    """Run one store transaction: if every compare holds, apply `ops`. Answered by TxnDone."""

    token: int
    compares: tuple[Compare, ...]
    ops: tuple[Op, ...]
    why: str = ""  # for logs and simulation traces: "claim", "publish", "fenced", ...


@dataclass(frozen=True)
class RunOp:
    """Run a resource operation here (a plan's task, or a probe's monitor). Answered by OpDone.
    `agent`/`params` name the resource agent; `meta` are the CRM_meta_* facts it gets."""

    token: int
    rsc: str
    op: OpName
    timeout: float
    agent: str
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StartMonitor:
    """Monitor `rsc` every `interval` seconds in `role`; report a failure with MonitorFailed.
    Replaces a monitor already running for it."""

    rsc: str
    interval: float
    timeout: float
    role: Role


@dataclass(frozen=True)
class StopMonitor:
    rsc: str


@dataclass(frozen=True)
class Decide:
    """Run the scheduler on (spec, state); it is pure but may be slow, so the shell runs it off the
    event loop. Answered by Decided."""

    token: int
    spec: ClusterSpec
    state: ClusterState


@dataclass(frozen=True)
class Fence:
    """Fence `victim` with one stonith device, after `delay` seconds plus a random share of up to
    `spread` seconds (pcmk_delay_base, pcmk_delay_max: the caller draws it, the core has no
    randomness). Answered by FenceDone."""

    token: int
    victim: str
    device: str  # the stonith primitive's id
    agent_type: str
    params: dict[str, str]
    delay: float = 0.0
    spread: float = 0.0


@dataclass(frozen=True)
class Emit:
    """Record an event (log line and events/ key); best effort, never answered."""

    kind: str
    message: str
    rsc: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Exit:
    """The agent is done (shutdown finished, or no-quorum-policy=suicide)."""

    reason: str


@dataclass(frozen=True)
class Campaign:
    """Become leader if nobody is: `hakeeper.coord.election.campaign` on the leader key with
    `lease`. Answered by TxnDone (ok: this node holds the key under this lease afterwards)."""

    token: int
    lease: int


@dataclass(frozen=True)
class Cancel:
    """The core no longer wants the answer to `token` (a fence in flight when leadership was
    lost): stop it if it still runs. Its answer, if one comes, is ignored."""

    token: int


Effect = Txn | Campaign | Cancel | RunOp | StartMonitor | StopMonitor | Decide | Fence | Emit | Exit
