"""Fence devices: cut a node off for good before its resources start elsewhere.

FenceAgent drives Debian's fence-agents scripts (/usr/sbin/fence_*) through their standard
interface: options as key=value lines on stdin, exit status 0 on success. The node is passed as
`plug` (mapped through `host_map` "node:plug;node2:plug2" as Pacemaker's pcmk_host_map).
NamespaceFence is the test device: it kills every process of the node's network namespace and
takes its links down.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from hakeeper.names import agent_path_problem, control_character_problem, is_inside
from hakeeper.resources.runner import run


@dataclass(frozen=True)
class FenceResult:
    ok: bool
    output: str


class FenceDevice(abc.ABC):
    @abc.abstractmethod
    async def fence(self, node: str, timeout: float) -> FenceResult: ...


FENCE_AGENT_DIR = "/usr/sbin"


def fence_agent_path(agent: str) -> str:
    """The script a `stonith:AGENT` primitive runs: a name under /usr/sbin, or an absolute path."""
    return agent if os.path.isabs(agent) else os.path.join(FENCE_AGENT_DIR, agent)


def fence_agent_problem(agent: str) -> str | None:
    """Why `stonith:AGENT` cannot run here (a name that would leave /usr/sbin, a missing or
    non-executable script), or None."""
    shape = agent_path_problem(agent, absolute=True)
    if shape is not None:
        return f"fence agent {agent!r}: {shape}"
    path = fence_agent_path(agent)
    if not os.path.isabs(agent) and not is_inside(path, FENCE_AGENT_DIR):
        return f"fence agent {path} is not inside {FENCE_AGENT_DIR}"
    real = os.path.realpath(path)
    if not os.path.isfile(real) or not os.access(real, os.X_OK):
        return f"fence agent {path} not found"
    return None


def stdin_problem(params: Mapping[str, str]) -> str | None:
    """Fence agents read `key=value` lines: a line break in a value would add an option of its own
    (`action=on`), so such parameters are refused rather than passed."""
    for key, value in params.items():
        problem = control_character_problem(key) or control_character_problem(value)
        if problem is not None or "=" in key:
            return f"fence parameter {key!r} cannot be passed on one line"
    return None


class FenceAgent(FenceDevice):
    def __init__(self, agent: str, params: Mapping[str, str], action: str = "off") -> None:
        self.agent = agent
        self.path = fence_agent_path(agent)
        self.params = {k: v for k, v in params.items() if k != "host_map"}
        self.host_map = dict(
            item.split(":", 1) for item in params.get("host_map", "").replace(",", ";").split(";") if ":" in item
        )
        self.action = action

    def stdin(self, node: str) -> str:
        opts = {**self.params, "action": self.action, "plug": self.host_map.get(node, node)}
        return "".join(f"{k}={v}\n" for k, v in opts.items())

    async def fence(self, node: str, timeout: float) -> FenceResult:
        problem = fence_agent_problem(self.agent) or stdin_problem({**self.params, "action": self.action})
        if problem is not None:
            return FenceResult(False, problem)
        done = await run([self.path], timeout, stdin=self.stdin(node))
        if done.timed_out:
            return FenceResult(False, f"{os.path.basename(self.path)} timed out after {timeout:g}s")
        return FenceResult(done.rc == 0, f"rc={done.rc} {done.output.strip()}"[:2000])


class NamespaceFence(FenceDevice):
    """Fences node N by killing all processes in namespace `template.format(node=N)` and setting
    all of its links down. Everything runs through `ip` subprocesses with a deadline: the agent
    never enters another namespace itself."""

    def __init__(self, template: str = "hka-{node}") -> None:
        self.template = template

    async def fence(self, node: str, timeout: float) -> FenceResult:
        ns = self.template.format(node=node)
        if not os.path.exists(f"/run/netns/{ns}"):
            return FenceResult(False, f"no namespace {ns}")
        pids = await run(["ip", "netns", "pids", ns], timeout)
        if pids.rc != 0:
            return FenceResult(False, f"ip netns pids {ns}: {pids.output.strip()}")
        killed = 0
        for pid in pids.output.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
        links = await run(["ip", "-n", ns, "-o", "link", "show"], timeout)
        down = []
        for line in links.output.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if line.count(":") >= 2 else ""
            if name and name != "lo":
                res = await run(["ip", "-n", ns, "link", "set", "dev", name, "down"], timeout)
                if res.rc != 0:
                    return FenceResult(False, f"could not take {name} down in {ns}: {res.output.strip()}")
                down.append(name)
        return FenceResult(True, f"killed {killed} processes, links down: {', '.join(down)}")


def make_device(kind: str, params: Mapping[str, str]) -> FenceDevice:
    if kind == "netns":
        return NamespaceFence(params.get("template", "hka-{node}"))
    return FenceAgent(kind, params, params.get("action", "off"))
