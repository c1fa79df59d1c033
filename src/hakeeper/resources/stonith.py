"""Stonith resources: a fence device configured as a primitive (`stonith:fence_xxx`,
`stonith:netns`). Starting one checks that the device can run on this node and marks it started;
the leader fences through `fencing.make_device` with the primitive's params, wherever it runs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from hakeeper.names import PathEscapeError, contained_path
from hakeeper.resources.base import ResourceAgent, register_class
from hakeeper.resources.fencing import FenceDevice, fence_agent_problem, make_device
from hakeeper.resources.result import Result, Status
from hakeeper.spec.values import parse_duration


def device_for(agent_type: str, params: Mapping[str, str]) -> FenceDevice:
    """The device, with Pacemaker's pcmk_* options kept for placement, not passed to the agent."""
    own = {k: v for k, v in params.items() if not k.startswith("pcmk_")}
    if "pcmk_host_map" in params:
        own["host_map"] = params["pcmk_host_map"]
    return make_device(agent_type, own)


def fence_delay(params: Mapping[str, str]) -> tuple[float, float]:
    """Pacemaker's pcmk_delay_base and pcmk_delay_max (seconds): wait base plus a random share of
    max before fencing through this device, so in a fence race one side clearly goes first.
    Values that do not parse count as no delay (fencing must never fail over a typo)."""

    def one(key: str) -> float:
        try:
            return parse_duration(params.get(key, "0"))
        except ValueError:
            return 0.0

    return one("pcmk_delay_base"), one("pcmk_delay_max")


def device_missing(agent_type: str) -> str | None:
    if agent_type == "netns":
        return None
    return fence_agent_problem(agent_type)


class StonithAgent(ResourceAgent):
    def marker(self) -> str | None:
        """The file that says the device was started here; None for an id that would put it
        outside the state directory (the spec refuses such ids; this is the second line)."""
        try:
            return contained_path(self.state_dir, f"{self.rid}.stonith")
        except PathEscapeError:
            return None

    def installed(self) -> str | None:
        return device_missing(self.name.type)

    async def start(self, timeout: float) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_INSTALLED, 5, reason)
        os.makedirs(self.state_dir, exist_ok=True)
        marker = self.marker()
        if marker is None:
            return Result(Status.NOT_CONFIGURED, 6, f"resource id {self.rid!r} leaves the state directory")
        with open(marker, "w"):
            pass
        return Result(Status.SUCCESS, 0)

    async def stop(self, timeout: float) -> Result:
        marker = self.marker()  # None: nothing can have been started under that id
        if marker is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
        return Result(Status.SUCCESS, 0)

    async def monitor(self, timeout: float) -> Result:
        marker = self.marker()
        if marker is None or not os.path.exists(marker):
            return Result(Status.NOT_RUNNING, 7)
        reason = self.installed()
        return Result(Status.SUCCESS, 0) if reason is None else Result(Status.NOT_INSTALLED, 5, reason)


def register() -> None:
    register_class("stonith", StonithAgent)
