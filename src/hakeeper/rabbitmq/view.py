"""The RabbitMQ tier as the operator sees it (pure): per broker, what it reports of its cluster
(`rabbitmqctl cluster_status`) and what its node's boot report in the store says; and whether
`forget NODE` may remove a node from the cluster for good.

Why forget is the operator's: a node that is down may come back with its data and rejoin. Only a
person knows that a node is gone for good (a replaced disk, a retired host), so hakeeper never
forgets a node by itself, and this command refuses while the node's broker runs (RabbitMQ would
refuse too, after the fact) or when the name is not a member of any cluster a broker reports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hakeeper.errors import InputError


@dataclass(frozen=True)
class BootReport:
    """What a node's agent published at its last probe or stop (the `<rid>-boot` attribute)."""

    has_data: bool
    running_at_shutdown: tuple[str, ...]


@dataclass(frozen=True)
class Broker:
    """One node of the RabbitMQ cluster: its hakeeper side and what its broker answered."""

    node: str  # the hakeeper node; the broker is rabbit@<node>
    agent_online: bool  # its hakeeper agent is a member of the store
    answered: bool  # its broker answered cluster_status
    error: str  # why it did not (empty when it did)
    members: tuple[str, ...]  # the cluster it belongs to (disk and RAM nodes)
    running: tuple[str, ...]  # the running nodes of that cluster
    alarms: tuple[str, ...]  # "rabbit@r1: disk" ...
    partitions: tuple[str, ...]  # "rabbit@r1 sees rabbit@r3 partitioned" ...
    boot: BootReport | None
    # What its monitor last published to the store (the `<rid>-cluster` attribute, membership_summary).
    last_monitor: str | None = None

    @property
    def broker(self) -> str:
        return f"rabbit@{self.node}"

    @property
    def running_here(self) -> bool:
        return self.answered and self.broker in self.running


def parse_boot_report(raw: str | None) -> BootReport | None:
    """The boot report attribute's JSON; None when absent or not one (an old or foreign value)."""
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or "data" not in doc:
        return None
    return BootReport(bool(doc["data"]), tuple(sorted(str(n) for n in doc.get("running_at_shutdown") or [])))


def _alarm_text(alarm: object) -> str:
    if isinstance(alarm, dict):
        where = alarm.get("node")
        what = alarm.get("resource") or alarm.get("type") or json.dumps(alarm, sort_keys=True)
        return f"{where}: {what}" if where else str(what)
    return str(alarm)


def _partition_texts(partitions: object) -> tuple[str, ...]:
    # RabbitMQ lists, per node, the nodes it saw partitioned from it: a map in JSON (a list of
    # pairs from some versions); anything non-empty is a partition.
    if isinstance(partitions, dict):
        return tuple(f"{n} sees {', '.join(map(str, others))} partitioned"
                     for n, others in sorted(partitions.items()) if others)
    if isinstance(partitions, list):
        return tuple(json.dumps(p, sort_keys=True) for p in partitions if p)
    return ()


def broker_from_status(
    node: str, agent_online: bool, boot: BootReport | None, status: object, error: str = "",
    last_monitor: str | None = None,
) -> Broker:
    """A broker's row from its `cluster_status --formatter json` document (None or a non-object:
    it did not answer, `error` says why)."""
    if not isinstance(status, dict):
        return Broker(node, agent_online, False, error or "no answer", (), (), (), (), boot, last_monitor)
    members = sorted({str(n) for n in [*(status.get("disk_nodes") or []), *(status.get("ram_nodes") or [])]})
    return Broker(
        node=node,
        agent_online=agent_online,
        answered=True,
        error="",
        members=tuple(members),
        running=tuple(sorted(str(n) for n in status.get("running_nodes") or [])),
        alarms=tuple(_alarm_text(a) for a in status.get("alarms") or []),
        partitions=_partition_texts(status.get("partitions")),
        boot=boot,
        last_monitor=last_monitor,
    )


def membership_summary(status: object) -> str:
    """One line of what a running broker reports of its cluster, for the `<rid>-cluster` node
    attribute its monitor publishes (what a status view of the store can show without the
    cookie): running nodes, members that do not run, alarms, partitions. Stable for one state,
    so the attribute changes only when the cluster does."""
    b = broker_from_status("", True, None, status)
    if not b.answered:
        return "cluster_status: no answer"
    stopped = [m for m in b.members if m not in b.running]
    return (f"running {','.join(b.running) or '-'}; not running {','.join(stopped) or '-'}; "
            f"alarms {'; '.join(sorted(b.alarms)) or 'none'}; partitions {'; '.join(b.partitions) or 'none'}")


def render(rid: str, brokers: Sequence[Broker]) -> str:
    lines = [f"RabbitMQ ({rid}):"]
    for b in brokers:
        agent = "online" if b.agent_online else "OFFLINE"
        if b.answered:
            state = "running" if b.running_here else "not running (paused or stopped app)"
            lines.append(f"  {b.broker:<20} agent {agent:<8} broker {state}")
            lines.append(f"    members: {', '.join(b.members) or '-'}; running: {', '.join(b.running) or '-'}")
        else:
            lines.append(f"  {b.broker:<20} agent {agent:<8} broker does not answer: {b.error}")
        lines.append(f"    alarms: {'; '.join(b.alarms) or 'none'}; partitions: {'; '.join(b.partitions) or 'none'}")
        if b.boot is None:
            lines.append("    boot report: none")
        else:
            data = "data" if b.boot.has_data else "no data"
            lines.append(f"    boot report: {data}; running at its last stop: "
                         f"{', '.join(b.boot.running_at_shutdown) or '-'}")
        lines.append(f"    its monitor last saw: {b.last_monitor or '-'}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ForgetPlan:
    node: str  # rabbit@<node>, to forget
    via: str  # rabbit@<member> that runs forget_cluster_node

    def describe(self) -> str:
        return f"forget {self.node} from the cluster, through {self.via}"


def _broker_name(node: str) -> str:
    return node if "@" in node else f"rabbit@{node}"


def plan_forget(node: str, brokers: Sequence[Broker], configured: Mapping[str, object] | Sequence[str]) -> ForgetPlan:
    """Whether NODE may be forgotten, and through which running member (pure). Refusals are
    InputErrors naming the argument; nothing is done."""
    target = _broker_name(node)
    known = {_broker_name(n) for n in configured} | {m for b in brokers for m in b.members}
    if target not in known:
        raise InputError.at(f"unknown node {target}: not configured and no broker lists it; "
                            f"known: {', '.join(sorted(known)) or 'none'}", field="NODE")
    own = next((b for b in brokers if b.broker == target), None)
    if own is not None and own.answered:
        raise InputError.at(f"{target}'s broker still runs (it answers cluster_status): stop it first; "
                            "forget is for a node removed for good", field="NODE")
    seen_running = sorted(b.broker for b in brokers if target in b.running)
    if seen_running:
        raise InputError.at(f"{target} is running, as {', '.join(seen_running)} report(s): "
                            "forget is for a node removed for good", field="NODE")
    running = [b for b in brokers if b.running_here]
    if not running:
        raise InputError.at("no broker of the cluster is running: forget_cluster_node needs a running member "
                            "(start the cluster first)", field="NODE")
    listing = [b for b in running if target in b.members]
    if not listing:
        raise InputError.at(f"{target} is not a member of the running cluster ({', '.join(running[0].members)}): "
                            "nothing to forget", field="NODE")
    return ForgetPlan(target, listing[0].broker)
