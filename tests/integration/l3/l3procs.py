"""Helpers shared by the l3 namespace tests: the embedded store, and stopping what a test started."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from hakeeper.l3 import netns

SRC = Path(__file__).resolve().parents[3] / "src"


def store_server(socket_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket",
                             str(socket_path)], env=dict(os.environ, PYTHONPATH=str(SRC)), stderr=subprocess.DEVNULL)


def stop(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM to each process still running, SIGKILL to those not gone after `timeout` s (a
    loaded machine makes a clean stop slow; a test must still clean up)."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.terminate()
    for p in running:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def remove_namespaces(prefixes: Iterable[str]) -> None:
    for prefix in prefixes:
        for ns in netns.names(prefix):
            netns.delete(ns)
