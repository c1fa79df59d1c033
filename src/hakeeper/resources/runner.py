"""The subprocess edge: run a command with a deadline, kill its whole process group past it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Completed:
    rc: int | None  # None: timed out or killed by a signal
    output: str
    duration: float
    timed_out: bool = False


async def run(
    argv: list[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    grace: float = 2.0,
) -> Completed:
    """Run argv; on timeout send SIGTERM to its process group, then SIGKILL after `grace`."""
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except OSError as exc:
        return Completed(127, f"cannot run {argv[0]}: {exc}", time.monotonic() - start)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    except TimeoutError:
        _killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        return Completed(None, f"timed out after {timeout:g}s", time.monotonic() - start, timed_out=True)
    except asyncio.CancelledError:
        _killpg(proc.pid, signal.SIGKILL)
        # Reap it before going: no zombie, and no pipe transport left for the garbage collector
        # to close after the event loop is gone.
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), grace)
        raise
    rc = proc.returncode
    text = out.decode(errors="replace")[-4000:]
    return Completed(rc if rc is not None and rc >= 0 else None, text, time.monotonic() - start)


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
