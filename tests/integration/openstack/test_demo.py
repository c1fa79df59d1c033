"""`hakeeper demo --no-live --quick` runs end to end, measures a failover and leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_binary, needs_root

SRC = str(Path(__file__).resolve().parents[3] / "src")


def test_demo_quick_measures_and_cleans_up() -> None:
    needs_root()
    for b in ("haproxy", "keepalived", "curl"):
        needs_binary(b)
    r = subprocess.run([sys.executable, "-m", "hakeeper", "demo", "--no-live", "--quick"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"^RESULT outage_ms=(\S+) lost=(\d+) rounds=1 leftovers=(\d+) speaker=\S+$", r.stdout, re.M)
    assert m, r.stdout[-3000:]
    outage, lost, left = float(m.group(1)), int(m.group(2)), int(m.group(3))
    # The holder is killed mid-traffic: something is lost, and the outage is measured, not assumed.
    assert 0 < outage < 20_000 and 0 < lost < 100 and left == 0
    assert "summary: outage" in r.stdout and "killing c" in r.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [ln for ln in namespaces.splitlines() if ln.startswith("hkd-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert " hkd-" not in links


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_demo_sweeps_leftovers_and_cleans_up_when_interrupted(tmp_path: Path, sig: signal.Signals) -> None:
    needs_root()
    for b in ("haproxy", "keepalived", "curl"):
        needs_binary(b)
    subprocess.run(["ip", "netns", "add", "hkd-stale"], check=True)  # as if an earlier run crashed
    work = tmp_path / "demo"
    p = subprocess.Popen([sys.executable, "-m", "hakeeper", "demo", "--no-live", "--workdir", str(work)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, start_new_session=True)
    try:
        assert p.stdout is not None
        seen = []
        for line in p.stdout:
            seen.append(line)
            if "round 1" in line:
                break
        # Ctrl-C reaches the whole foreground process group, as a terminal sends it.
        os.killpg(p.pid, sig)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    text = "".join(seen) + out
    assert "removed leftovers of an earlier run: hkd-stale" in text
    assert p.returncode == 130, text[-2000:]
    assert "interrupted" in text
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [ln for ln in namespaces.splitlines() if ln.startswith("hkd-")]
    # No daemon of the demo survives: they all ran with configuration files under the workdir.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(work) not in ps


def test_a_second_demo_does_not_sweep_a_running_one() -> None:
    needs_root()
    from hakeeper.openstack.lab import exclusive

    subprocess.run(["ip", "netns", "add", "hkd-alive"], check=True)
    try:
        with exclusive("hkd"):  # as a demo that is running now
            r = subprocess.run([sys.executable, "-m", "hakeeper", "demo", "--no-live", "--quick"],
                               capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC})
        assert r.returncode == 1 and "another demo is running" in r.stderr, r.stdout + r.stderr
        assert "hkd-alive" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", "hkd-alive"], check=False)
