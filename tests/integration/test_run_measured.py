"""The benchmark's child-process measurement: its own peak memory, its output, and the timeout."""

from __future__ import annotations

import sys

from hakeeper.conformance.measured import run_measured

ALLOCATE = "import sys; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); print('done')"


def test_peak_memory_is_the_childs_own() -> None:
    # The big one first: a measure of all children (RUSAGE_CHILDREN) would give the small one its peak.
    big = run_measured([sys.executable, "-c", ALLOCATE], timeout=60)
    small = run_measured([sys.executable, "-c", "print('done')"], timeout=60)
    assert (small.returncode, small.stdout.strip()) == (0, b"done")
    assert (big.returncode, big.stdout.strip()) == (0, b"done")
    assert big.max_rss_kib > 300 * 1024  # touched 300 MiB
    assert small.max_rss_kib < 200 * 1024  # not the larger sibling's peak
    assert not big.timed_out


def test_peak_memory_leaves_out_the_parents_pages() -> None:
    # Linux carries a forked child's peak across exec: a command started straight from this process
    # while it holds 300 MiB would report at least that much.
    held = bytearray(300 * 2**20)
    held[::4096] = b"x" * len(held[::4096])
    small = run_measured([sys.executable, "-c", "print('done')"], timeout=60)
    assert small.stdout.strip() == b"done"
    assert 0 < small.max_rss_kib < 100 * 1024
    del held


def test_the_commands_own_exit_status_and_signal_come_through() -> None:
    assert run_measured([sys.executable, "-c", "raise SystemExit(7)"], timeout=60).returncode == 7
    killed = run_measured([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
                          timeout=60)
    assert killed.returncode == -15
    missing = run_measured(["/nonexistent/hakeeper-no-such-command"], timeout=60)
    assert missing.returncode == 127
    assert b"cannot run" in missing.stderr


def test_a_child_past_its_timeout_is_killed() -> None:
    run = run_measured([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert run.timed_out
    assert run.returncode == -9  # the command's own death, passed on by the launcher
    assert run.max_rss_kib > 0  # what it reached before it was stopped
    assert run.seconds < 30
