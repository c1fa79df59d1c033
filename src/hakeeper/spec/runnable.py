"""Which primitives of a spec can run on this host: the agent check behind `validate`'s warnings.

A primitive can run here when its class is known and its agent says it is installed (the OCF
script, the init script, the systemd unit, the fence agent...). An `upstart:` primitive runs as
the systemd unit or init script of the same name, which is worth saying even when one exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from hakeeper.resources.base import make_agent
from hakeeper.resources.lsb import UpstartAgent
from hakeeper.spec.model import ClusterSpec, Primitive


@dataclass(frozen=True)
class AgentCheck:
    index: int  # in spec.resources.primitives
    primitive: str
    agent: str
    problem: str | None = None  # why nothing on this host can run it
    note: str | None = None  # it runs, but not as written (an upstart job mapped)


def check_primitive(index: int, prim: Primitive) -> AgentCheck:
    agent = str(prim.agent)
    try:
        ra = make_agent(prim.id, agent, prim.params, "/nonexistent")
    except ValueError as exc:
        return AgentCheck(index, prim.id, agent, problem=str(exc))
    reason = ra.installed()
    if reason is not None:
        return AgentCheck(index, prim.id, agent, problem=reason)
    if isinstance(ra, UpstartAgent):
        backend = ra.backend()
        if not isinstance(backend, str):
            return AgentCheck(index, prim.id, agent, note=f"no upstart on this system: runs as {backend.name}")
    return AgentCheck(index, prim.id, agent)


def unrunnable(spec: ClusterSpec) -> list[AgentCheck]:
    """Every primitive that cannot run here or runs other than written, in file order."""
    checks = (check_primitive(i, p) for i, p in enumerate(spec.resources.primitives))
    return [c for c in checks if c.problem is not None or c.note is not None]


def unmonitored(spec: ClusterSpec) -> list[int]:
    """Indexes of the primitives with no enabled recurring monitor: the agent starts and stops
    them but never looks again, so a crash goes unnoticed (fence devices excepted: the leader
    tries them when it fences)."""
    return [
        i for i, prim in enumerate(spec.resources.primitives)
        if prim.agent.cls != "stonith"
        and not any(op.name == "monitor" and op.enabled and op.interval > 0 for op in prim.operations)
    ]
