"""systemd units through systemctl. Needs a running systemd (absent in most containers)."""

from __future__ import annotations

import os
import shutil

from hakeeper.resources.base import ResourceAgent, register_class, timed_out
from hakeeper.resources.result import Result, Status
from hakeeper.resources.runner import run


def systemd_running() -> bool:
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


class SystemdAgent(ResourceAgent):
    @property
    def unit(self) -> str:
        t = self.name.type
        return t if "." in t else f"{t}.service"

    def installed(self) -> str | None:
        if not systemd_running():
            return "systemd is not running on this node"
        return None

    async def _ctl(self, timeout: float, *args: str) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_INSTALLED, 5, reason)
        done = await run(["systemctl", *args], timeout)
        if done.timed_out:
            return timed_out(done)
        return Result(Status.SUCCESS if done.rc == 0 else Status.ERROR, done.rc, done.output, done.duration)

    async def start(self, timeout: float) -> Result:
        return await self._ctl(timeout, "start", self.unit)

    async def stop(self, timeout: float) -> Result:
        return await self._ctl(timeout, "stop", self.unit)

    async def monitor(self, timeout: float) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_INSTALLED, 5, reason)
        done = await run(["systemctl", "is-active", self.unit], timeout)
        if done.timed_out:
            return timed_out(done)
        state = done.output.strip()
        if state in ("active", "reloading", "activating", "deactivating"):
            return Result(Status.SUCCESS, 0, state, done.duration)
        if state == "failed":
            return Result(Status.ERROR, 1, state, done.duration)
        return Result(Status.NOT_RUNNING, 7, state, done.duration)


def register() -> None:
    register_class("systemd", SystemdAgent)
