"""Fixtures for the OpenStack integration tests: hosts in namespaces `hko-*` on 10.93.0.0/16."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import needs_binary, needs_root

PREFIX = "hko"
SRC = str(Path(__file__).resolve().parents[3] / "src")

PROFILE = """\
name: hko
networks: {lab: 10.93.1.0/24}
controllers:
  - {name: c1, address: 10.93.1.11}
  - {name: c2, address: 10.93.1.12}
  - {name: c3, address: 10.93.1.13}
vips:
  nova-api: 10.93.1.100
  keystone-service-api: 10.93.1.100
  mysql-db: 10.93.1.101
services:
  mysql-db: {check: tcp}  # the stand-in answers TCP checks, not MySQL's handshake
vrrp: {version: 3, advert-int: 0.1, first-vrid: 93, check-interval: 1}
haproxy: {check-inter: 200ms}
"""


@pytest.fixture(scope="session", autouse=True)
def sweep_leftovers() -> Iterator[None]:
    """Whatever a crashed earlier run left with our prefix goes first, and again at the end."""
    try:
        from hakeeper.openstack.lab import sweep
    except ImportError:
        yield
        return
    import os

    if os.geteuid() != 0:
        yield
        return
    from hakeeper.openstack.lab import exclusive

    # Another session running these tests (or a crashed one) must not share the namespaces.
    with exclusive(PREFIX, wait=900):
        sweep(PREFIX)
        yield
        sweep(PREFIX)


@dataclass
class Bed:
    stack: Any
    client: Any
    vip: Any

    def probe(self, *args: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "hakeeper.openstack.probe", *args]
        return self.client.start(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 env={"PYTHONPATH": SRC, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def url(self, path: str = "/", port: int = 8774, vip: str | None = None) -> str:
        return f"http://{vip or self.vip}:{port}{path}"


def read_results(p: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    out, _ = p.communicate(timeout=60)
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def stop_probe(p: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    p.terminate()
    return read_results(p)


def speakers() -> list[str]:
    """keepalived, and hakeeper's own VRRP speaker when this build has it (same tests for both)."""
    from hakeeper.openstack.stack import hakeeper_speaker_available

    return ["keepalived", "hakeeper"] if hakeeper_speaker_available() else ["keepalived"]


def _wait_single_holder(stack: Any, vip: Any, steady: float = 1.0, timeout: float = 30.0) -> None:
    """Until one node has held `vip` alone for `steady` seconds (ten advert intervals)."""
    deadline = time.monotonic() + timeout
    held, since = None, time.monotonic()
    while time.monotonic() < deadline:
        holders = stack.holders(vip)
        current = holders[0] if len(holders) == 1 else None
        if current != held:
            held, since = current, time.monotonic()
        elif held is not None and time.monotonic() - since >= steady:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{vip} has no settled holder after {timeout}s (now {stack.holders(vip)})")


@pytest.fixture(name="bed")
def bed_fixture(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bed]:
    needs_root()
    needs_binary("haproxy")
    needs_binary("keepalived")
    needs_binary("curl")
    from hakeeper.openstack.lab import Lab
    from hakeeper.openstack.profile import parse_profile
    from hakeeper.openstack.stack import Stack

    resolved = parse_profile(PROFILE)
    with Lab(PREFIX, "10.93.1.0/24", tmp_path / "lab") as lab:
        stack = Stack(lab, resolved, speaker=getattr(request, "param", "keepalived"))
        try:
            stack.start()
            stack.wait_speakers()
            client = lab.add_host("client", "10.93.1.50")
            vip = resolved.vip_addresses()[0]
            # A test starts on a settled cluster: each VIP held by one node for a while, and the
            # haproxies' stick-table sessions up (CI once saw the MySQL writer fail back because
            # the first requests went through before either had settled).
            for address in resolved.vip_addresses():
                _wait_single_holder(stack, address)
            stack.wait_peers()
            yield Bed(stack, client, vip)
        finally:
            stack.stop()
