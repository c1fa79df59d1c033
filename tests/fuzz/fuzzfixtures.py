"""Fixtures of the fuzz suite: hakeeper preloaded (forked runs start warm), a fake secret, a store.

A module of its own, imported by the test module, not a conftest.py: a second module named
`conftest` would shadow tests/conftest.py, whose helpers the other tests import by that name."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fuzzrun
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="session", autouse=True)
def preloaded() -> None:
    fuzzrun.preload()


@pytest.fixture(scope="session")
def secret(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A shadow-like file of our own (never the real /etc/shadow) and the marker that must not leak."""
    marker = f"SECRET-MARKER-{secrets.token_hex(8)}"
    path = tmp_path_factory.mktemp("secret") / "shadow"
    path.write_text(f"root:{marker}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    path.chmod(0o600)
    return str(path), marker


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded store (`hakeeper store serve`) for `config apply --dry-run`."""
    sock = tmp_path_factory.mktemp("store") / "store.sock"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-m", "hakeeper", "store", "serve", "--memory", "--socket", str(sock)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the embedded store did not start")
            time.sleep(0.05)
        fuzzrun.STORE_SOCKET = str(sock)
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
