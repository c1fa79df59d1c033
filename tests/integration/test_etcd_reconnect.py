"""The etcd client finds its member again as soon as the network comes back.

gRPC waits longer and longer between reconnects to an address that does not answer (up to
120 s) and shares that connection between every channel to the address, so without
hakeeper's channel options a client cut off for 20 s stayed blind for seconds after the heal
(23 s after a 30 s cut, measured). A member in a namespace of its own, its client port cut with
nftables for 20 s, then opened: the first answer must come within 2 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import needs_binary, needs_root

NS = "hkrc-etcd"
PORT = 23791
SRC = str(Path(__file__).resolve().parents[2] / "src")

CLIENT = f"""
import asyncio, os, sys, time
from hakeeper.coord.etcd import EtcdStore

async def main() -> None:
    store = EtcdStore(["127.0.0.1:{PORT}"], timeout=0.5)
    started = time.monotonic()
    while True:  # the member is starting
        try:
            await store.get("x")
            break
        except Exception:
            if time.monotonic() - started > 30:
                raise
            await asyncio.sleep(0.2)
    print("ready", flush=True)
    # The port is cut now: keep asking, as an agent does, until the harness says it is open.
    while not os.path.exists(sys.argv[1]):
        try:
            await store.get("x")
        except Exception:
            await asyncio.sleep(0.1)
    opened = time.monotonic()
    while True:
        try:
            await store.get("x")
            break
        except Exception:
            await asyncio.sleep(0.05)
    print(f"answer {{time.monotonic() - opened:.2f}}", flush=True)

asyncio.run(main())
"""


def _netns(*argv: str, check: bool = True, text_in: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", NS, *argv], input=text_in, capture_output=True, text=True,
                          check=check)


@pytest.fixture
def member(tmp_path: Path) -> Iterator[None]:
    needs_root()
    needs_binary("etcd", "etcd-server")
    needs_binary("nft", "nftables")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    etcd = None
    try:
        _netns("ip", "link", "set", "lo", "up")
        etcd = subprocess.Popen(
            ["ip", "netns", "exec", NS, "etcd", "--data-dir", str(tmp_path / "data"),
             "--listen-client-urls", f"http://127.0.0.1:{PORT}", "--advertise-client-urls", f"http://127.0.0.1:{PORT}",
             "--listen-peer-urls", f"http://127.0.0.1:{PORT + 10}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield
    finally:
        if etcd is not None:
            etcd.kill()
            etcd.wait(10)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_the_client_reconnects_within_two_seconds_of_a_long_cut(member: None, tmp_path: Path) -> None:
    opened = tmp_path / "open"
    client = subprocess.Popen(
        ["ip", "netns", "exec", NS, sys.executable, "-c", CLIENT, str(opened)], stdout=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": SRC},
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "ready"
        _netns("nft", "-f", "-", text_in="table inet hkrc {\n chain c {\n  type filter hook input priority 0;\n"
               f"  tcp dport {PORT} drop;\n }}\n}}\n")
        time.sleep(20)
        _netns("nft", "delete", "table", "inet", "hkrc")
        opened.touch()
        line = client.stdout.readline().split()
        assert line[:1] == ["answer"], line
        took = float(line[1])
        print(f"first answer {took:.2f}s after a 20 s cut")
        assert took < 2.0
    finally:
        client.kill()
        client.wait(10)
