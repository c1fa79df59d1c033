"""haproxy as a managed resource, on loopback: check before use, atomic swap, reload in place."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import needs_binary
from hakeeper.openstack.haproxy import Haproxy, HaproxyConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(work: Path, port: int, extra: str = "") -> str:
    return (f"global\n    stats socket {work}/stats.sock mode 600 level admin expose-fd listeners\n"
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
            f"frontend f\n    bind 127.0.0.1:{port}\n    monitor-uri /alive\n{extra}")


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Haproxy]:
    h = Haproxy(tmp_path, binary=needs_binary("haproxy"))
    try:
        yield h
    finally:
        h.stop()


def alive(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/alive", timeout=2) as r:
        return bool(r.status == 200)


def test_a_bad_configuration_never_replaces_a_good_one(haproxy: Haproxy, tmp_path: Path) -> None:
    port = free_port()
    good = config(tmp_path, port)
    assert haproxy.apply(good) is True
    assert alive(port)
    workers = haproxy.workers()
    with pytest.raises(HaproxyConfigError) as info:
        haproxy.apply(good + "    no-such-keyword here\n")
    assert "no-such-keyword" in info.value.messages
    assert haproxy.config.read_text() == good
    assert haproxy.workers() == workers and alive(port)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".haproxy.cfg")] == []


def test_reload_replaces_the_worker_and_keeps_serving(haproxy: Haproxy, tmp_path: Path) -> None:
    port = free_port()
    haproxy.apply(config(tmp_path, port))
    first = haproxy.workers()
    assert haproxy.apply(config(tmp_path, port)) is False  # unchanged: no reload
    assert haproxy.workers() == first
    assert haproxy.apply(config(tmp_path, port, "    # changed\n")) is True
    assert haproxy.workers() != first and alive(port)
    master = haproxy.pid
    assert master is not None and haproxy.procs()[0].reloads >= 1


def test_kill_takes_master_and_workers(haproxy: Haproxy, tmp_path: Path) -> None:
    port = free_port()
    haproxy.apply(config(tmp_path, port))
    haproxy.kill()
    assert not haproxy.running()
    with pytest.raises(OSError):
        alive(port)
