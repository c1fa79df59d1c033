"""Run a command to its end and measure it: wall time, output, and its own peak memory.

Linux keeps a process's peak resident set (ru_maxrss) across fork and exec, and a child forked from
a big process starts with the parent's pages counted: a crm_simulate started from a 230 MB pytest
reported 230 MB however little it used. So the command is not forked from this process but from a
small launcher (Python without site, about 10 MB): the launcher forks and execs it, reaps it with
wait4, and writes the command's own ru_maxrss to a pipe. The launcher then exits as the command did
(same status, or killed by the same signal), so callers see the command's own result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

# argv: write-fd, command... The first line written is the command's pid (so a timeout kills the
# command itself, and the launcher still reports what it reached), the second its peak in KiB.
_LAUNCHER = """
import os, signal, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as error:
        os.write(2, f"cannot run {sys.argv[2]}: {error.strerror}\\n".encode())
        os._exit(127)
os.write(report, f"{pid}\\n".encode())
_, status, usage = os.wait4(pid, 0)
os.write(report, f"{usage.ru_maxrss}\\n".encode())
os.close(report)
if os.WIFSIGNALED(status):
    if os.WTERMSIG(status) not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    max_rss_kib: int  # the command's own peak resident set size (0 if it could not be read)
    timed_out: bool


def run_measured(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None) -> Measured:
    """Run `cmd` to its end (killed after `timeout` s), with its wall time and its own peak memory."""
    report_read, report_write = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(report_write), *cmd],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, pass_fds=(report_write,), start_new_session=True)
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    buffers: dict[str, bytes] = {}
    command_pid = threading.Event()
    report_lines: list[int] = []

    def drain(name: str, stream: IO[bytes]) -> None:
        buffers[name] = stream.read()

    def read_report() -> None:
        with os.fdopen(report_read, "rb") as report:
            for line in report:
                report_lines.append(int(line))
                command_pid.set()

    assert proc.stdout is not None and proc.stderr is not None
    readers = [threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
               threading.Thread(target=drain, args=("err", proc.stderr), daemon=True),
               threading.Thread(target=read_report, daemon=True)]
    for reader in readers:
        reader.start()
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        try:
            if command_pid.wait(1.0):
                os.kill(report_lines[0], signal.SIGKILL)  # the launcher reaps it and reports its peak
            else:
                os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    start = time.perf_counter()
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    seconds = time.perf_counter() - start
    for reader in readers:
        reader.join()
    proc.stdout.close()
    proc.stderr.close()
    max_rss_kib = report_lines[1] if len(report_lines) > 1 else 0
    return Measured(proc.returncode, buffers.get("out", b""), buffers.get("err", b""), seconds,
                    max_rss_kib, expired.is_set())
