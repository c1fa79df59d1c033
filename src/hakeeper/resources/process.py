"""Plain processes: a command line started detached, tracked by a pidfile.

The pidfile records the pid and the process's start time (field 22 of /proc/PID/stat), so a
recycled pid is never taken for our process. Params: `command` (shell-split), optional `cwd`,
`env_*` entries become environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time

from hakeeper.names import PathEscapeError, contained_path
from hakeeper.resources.base import ResourceAgent, register_class
from hakeeper.resources.result import Result, Status


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after its closing paren are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None  # a zombie has exited
    return fields[19]


class ProcessAgent(ResourceAgent):
    # The pid and log files are named after the resource id. The spec admits only safe ids, but a
    # file is opened here, so here is where a name that would lead outside the state directory is
    # refused too (PathEscapeError): whatever the id, nothing is written elsewhere.
    @property
    def pidfile(self) -> str:
        return contained_path(self.state_dir, f"{self.rid}.pid")

    @property
    def logfile(self) -> str:
        return contained_path(self.state_dir, f"{self.rid}.log")

    def _unsafe(self) -> str | None:
        """Why this resource's files cannot be placed in the state directory, or None."""
        try:
            contained_path(self.state_dir, f"{self.rid}.pid")
            contained_path(self.state_dir, f"{self.rid}.log")
        except PathEscapeError as exc:
            return f"resource id {self.rid!r} would put its files outside the state directory: {exc}"
        return None

    def installed(self) -> str | None:
        unsafe = self._unsafe()
        if unsafe is not None:
            return unsafe
        cmd = self.params.get("command", "")
        if not cmd:
            return "process resource needs a `command` parameter"
        exe = shlex.split(cmd)[0]
        if os.path.isabs(exe) and not os.access(exe, os.X_OK):
            return f"{exe} is not executable"
        return None

    def _pid(self) -> int | None:
        if self._unsafe() is not None:
            return None
        try:
            with open(self.pidfile) as f:
                pid_s, started = f.read().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            return None
        return pid if _start_time(pid) == started else None

    async def start(self, timeout: float) -> Result:
        if self._pid() is not None:
            return Result(Status.SUCCESS, 0, "already running")
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        os.makedirs(self.state_dir, exist_ok=True)
        env = dict(os.environ)
        env.update({k[4:]: v for k, v in self.params.items() if k.startswith("env_")})
        log = open(self.logfile, "ab")  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                shlex.split(self.params["command"]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.params.get("cwd") or None,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return Result(Status.NOT_INSTALLED, 5, str(exc))
        finally:
            log.close()
        started = _start_time(proc.pid)
        with open(self.pidfile, "w") as f:
            f.write(f"{proc.pid} {started}\n")
        # The child is detached (own session); a daemon thread reaps it so it never lingers as a
        # zombie of the agent, and never holds up the agent's exit.
        threading.Thread(target=proc.wait, daemon=True).start()
        await asyncio.sleep(min(0.2, timeout / 4))
        return await self.monitor(timeout) if self._pid() else Result(Status.ERROR, 1, "exited at once")

    async def stop(self, timeout: float) -> Result:
        unsafe = self._unsafe()
        if unsafe is not None:
            # start refuses such an id, so nothing of this resource can be running: the stop is
            # done (a failed stop would have the node fenced for a process that never existed).
            return Result(Status.SUCCESS, 0, f"not running: {unsafe}")
        pid = self._pid()
        if pid is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pidfile)
            return Result(Status.SUCCESS, 0, "not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + max(0.5, timeout - 1)
        while self._pid() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._pid() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            await asyncio.sleep(0.1)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidfile)
        return Result(Status.SUCCESS, 0, "stopped")

    async def monitor(self, timeout: float) -> Result:
        unsafe = self._unsafe()
        if unsafe is not None:
            return Result(Status.NOT_CONFIGURED, 6, unsafe)
        if self._pid() is not None:
            return Result(Status.SUCCESS, 0, "running")
        return Result(Status.NOT_RUNNING, 7, "not running")


def register() -> None:
    register_class("process", ProcessAgent)
