"""The subprocess edge: run a command with a deadline, kill its whole process group past it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO


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
    log: str | None = None,
    track: str | None = None,
) -> Completed:
    """Run argv; on timeout send SIGTERM to its process group, then SIGKILL after `grace`.

    With `log`, the output is appended to that file instead of a pipe, and the command is done
    when it exits: a daemon it leaves behind (an init script's) keeps writing there harmlessly,
    where with a pipe we would wait for it to close its end (never), or kill it with SIGPIPE by
    closing ours. The output returned is what was appended while the command ran.

    With `track` (a directory), the command's process group is noted there while it runs
    (_note): if this process dies first, the next one ends it (end_leftovers)."""
    start = time.monotonic()
    sink: int | BinaryIO = asyncio.subprocess.PIPE
    offset = 0
    try:
        if log is not None:
            sink = open(log, "ab")  # noqa: SIM115 - closed once the child holds its own copy
            offset = sink.tell()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # its own process group, so a timeout kills its children too
            )
        finally:
            if not isinstance(sink, int):
                sink.close()
    except OSError as exc:
        return Completed(127, f"cannot run {argv[0]}: {exc}", time.monotonic() - start)
    noted = _note(track, proc.pid, argv) if track is not None else None
    try:
        return await _finish(proc, argv, timeout, stdin, grace, log, offset, start)
    finally:
        if noted is not None:
            with contextlib.suppress(OSError):
                os.unlink(noted)


async def _finish(
    proc: asyncio.subprocess.Process,
    argv: list[str],
    timeout: float,
    stdin: str | None,
    grace: float,
    log: str | None,
    offset: int,
    start: float,
) -> Completed:
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
    if log is not None:
        out = _tail(log, offset)
    text = out.decode(errors="replace")[-4000:]
    return Completed(rc if rc is not None and rc >= 0 else None, text, time.monotonic() - start)


def _tail(path: str, offset: int, limit: int = 16000) -> bytes:
    """The last `limit` bytes appended to `path` after `offset`."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(offset, end - limit))
            return f.read(limit)
    except OSError:
        return b""


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# ----- operations a dead agent left running -----


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22): with the pid,
    it names one process, whatever pids the kernel reuses."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _note(track: str, pid: int, argv: list[str]) -> str | None:
    started = _start_time(pid)
    if started is None:
        return None
    path = os.path.join(track, str(pid))
    try:
        os.makedirs(track, exist_ok=True)
        with open(path, "w") as f:
            f.write(f"{started}\n{' '.join(argv)[:500]}\n")
    except OSError:
        return None
    return path


def end_leftovers(track: str) -> list[str]:
    """Kill the process groups of the commands a previous process left noted in `track` (it died
    while they ran) and return what they were. An agent does this before it probes: an
    operation of its dead predecessor (a slow stop) ending later would change what runs under the
    new agent's feet, after its probe had reported otherwise (the simulation's seed 81029)."""
    ended: list[str] = []
    try:
        names = os.listdir(track)
    except OSError:
        return ended
    for name in names:
        path = os.path.join(track, name)
        try:
            with open(path) as f:
                started, _, what = f.read().partition("\n")
            pid = int(name)
        except (OSError, ValueError):
            continue
        if _start_time(pid) == started.strip():  # the same process, not a reused pid
            _killpg(pid, signal.SIGKILL)
            ended.append(what.strip())
        with contextlib.suppress(OSError):
            os.unlink(path)
    return ended
