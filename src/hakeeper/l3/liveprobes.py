"""What `hakeeper demo routers` watches while a network node dies, each on its own thread: pings
(the `ping` command in the client's namespace), a long-lived TCP session that exchanges a line
every 0.2 s as a person typing into SSH would, and the `list-hosting` rows read from the store.
Each records what it saw with monotonic times; the figures come from those records
(`l3/demofigures.py`, pure)."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable

from hakeeper.l3 import netns
from hakeeper.l3.hosting import Row
from hakeeper.netlab import Host

_SEQ = re.compile(rb"icmp_seq=(\d+)")
HostStates = dict[str, tuple[bool, str]]  # host -> (alive, ha_state), as list-hosting shows


class Pinger:
    """`ping -i INTERVAL DST` in `host`; the time each reply arrived, by sequence number."""

    def __init__(self, host: Host, dst: str, interval: float = 0.2) -> None:
        self.host, self.dst, self.interval = host, dst, interval
        self.replies: dict[int, float] = {}
        self.last_seq = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self._read, name="demo-ping", daemon=True)

    def start(self) -> None:
        # -W 1: a reply later than a second is a lost packet, as a person watching ping sees it.
        self.proc = self.host.spawn(["ping", "-n", "-W", "1", "-i", str(self.interval), self.dst],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            found = _SEQ.search(line)
            if found:
                seq = int(found.group(1))
                self.replies.setdefault(seq, time.monotonic())
                self.last_seq = max(self.last_seq, seq)

    def first_reply_after(self, t: float) -> float | None:
        return min((at for at in list(self.replies.values()) if at > t), default=None)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self.thread.join(timeout=5)


class TcpSession:
    """One TCP connection from `host` to an echo server at dst:port, opened inside the host's
    namespace; a numbered line every `every` s, and the time each echo came back."""

    def __init__(self, host: Host, dst: str, port: int, every: float = 0.2) -> None:
        self.host, self.dst, self.port, self.every = host, dst, port, every
        self.sent: list[float] = []  # when line n was sent, at index n
        self.echoes: list[float] = []  # when echo n came back, at index n
        self.quiet = threading.Event()  # set: send nothing more, take the echoes still due
        self.error: str | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-tcp", daemon=True)
        self.sock: socket.socket | None = None

    def start(self, timeout: float = 10) -> None:
        with netns.inside(self.host.ns):  # the socket stays in the client's namespace
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect((self.dst, self.port))
        sock.setblocking(False)
        self.sock = sock
        self.thread.start()

    def _run(self) -> None:
        assert self.sock is not None
        buffered = b""
        next_send = time.monotonic()
        try:
            while not self.done.is_set():
                now = time.monotonic()
                if now >= next_send and not self.quiet.is_set():
                    self.sock.sendall(b"%d\n" % len(self.sent))  # a few bytes: the send buffer takes them
                    self.sent.append(now)
                    next_send = max(next_send + self.every, now)  # no burst after a stall
                elif now >= next_send:
                    next_send = now + self.every
                readable, _, _ = select.select([self.sock], [], [], max(0.0, next_send - time.monotonic()))
                if not readable:
                    continue
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the session")
                buffered += data
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    if int(line) != len(self.echoes):
                        raise ConnectionError(f"echo {line!r} out of order (expected {len(self.echoes)})")
                    self.echoes.append(time.monotonic())
        except (OSError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def first_echo_after(self, t: float) -> float | None:
        return next((at for at in list(self.echoes) if at > t), None)

    def all_echoed(self) -> bool:
        return self.error is None and len(self.echoes) == len(self.sent)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        if self.sock is not None:
            self.sock.close()


class HostingWatch:
    """The `list-hosting` rows every `every` s: (time the read was asked, host -> (alive, state));
    a read that failed (the store busy) is left out."""

    def __init__(self, read: Callable[[], list[Row]], every: float = 0.1) -> None:
        self.read, self.every = read, every
        self.samples: list[tuple[float, HostStates]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-hosting", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            asked = time.monotonic()  # the answer reflects the store at about this moment
            with contextlib.suppress(Exception):  # a failed read is a missing sample, not the end
                self.samples.append((asked, {r.host: (r.alive, r.ha_state) for r in self.read()}))
            self.done.wait(max(0.0, asked + self.every - time.monotonic()))

    def latest(self) -> HostStates:
        return self.samples[-1][1] if self.samples else {}

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)
