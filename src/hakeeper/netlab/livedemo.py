"""What every lab demo (`hakeeper demo galera|rabbitmq`) does around its scenario: refuse without
root or a program, time-stamp each line, print the cluster's state every few seconds while a step
runs, and always clean up (Ctrl-C and SIGTERM included, a second Ctrl-C ignored during the
cleanup), so a demo never leaves namespaces or processes behind."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

Say = Callable[[str], None]


class Closable(Protocol):
    def close(self) -> None: ...


class Outcome(Protocol):
    @property
    def ok(self) -> bool: ...

    def result_line(self) -> str: ...


@contextmanager
def ticker(say: Say, line: Callable[[], str], every: float) -> Iterator[None]:
    """Say `line()` every `every` seconds while the body runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            say("  " + line())

    thread = threading.Thread(target=run, name="demo-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def first_within(found: Callable[[], float | None], timeout: float, every: float = 0.05) -> float | None:
    """The first non-None answer of `found` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = found()
        if at is not None:
            return at
        time.sleep(every)
    return None


def seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f}"


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run_lab_demo(
    name: str, programs: list[str], body: Callable[[str, Say, list[Closable]], Outcome],
    *, workdir: str | None = None, say: Say = print,
) -> int:
    """Run `body(workdir, timed_say, labs)`; every lab it appends to `labs` is closed at the end,
    whatever happened. Exit status: 0 when the outcome is ok, 1 otherwise, 130 when interrupted."""
    if os.geteuid() != 0:
        say(f"hakeeper demo {name}: needs root (it builds network namespaces)")
        return 1
    # Daemons live in sbin, which a user's PATH may lack.
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [p for p in programs if shutil.which(p, path=path) is None and not os.path.exists(p)]
    if missing:
        say(f"hakeeper demo {name}: missing: {', '.join(missing)} (see scripts/setup)")
        return 1
    base = workdir or tempfile.mkdtemp(prefix=f"hakeeper-demo-{name}-")
    started = time.monotonic()

    def timed(text: str) -> None:
        say(f"[{time.monotonic() - started:6.1f}s] {text}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    labs: list[Closable] = []
    outcome: Outcome | None = None
    status = 1
    try:
        outcome = body(base, timed, labs)
        status = 0 if outcome.ok else 1
    except (KeyboardInterrupt, _Stop) as exc:
        timed(f"interrupted ({type(exc).__name__}): cleaning up")
        status = 130
    except Exception as exc:  # the demo must never leave namespaces behind
        timed(f"failed: {type(exc).__name__}: {exc}: cleaning up")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        if labs:
            timed("cleaning up: stopping every process, removing the namespaces")
        for lab in labs:
            lab.close()
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if outcome is not None:
        say(outcome.result_line())
    return status
