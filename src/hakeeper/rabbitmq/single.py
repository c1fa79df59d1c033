"""Seed 002's active/passive broker: `rabbitmq:single`, one rabbitmq-server whose data directory
lives on storage every controller can mount (CephFS, DRBD, a shared directory in the tests),
moved between hosts by hakeeper with its VIP, as a group [vip, rabbitmq].

Why a mode of the native class and not a class of its own: the broker is the same process with
the same files, CLI calls, monitor (check_running, alarms) and stop; what differs is only who the
node is and how it starts. The node is `rabbit@<node_host>`, `node_host` the VIP's name (it must
resolve to the VIP on every controller), so the data (mnesia/rabbit@<node_host>) belongs to the
same node wherever it runs; and a start never joins or waits for anyone: there is no cluster.

What keeps two hosts from running it on the same data is fencing: the cluster must have
`stonith-enabled: true`, so a host that was lost is fenced before the group starts elsewhere.
(The class cannot see that setting: the agent's cluster view does not carry it; docs/rabbitmq.md.)

Params: cookie, base_dir (the shared directory), node_host, user, port (as rabbitmq:cluster).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time

from hakeeper.rabbitmq.agent import RabbitAgent
from hakeeper.rabbitmq.decide import Action, Decision
from hakeeper.resources.result import Result, Status

HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")  # a short host name, as -sname wants


def foreign_nodes(mnesia_base: str, nodename: str) -> list[str]:
    """The RabbitMQ nodes whose data the shared mnesia directory holds, when ours is not there:
    a directory of another broker (or of this one under another name). Empty: ours, or nothing."""
    try:
        entries = sorted(os.listdir(mnesia_base))
    except FileNotFoundError:
        return []
    nodes = [e for e in entries if e.startswith("rabbit@") and os.path.isdir(os.path.join(mnesia_base, e))]
    return [] if nodename in nodes else nodes


class SingleRabbitAgent(RabbitAgent):
    @property
    def node_host(self) -> str:
        return self.params.get("node_host", "")

    @property
    def nodename(self) -> str:
        return f"rabbit@{self.node_host}"

    def peers(self) -> list[str]:
        return []  # no cluster: nobody to join or wait for

    def installed(self) -> str | None:
        reason = super().installed()
        if reason is not None:
            return reason
        if not HOST_NAME.match(self.node_host):
            return (f"rabbitmq:single needs `node_host`, the short name of its VIP (rabbit@<node_host> owns "
                    f"the data wherever it runs), not {self.node_host[:40]!r}")
        return None

    async def start(self, timeout: float) -> Result:
        deadline = time.monotonic() + timeout - 2
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        if self._tracked("server") is not None and (
            await self.ctl("rabbitmq-diagnostics", "-q", "check_running")
        ).rc == 0:
            return Result(Status.SUCCESS, 0, "already running")
        try:
            await asyncio.to_thread(socket.gethostbyname, self.node_host)
        except OSError:
            return Result(Status.NOT_CONFIGURED, 6, f"node name {self.node_host!r} does not resolve "
                          f"({self.nodename} needs it to name the VIP on every controller)")
        foreign = foreign_nodes(os.path.join(self.base, "mnesia"), self.nodename)
        if foreign:
            return Result(Status.NOT_CONFIGURED, 6, f"{self.base} holds the data of {', '.join(foreign)}, not "
                          f"of {self.nodename}: another broker's directory (nothing touched)")
        try:
            self._prepare()
        except (OSError, KeyError) as exc:
            return Result(Status.ERROR, 1, f"cannot prepare {self.base}: {exc}")
        await self._epmd()
        return await self._boot(Decision(Action.BOOT, f"single broker {self.nodename} on {self.me}"), deadline)
