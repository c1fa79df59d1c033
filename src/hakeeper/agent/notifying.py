"""Running a notify action of the plan on this node (a clone with notify=true, placement/notify.py).

The agent claims a notify action as it claims any other (agent/daemon.py), then comes here: the
resource agent's `notify` operation runs with the notification's facts as OCF_RESKEY_CRM_meta_notify_*,
and one transaction records the action done and releases the claim. A notification changes no
status report and no role. Its failure is an event, not a resource failure: as in Pacemaker, a
failed notify neither fails the resource nor raises its fail count, and the transition goes on
(the done marker says ok, with the agent's code), so a notify that always fails cannot hold the
cluster in a loop of plans. Classes other than OCF have no notify operation: nothing to tell them.
An OCF agent without one (ocf:heartbeat:galera) answers "unimplemented" (rc 3): reported as such,
not as a failure. Every OCF agent is asked, whatever its meta-data lists: rabbitmq-cluster
implements notify without listing it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hakeeper.agent import state as st
from hakeeper.agent.plan import PlanAction
from hakeeper.coord.store import Delete, Put
from hakeeper.resources.ocf import OcfAgent
from hakeeper.resources.result import UNIMPLEMENTED, Result, Status
from hakeeper.spec import ClusterSpec

if TYPE_CHECKING:
    from hakeeper.agent.daemon import Agent

log = logging.getLogger("hakeeper.agent")


def describe(action: PlanAction, node: str, res: Result) -> tuple[str, str]:
    """The event (kind, message) a notification's result makes."""
    facts = action.notify
    what = f"{facts.type}-{facts.operation} notification" if facts is not None else "notification"
    if res.ok_for("notify"):
        return "notify", f"{what} on {node}: {res.describe()} in {res.duration:.2f}s"
    if res.rc == UNIMPLEMENTED:
        return "notify", f"{what} on {node}: the agent has no notify action (rc={res.rc}); nothing to tell it"
    return "notify-failed", (
        f"{what} on {node}: {res.describe()} in {res.duration:.2f}s (not a resource failure) "
        + res.output.strip()[-200:]
    ).strip()


def done_doc(res: Result) -> dict[str, Any]:
    """The done marker: ok whatever the agent answered (see the module's docstring)."""
    return {"ok": True, "rc": res.rc, "status": res.status.value, "notify_ok": res.ok_for("notify")}


async def notify_once(agent: Agent, spec: ClusterSpec, action: PlanAction) -> Result:
    """Run the notification through the instance's resource agent."""
    instance = action.resource or ""
    ra = agent.agent_for(spec, instance)
    if ra is None:
        return Result(Status.NOT_CONFIGURED, 6, f"no resource {instance} in the configuration")
    if not isinstance(ra, OcfAgent) or action.notify is None:
        return Result(Status.SUCCESS, 0, f"{ra.name} has no notify operation: nothing to tell it")
    ra.op_interval = 0.0  # a one-off action (a monitor may have left its interval)
    return await ra.notify(agent.timeout_for(spec, instance, "notify"), action.notify.crm_meta())


async def run_notify(agent: Agent, spec: ClusterSpec, epoch: int, action: PlanAction, running: bytes) -> None:
    """Run a claimed notify action and record it done (releasing the claim) in one transaction,
    while the claim (`running`, state.running_value) still stands: see state.report_guard."""
    res = await notify_once(agent, spec, action)
    ok = res.ok_for("notify")
    agent.metrics.actions.labels("notify", "ok" if ok else res.status.value).inc()
    ops: list[Any] = [
        Put(agent.keys.done_of(epoch, action.id), st.dumps(done_doc(res))),
        Delete(agent.keys.running_of(agent.node)),
    ]
    ops += agent.attr_ops()  # an agent may set node attributes while notified
    reported = await agent.store.txn([st.report_guard(agent.keys, agent.node, running)], ops)
    if not reported.succeeded:
        log.warning(
            "notify %s on %s: its done mark is void (the lease that claimed it expired)", action.resource, agent.node
        )
        return
    if agent.executed_epoch == epoch:
        agent.executed[action.id] = True
    kind, message = describe(action, agent.node, res)
    await agent.event(kind, message, agent.local_name(spec, action.resource or ""))
