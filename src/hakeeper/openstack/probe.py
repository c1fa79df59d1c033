"""A client that sends a request through a VIP every few milliseconds and reports each as a JSON line
(in the order they finish; `t` orders them by when they were sent).

    python3 -m hakeeper.openstack.probe --url http://10.94.0.100:8774/ --interval 0.02 --timeout 0.3

Each line: {"t": send time (CLOCK_MONOTONIC, comparable across processes), "ok": bool,
"node": the backend that answered, "ms": latency, "err": why it failed}. A new TCP connection per
request, as an API client without keep-alive makes: every failover effect is visible.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from urllib.parse import urlparse

from hakeeper import stopsignals


def request(host: str, port: int, path: str, timeout: float) -> tuple[bool, str | None, str | None]:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError as exc:
        return False, None, type(exc).__name__ if not str(exc) else str(exc)
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        return False, None, f"status {status[0].decode() if status else '?'}"
    node = next((w.split("=", 1)[1] for w in body.decode(errors="replace").split() if w.startswith("node=")), None)
    return True, node, None


def _burst(host: str, port: int, path: str, timeout: float, n: int) -> int:
    lock = threading.Lock()

    def one() -> None:
        t = time.monotonic()
        ok, node, err = request(host, port, path, timeout)
        line = json.dumps({"t": round(t, 4), "ok": ok, "node": node, "ms": round((time.monotonic() - t) * 1000, 1),
                           "err": err})
        with lock:
            print(line, flush=True)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hakeeper.openstack.probe")
    ap.add_argument("--url", required=True)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=0.3)
    ap.add_argument("--count", type=int, default=0, help="stop after this many requests (0: until killed)")
    ap.add_argument("--max-inflight", type=int, default=64, help="requests waiting for an answer at most")
    ap.add_argument("--concurrent", type=int, default=0,
                    help="instead: send this many requests at once, each on its own connection, and exit")
    args = ap.parse_args(argv)
    url = urlparse(args.url)
    host, port = url.hostname or "", url.port or 80
    path = url.path + (f"?{url.query}" if url.query else "") or "/"
    if args.concurrent:
        return _burst(host, port, path, args.timeout, args.concurrent)
    stopsignals.block()  # before any thread starts (see stopsignals.py: why not an Event)
    # Requests leave at a steady pace whether or not earlier ones have answered (each in a thread
    # of its own), as from many clients: a stalled request does not slow the stream, so lost
    # requests count the outage at the pace's resolution.
    lock = threading.Lock()
    inflight = threading.BoundedSemaphore(args.max_inflight)

    def one(t: float) -> None:
        try:
            ok, node, err = request(host, port, path, args.timeout)
            line = json.dumps({"t": round(t, 4), "ok": ok, "node": node,
                               "ms": round((time.monotonic() - t) * 1000, 1), "err": err})
            with lock:
                print(line, flush=True)
        finally:
            inflight.release()

    n = 0
    next_at = time.monotonic()
    threads = []
    stopped = False
    while not stopped and (args.count == 0 or n < args.count):
        if inflight.acquire(timeout=args.timeout):
            t = time.monotonic()
            th = threading.Thread(target=one, args=(t,), daemon=True)
            th.start()
            threads.append(th)
            n += 1
        next_at = max(next_at + args.interval, time.monotonic())
        stopped = stopsignals.wait(next_at - time.monotonic())
        threads = [th for th in threads if th.is_alive()]
    for th in threads:
        th.join(args.timeout + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
