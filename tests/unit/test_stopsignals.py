"""Programs that pace threads stop on SIGTERM whenever it lands (stopsignals.py says why a handler
setting an Event does not: it can wait for ever on a lock its own thread holds)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC}

# A loop that only ever polls for the signal, beside a thread: where an Event-based stop hangs
# about every other time.
BUSY_LOOP = """
import threading, time
from hakeeper import stopsignals
stopsignals.block()
threading.Thread(target=lambda: time.sleep(60), daemon=True).start()
print("ready", flush=True)
while not stopsignals.wait(0):
    pass
"""


def stopped_within(p: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        p.wait(seconds)
        return True
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return False


def test_a_busy_loop_stops_on_every_sigterm() -> None:
    hung = 0
    for _ in range(30):
        p = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdout=subprocess.PIPE, env=ENV)
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        time.sleep(random.uniform(0, 0.05))
        p.send_signal(random.choice([signal.SIGTERM, signal.SIGINT]))
        hung += not stopped_within(p, 5)
    assert hung == 0


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"node=here\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_probe_running_behind_stops_on_sigterm_and_reports(server: int) -> None:
    # --interval 0: the probe is always behind its pace, the case that hung it on a loaded machine.
    argv = [sys.executable, "-m", "hakeeper.openstack.probe", "--url", f"http://127.0.0.1:{server}/",
            "--interval", "0", "--timeout", "1"]
    for _ in range(10):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, env=ENV)
        try:
            time.sleep(random.uniform(0.3, 0.5))
            p.terminate()
            out, _ = p.communicate(timeout=10)
        finally:
            if p.poll() is None:  # it hung: leave nothing behind
                p.kill()
                p.communicate()
        assert p.returncode == 0
        lines = [json.loads(line) for line in out.decode().splitlines()]
        # Every request it sent is reported (some may fail: nothing throttles a probe at interval 0).
        assert any(r["ok"] and r["node"] == "here" for r in lines)
