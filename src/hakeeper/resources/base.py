"""The interface every resource class implements, and the registry that names them.

A resource is named by its agent string, Pacemaker style: "ocf:heartbeat:Dummy",
"systemd:nginx", "process", "vip". `make_agent` turns (id, agent string, params) into an object
of the class registered for the prefix; `register_class` adds a class (see docs/resources.md).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hakeeper.resources.result import UNIMPLEMENTED, Result, Status
from hakeeper.resources.runner import Completed

# Actions that only look: nothing to end if their agent dies, and monitors run every few seconds.
_OBSERVING = frozenset({"monitor", "status", "meta-data", "validate-all"})


def ops_dir(state_dir: str) -> str:
    """Where the resource operations running now are noted (runner.run's `track`): what an agent
    that dies leaves there, the next one ends before it probes (runner.end_leftovers)."""
    return os.path.join(state_dir, "ops")


def track_dir(state_dir: str, action: str) -> str | None:
    """runner.run's `track` for `action`: ops_dir, or None for an action that only looks."""
    return None if action in _OBSERVING else ops_dir(state_dir)


@dataclass(frozen=True)
class AgentName:
    cls: str  # "ocf", "systemd", "lsb", "service", "upstart", "process", "vip", "stonith"
    provider: str | None
    type: str

    @classmethod
    def parse(cls, text: str) -> AgentName:
        parts = text.split(":")
        if parts[0] == "ocf":
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"an OCF agent is ocf:PROVIDER:TYPE, not {text!r}")
            return cls("ocf", parts[1], parts[2])
        if len(parts) == 1:
            return cls(parts[0], None, parts[0])
        if len(parts) == 2 and all(parts):
            return cls(parts[0], None, parts[1])
        raise ValueError(f"cannot read agent {text!r}: expected CLASS:TYPE or ocf:PROVIDER:TYPE")

    def __str__(self) -> str:
        if self.provider:
            return f"{self.cls}:{self.provider}:{self.type}"
        return self.cls if self.type == self.cls else f"{self.cls}:{self.type}"


class ResourceAgent(abc.ABC):
    """One configured resource on this node. Actions never raise for the resource's own failures:
    they return a Result (timeouts and unknown codes included)."""

    def __init__(self, rid: str, name: AgentName, params: Mapping[str, str], state_dir: str) -> None:
        self.rid = rid
        self.name = name
        self.params = dict(params)
        self.state_dir = state_dir  # per-node scratch space (pidfiles, OCF's HA_RSCTMP)
        # What Pacemaker's executor passes along as CRM_meta_* (the node's name, clone facts); the
        # node agent fills it in. `op_interval` is the interval of the operation being run (0 for
        # a one-off action or a probe): OCF agents see both (OCF_RESKEY_CRM_meta_interval, in ms).
        self.meta: dict[str, str] = {}
        self.op_interval = 0.0

    @abc.abstractmethod
    def installed(self) -> str | None:
        """None if the agent can run on this node, else why not (checked before configuring)."""

    @abc.abstractmethod
    async def start(self, timeout: float) -> Result: ...

    @abc.abstractmethod
    async def stop(self, timeout: float) -> Result: ...

    @abc.abstractmethod
    async def monitor(self, timeout: float) -> Result: ...

    async def promote(self, timeout: float) -> Result:
        return Result(Status.ERROR, UNIMPLEMENTED, "promote not supported by this class")

    async def demote(self, timeout: float) -> Result:
        return Result(Status.ERROR, UNIMPLEMENTED, "demote not supported by this class")

    async def meta_data(self) -> str:
        return ""

    async def action(self, name: str, timeout: float, interval: float = 0.0) -> Result:
        self.op_interval = interval
        fn = {
            "start": self.start,
            "stop": self.stop,
            "monitor": self.monitor,
            "promote": self.promote,
            "demote": self.demote,
        }.get(name)
        if fn is None:
            return Result(Status.ERROR, UNIMPLEMENTED, f"unknown action {name}")
        # Every action's duration is measured here, whatever the class: the classes that run no
        # subprocess (process, vip, stonith) have no runner to time them, and a class's own figure
        # would leave out the work around its subprocess (state files, netlink, waiting to settle).
        began = time.monotonic()
        try:
            # The classes enforce their own timeouts; this is the backstop for one that does not.
            result = await asyncio.wait_for(fn(timeout), timeout + 5)
        except TimeoutError:
            result = Result(Status.TIMEOUT, None, f"{name} exceeded {timeout:g}s")
        return dataclasses.replace(result, duration=time.monotonic() - began)


def timed_out(done: Completed) -> Result:
    return Result(Status.TIMEOUT, None, done.output, done.duration)


Factory = Callable[[str, AgentName, Mapping[str, str], str], ResourceAgent]
_CLASSES: dict[str, Factory] = {}


def register_class(cls: str, factory: Factory) -> None:
    _CLASSES[cls] = factory


def known_classes() -> list[str]:
    _load_builtin()
    return sorted(_CLASSES)


def make_agent(rid: str, agent: str, params: Mapping[str, str], state_dir: str) -> ResourceAgent:
    """Raises ValueError for an agent string no class understands."""
    _load_builtin()
    name = AgentName.parse(agent)
    factory = _CLASSES.get(name.cls)
    if factory is None:
        raise ValueError(f"unknown resource class {name.cls!r} (known: {', '.join(sorted(_CLASSES))})")
    return factory(rid, name, params, state_dir)


def _load_builtin() -> None:
    if _CLASSES:
        return
    # Imported here so each class module can import this one.
    from hakeeper.resources import lsb, ocf, process, stonith, systemd, vip

    for mod in (lsb, ocf, process, stonith, systemd, vip):
        mod.register()
    from hakeeper.rabbitmq import agent as rabbitmq_agent  # the native RabbitMQ class (docs/rabbitmq.md)

    rabbitmq_agent.register()
    from hakeeper.instanceha import resource as instanceha_resource  # instanceha:evacuator (docs/instance-ha.md)

    instanceha_resource.register()
