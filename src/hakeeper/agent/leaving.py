"""How a node's agent stops what runs on it without the leader: when it loses the store (the
no-quorum stop) and when it shuts down (first asking the leader to move everything away, as
Pacemaker does for a node leaving, then stopping what is left itself). Split from daemon.py, whose
`Agent` calls these with itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from hakeeper.agent import state as st
from hakeeper.agent.core import node as node_core
from hakeeper.coord.store import Delete, Put, StoreError, bounded, unchanged_since
from hakeeper.resources.result import Result, Status
from hakeeper.spec import ClusterSpec

if TYPE_CHECKING:
    from hakeeper.agent.daemon import Agent

log = logging.getLogger("hakeeper.agent")
# Shutdown: beyond the stop (and demote) timeouts of what runs here, this long for the leader to
# plan the moves and for the store writes at the end. The agent exits within the sum.
SHUTDOWN_MARGIN = 10.0
STORE_RESERVE = 5.0  # of the margin, kept for the final store writes


async def stop_locally(agent: Agent, spec: ClusterSpec, why: str) -> list[str]:
    """Stop everything running here without the leader: promoted instances are demoted first
    (agents such as Stateful or galera refuse to stop a promoted instance), orphans first (with
    their last known definitions), then the rest in reverse definition order, which for a
    group is its stop order. Returns what could not be stopped (still running here), after
    logging and reporting it: an agent never leaves processes behind without saying so."""
    for rsc in list(agent.monitors):
        agent.stop_monitor(rsc)
    if not agent.op_settled.is_set():
        # A plan action's operation is running (a start the node claimed just before it was cut
        # off): what it starts must be stopped too, so wait for its result, within its timeout.
        # Stopping what runs without it left a VIP running beside the one the leader started
        # elsewhere once the lease expired (the simulation, seed 80619, without stonith).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent.op_settled.wait(), agent.in_flight_timeout + 1.0)
    left: dict[str, str] = {}
    for rsc in node_core.stop_order(spec, agent.local_running):
        ra = agent.agent_for(spec, rsc)
        if ra is None:
            left[rsc] = "no definition known to stop it with"
            continue
        if rsc in agent.local_promoted:
            res = await ra.action("demote", agent.timeout_for(spec, rsc, "demote"))
            log.warning("%s: demoted %s: %s", why, rsc, res.describe())
        res = await ra.action("stop", agent.timeout_for(spec, rsc, "stop"))
        log.warning("%s: stopped %s: %s", why, rsc, res.describe())
        if res.status in (Status.PROMOTED, Status.FAILED_PROMOTED) and rsc not in agent.local_promoted:
            # Promoted without this agent knowing (the store went away while a promote was in
            # flight): the agent refused to stop it, so demote, then stop again.
            demoted = await ra.action("demote", agent.timeout_for(spec, rsc, "demote"))
            res = await ra.action("stop", agent.timeout_for(spec, rsc, "stop"))
            log.warning("%s: found %s promoted: demoted: %s; stopped: %s", why, rsc, demoted.describe(), res.describe())
        if not res.ok_for("stop"):
            left[rsc] = f"stop failed: {res.describe()}"
    agent.local_running = set(left)
    agent.local_promoted &= agent.local_running
    if left:
        what = "; ".join(f"{r} ({reason})" for r, reason in sorted(left.items()))
        log.error("%s: LEFT RUNNING on %s: %s", why, agent.node, what)
        await agent.event("left-running", f"{why}: still running on {agent.node}: {what}", left=sorted(left))
    return sorted(left)


def stop_cost(agent: Agent, spec: ClusterSpec, running: set[str]) -> float:
    """Seconds stopping `running` here may take at most: their stop timeouts, plus the demote
    timeouts of promoted instances."""
    total = 0.0
    for rsc in running:
        total += agent.timeout_for(spec, rsc, "stop")
        if rsc in agent.local_promoted:
            total += agent.timeout_for(spec, rsc, "demote")
    return total


async def shutdown(agent: Agent, stop_resources: bool = True, drain_timeout: float = 120.0) -> None:
    """Leave cleanly, as Pacemaker does for a node shutting down: the member key says
    `shutdown`, so the leader's scheduler moves everything away in order (demote here, promote
    elsewhere, stop here, start elsewhere); this agent keeps carrying out its part until nothing
    runs here. Then it withdraws its reports and revokes the lease (the member key goes, and
    leadership with it). Reports withdrawn means the node is not "lost": nobody fences it.

    Bounded: it ends within the stop (and demote) timeouts of what runs here plus
    SHUTDOWN_MARGIN. The leader gets as long as what still runs here could still be stopped
    locally in the time left (`drain_timeout` at most); whatever it did not move by then is
    stopped here directly. What even that cannot stop is logged, reported as a `left-running`
    event, and keeps its report (a failed stop, with its definition): the next agent here
    probes it again, and with fencing the cluster fences the node rather than run it twice."""
    if agent.draining or agent.leaving:
        return
    loop = asyncio.get_running_loop()
    spec = agent.spec() or ClusterSpec()
    deadline = loop.time() + stop_cost(agent, spec, agent.local_running) + agent.in_flight_timeout + SHUTDOWN_MARGIN
    if stop_resources and agent.keeper.lease and not agent.quorum_lost and agent.local_running:
        agent.draining = True
        try:
            await bounded(
                agent.store.put(
                    agent.keys.member(agent.node), st.dumps(agent.member_info(probed=True)), agent.keeper.lease
                ),
                2,
            )
            log.info("shutting down: moving %s away", ", ".join(sorted(agent.local_running)))
            drain_end = loop.time() + drain_timeout
            while (agent.local_running or agent.action_lock.locked()) and loop.time() < drain_end:
                if agent.quorum_lost:
                    break
                spec = agent.spec() or spec
                cost = stop_cost(agent, spec, agent.local_running) + agent.in_flight_timeout
                if loop.time() + cost + STORE_RESERVE >= deadline:
                    log.warning("shutting down: the leader did not move everything in time; stopping the rest here")
                    break
                await asyncio.sleep(0.1)
        except (StoreError, TimeoutError) as exc:
            log.warning("shutting down: cannot ask the leader to move resources (%s); stopping them here", exc)
    agent.leaving = True
    async with agent.action_lock:  # let an action in flight finish, start no other
        pass
    spec = agent.spec() or spec
    left: list[str] = []
    if stop_resources:
        if agent.local_running:
            left = await stop_locally(agent, spec, "shutting down")
        with contextlib.suppress(StoreError, TimeoutError):
            await bounded(withdraw_reports(agent, spec, left), 2)
    agent.stopped.set()
    if agent.keeper.lease:
        with contextlib.suppress(StoreError, TimeoutError):
            await bounded(agent.store.revoke(agent.keeper.lease), 2)


async def withdraw_reports(agent: Agent, spec: ClusterSpec, left: list[str]) -> None:
    """Delete this node's reports, except for what is left running: those say so (a failed
    stop) and keep the definition to stop them with.

    Only while this incarnation is still the member (its member key under its lease, unchanged
    since read), as an action's report is guarded by its claim (state.report_guard): once the
    lease is gone the leader may be fencing the node, and withdrawn reports would make it look
    cleanly down; and a withdrawal held up in the network must not land after the node's next
    incarnation has probed and reported what runs there."""
    member_key = agent.keys.member(agent.node)
    member = await agent.store.get(member_key)
    lease = agent.keeper.lease
    if member is None or not lease or member.lease != lease:
        log.warning("shutting down: the lease is gone; the reports stay for the fence or the next probe")
        return
    prefix = f"{agent.keys.status}{agent.node}/"
    kvs, _ = await agent.store.get_prefix(prefix)
    ops: list[Any] = [Delete(kv.key) for kv in kvs if kv.key[len(prefix) :] not in left]
    for rsc in left:
        res = Result(Status.ERROR, 1, "left running when its agent shut down")
        ops.append(Put(prefix + rsc, st.dumps(agent.status_doc(res, "stop", ok=False, known=agent.known(rsc)))))
    if ops:
        reported = await agent.store.txn([unchanged_since(member_key, member.mod_revision)], ops)
        if not reported.succeeded:
            log.warning("shutting down: this incarnation is no longer the member; the reports stay")
