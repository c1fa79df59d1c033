"""An operation outlives its agent (SIGKILLed while it ran); the next agent ends it before it
probes (resources/runner.py: run's `track`, end_leftovers). Real processes throughout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hakeeper.resources import runner

CHILD = """
import asyncio, sys
from hakeeper.resources import runner
asyncio.run(runner.run(["sleep", "60"], 120, track=sys.argv[1]))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_what_a_killed_agent_left_running_is_ended_by_the_next(tmp_path: Path) -> None:
    track = str(tmp_path / "ops")
    agent = subprocess.Popen([sys.executable, "-c", CHILD, track])
    try:
        deadline = time.monotonic() + 20
        while not (os.path.isdir(track) and os.listdir(track)):
            assert time.monotonic() < deadline, "the operation was never noted"
            time.sleep(0.05)
        op_pid = int(os.listdir(track)[0])
        agent.send_signal(signal.SIGKILL)  # the agent dies; its operation runs on
        agent.wait()
        assert _alive(op_pid)
        assert runner.end_leftovers(track) == ["sleep 60"]
        deadline = time.monotonic() + 5
        while _alive(op_pid):
            assert time.monotonic() < deadline, "the leftover operation still runs"
            time.sleep(0.05)
        assert os.listdir(track) == []
    finally:
        agent.kill()
        for name in os.listdir(track) if os.path.isdir(track) else []:
            with contextlib.suppress(OSError):
                os.killpg(int(name), signal.SIGKILL)


def test_a_note_of_a_finished_operation_kills_nothing(tmp_path: Path) -> None:
    """A note whose process is gone (or whose pid now names another process: the start time
    differs) is dropped, and nothing is killed."""
    track = tmp_path / "ops"
    track.mkdir()
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (track / str(bystander.pid)).write_text("1\nsleep 30\n")  # another start time
        (track / "999999999").write_text("5\nold\n")
        assert runner.end_leftovers(str(track)) == []
        assert bystander.poll() is None and list(track.iterdir()) == []
    finally:
        bystander.kill()
        bystander.wait()


def test_a_finished_operation_leaves_no_note(tmp_path: Path) -> None:
    track = str(tmp_path / "ops")
    done = asyncio.run(runner.run(["sleep", "0.3"], 10, track=track))  # long enough to be noted
    assert done.rc == 0 and os.path.isdir(track) and os.listdir(track) == []
