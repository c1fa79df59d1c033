"""The benchmark's child-process measurement: its own peak memory, its output, and the timeout."""

from __future__ import annotations

import sys

from hakeeper.conformance.crmsim import run_measured

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


def test_a_child_past_its_timeout_is_killed() -> None:
    run = run_measured([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert run.timed_out
    assert run.returncode != 0
    assert run.seconds < 30
