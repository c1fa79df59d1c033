"""Starting the lab's daemons inside namespaces, and waiting until they answer.

Every daemon is a child of the lab's process (so it is reaped at once when killed: no zombie that a
probe would take for alive), its output goes to one log file per daemon, and a readiness wait names
the daemon and the tail of its log when it gives up.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hakeeper.netlab import Host

VENVS = Path(os.environ.get("HAKEEPER_VENVS", "/opt/hakeeper/venvs"))
VENV_NAMES = ("nova", "glance", "neutron")
DRIVER_SOURCE = Path(__file__).with_name("nova_driver.py")

# Runs a WSGI app under gunicorn (one gthread worker). Nova and Neutron parse sys.argv when they are
# imported, and gunicorn's own arguments make them fail: the app is imported with argv replaced by
# the program name and the app's own arguments. HAKEEPER_PRELOAD names modules to import first.
# limit_request_line 0 (no limit, as behind Apache or uwsgi): Nova asks Neutron for the ports of up
# to 150 servers in one query string (~7 KB), over gunicorn's 4094-byte default, so listing ~90 or
# more servers failed with HTTP 500.
GUNICORN_LAUNCHER = """
import importlib, os, sys
from gunicorn.app.base import BaseApplication
target, bind, prog, *app_args = sys.argv[1:]
class App(BaseApplication):
    def load_config(self):
        for key, value in {"bind": bind, "workers": 1, "worker_class": "gthread", "threads": 8,
                           "timeout": 120, "graceful_timeout": 2, "control_socket_disable": True,
                           "limit_request_line": 0}.items():
            if key in self.cfg.settings:  # older gunicorns have no control socket (shared by all)
                self.cfg.set(key, value)
    def load(self):
        sys.argv = [prog, *app_args]
        preload = [m for m in os.environ.get("HAKEEPER_PRELOAD", "").split(",") if m]
        for module in preload:
            importlib.import_module(module)
        if preload:  # models imported: set up their relationships now (before the first query)
            from sqlalchemy import orm
            orm.configure_mappers()
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
App().run()
"""


class LabError(RuntimeError):
    """The lab could not be built or a daemon did not come up (the message names it and its log)."""


def venv_bin(venv: str, program: str) -> str:
    return str(VENVS / venv / "bin" / program)


def missing_install() -> str | None:
    """Why the lab cannot run here (None when scripts/setup-nova has been run)."""
    for name in VENV_NAMES:
        if not (VENVS / name / ".hakeeper-stamp").exists():
            return f"the {name} venv is missing under {VENVS} (run scripts/setup-nova)"
    driver = list((VENVS / "nova" / "lib").glob("python3*/site-packages/nova/virt/hakeeper_fake.py"))
    if not driver:
        return "the lab's fake driver is not installed in the nova venv (run scripts/setup-nova)"
    if driver[0].read_bytes() != DRIVER_SOURCE.read_bytes():
        return f"{driver[0]} differs from {DRIVER_SOURCE} (run scripts/setup-nova)"
    return None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Daemon:
    """One process started in a namespace, with its log."""

    def __init__(self, name: str, host: Host, argv: Sequence[str], log: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.host = host
        self.log = log
        full_env = {**os.environ, **(env or {})}
        with log.open("ab") as out:
            self.proc = host.spawn(list(argv), env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the daemon and its process group (gunicorn workers), and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
        self.proc.wait(timeout=10)

    def failure(self, what: str) -> LabError:
        state = "running" if self.alive() else f"exited with {self.proc.returncode}"
        return LabError(f"{self.name} ({state}): {what}; log {self.log}:\n{log_tail(self.log)}")


def run_checked(host: Host, argv: Sequence[str], log: Path, timeout: float = 900,
                env: Mapping[str, str] | None = None) -> None:
    """Run a one-shot command (a db sync) in `host`, appending its output to `log`."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(host.cmd(list(argv)), stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                              env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        raise LabError(f"{argv[0]} failed with {proc.returncode}; log {log}:\n{log_tail(log)}")


def wait_until(check: Callable[[], bool], timeout: float, daemon: Daemon | None, what: str,
               interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon is not None and not daemon.alive():
            raise daemon.failure(f"died while waiting for: {what}")
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(interval)
    if daemon is not None:
        raise daemon.failure(f"timed out after {timeout:.0f} s waiting for: {what}")
    raise LabError(f"timed out after {timeout:.0f} s waiting for: {what}")


def http_answers(url: str) -> bool:
    """True when `url` answers with anything below 500 (401/404 mean the server is up)."""
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return int(resp.status) < 500
    except urllib.error.HTTPError as err:
        return err.code < 500


def http_json(method: str, url: str, body: object | None = None, headers: Mapping[str, str] | None = None,
              data: bytes | None = None, timeout: float = 30) -> object:
    """One API call; raises LabError with the service's answer on an HTTP error."""
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=payload, method=method)
    req.add_header("Content-Type", "application/octet-stream" if data is not None else "application/json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        raise LabError(f"{method} {url}: HTTP {err.code}: {err.read()[:500]!r}") from err
    return json.loads(raw) if raw else None
