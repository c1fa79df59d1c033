"""Side effects a speaker triggers besides packets: notify scripts, track scripts, the state file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from hakeeper.vrrp.config import Script

log = logging.getLogger("hakeeper.vrrp")


class Notifier:
    """Runs notify commands without waiting for them; keeps their tasks so they are reaped."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def run(self, command: str | None, *args: str) -> None:
        if not command:
            return
        argv = [*shlex.split(command), *args]
        task = asyncio.get_running_loop().create_task(self._run(argv))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, argv: list[str]) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
            )
            code = await asyncio.wait_for(proc.wait(), timeout=60)
            if code:
                log.warning("notify %s exited with %s", argv[0], code)
        except (TimeoutError, OSError) as exc:
            log.warning("notify %s failed: %s", argv[0], exc)

    async def drain(self, timeout: float = 5.0) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)


@dataclass
class ScriptStatus:
    """rise/fall counting over a tracked script's exit codes (keepalived's vrrp_script)."""

    script: Script
    ok: bool = True
    streak: int = 0  # consecutive results that disagree with `ok`

    def __post_init__(self) -> None:
        self.ok = not self.script.init_fail

    def record(self, success: bool) -> bool:
        """Record one run; True if the status changed."""
        if success == self.ok:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (self.script.rise if success else self.script.fall):
            self.ok, self.streak = success, 0
            return True
        return False


async def run_script(script: Script) -> bool:
    """Run a track script once; success is exit status 0 within its timeout."""
    timeout = script.timeout or script.interval
    try:
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(script.script), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
    except OSError as exc:
        log.warning("vrrp_script %s: %s", script.name, exc)
        return False
    try:
        return await asyncio.wait_for(proc.wait(), timeout=timeout) == 0
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False


async def track_loop(status: ScriptStatus, changed: Callable[[], None]) -> None:
    while True:
        ok = await run_script(status.script)
        if status.record(ok):
            log.info("vrrp_script %s is now %s", status.script.name, "ok" if status.ok else "failing")
            changed()
        await asyncio.sleep(status.script.interval)


@dataclass
class StateFile:
    """A JSON file with every instance's state, priority and drop counters, replaced atomically."""

    path: str | None
    last: str = field(default="")

    def write(self, data: dict[str, object]) -> None:
        if not self.path:
            return
        text = json.dumps(data, indent=1, sort_keys=True)
        if text == self.last:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hakeeper-vrrp.")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, self.path)
        self.last = text
