"""A stand-in OpenStack API for tests and the demo: a real HTTP server that names its node.

    python3 -m hakeeper.openstack.standin --node c1 --listen 10.94.0.11:8774:nova-api [...]

Every GET answers 200 with `node=<node> service=<service>`; `GET /slow?ms=N` answers after N ms
(to hold a connection open across a haproxy reload). Several listeners run in one process.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from hakeeper import stopsignals


def _handler(node: str, service: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "hakeeper-standin/1"

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/slow":
                ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
                time.sleep(ms / 1000)
            body = f"node={node} service={service}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hakeeper.openstack.standin")
    ap.add_argument("--node", required=True)
    ap.add_argument("--listen", action="append", required=True, metavar="ADDRESS:PORT:SERVICE")
    args = ap.parse_args(argv)
    stopsignals.block()  # before the server threads start (see stopsignals.py: why not an Event)
    servers = []
    for spec in args.listen:
        address, port, service = spec.split(":", 2)
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer.request_queue_size = 128
        srv = ThreadingHTTPServer((address, int(port)), _handler(args.node, service))
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"standin {args.node}: serving {', '.join(args.listen)}", flush=True)
    stopsignals.wait()
    for srv in servers:
        srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
