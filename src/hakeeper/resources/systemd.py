"""systemd units through systemctl. Needs a running systemd (absent in most containers)."""

from __future__ import annotations

import os
import shutil

from hakeeper.resources.base import ResourceAgent, register_class, timed_out
from hakeeper.resources.result import Result, Status
from hakeeper.resources.runner import run

# Where unit files are found (systemd.unit(5), system manager), generated and transient ones
# included: a unit made by a generator (an LSB script's wrapper) is as real as a packaged one.
UNIT_DIRS = (
    "/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
    "/run/systemd/generator.early", "/etc/systemd/system", "/run/systemd/system",
    "/run/systemd/generator", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
    "/lib/systemd/system", "/run/systemd/generator.late",
)


def systemd_running() -> bool:
    """systemd is the service manager here (the test sd_booted() makes: /run/systemd/system)."""
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def unit_name(name: str) -> str:
    """`nginx` → `nginx.service`; a name with a unit suffix is kept."""
    return name if "." in name else f"{name}.service"


def unit_exists(name: str, dirs: tuple[str, ...] = UNIT_DIRS) -> bool:
    """A unit file for `name` in systemd's search path (an instance `a@b.service` is found through
    its template `a@.service`). A name with a slash names no unit."""
    unit = unit_name(name)
    if "/" in unit or unit.startswith("."):
        return False
    candidates = [unit]
    prefix, at, rest = unit.partition("@")
    if at and "." in rest:
        candidates.append(f"{prefix}@.{rest.rsplit('.', 1)[1]}")
    return any(os.path.exists(os.path.join(d, c)) for d in dirs for c in candidates)


class SystemdAgent(ResourceAgent):
    @property
    def unit(self) -> str:
        return unit_name(self.name.type)

    def installed(self) -> str | None:
        if not systemd_running():
            return "systemd is not running on this node"
        if not unit_exists(self.name.type):
            return f"no systemd unit {self.unit} on this node"
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
