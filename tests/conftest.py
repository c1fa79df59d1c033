"""Shared test conventions.

Tests that need root or a Debian package use `needs_root()` / `needs_binary(name)` and skip
cleanly where those are missing. In CI (HAKEEPER_STRICT=1, set by .ci/run) nothing may skip:
a skip becomes a failure, so a missing install step cannot hide behind a green run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import hypothesis  # noqa: F401  (see below)
import pytest

# Import hypothesis now, while the run has one thread. Its pytest plugin imports it lazily, at the
# end of a run, through pytest's assertion rewriting (ast.parse); CPython 3.11.7's AST recursion
# counter is not thread-safe, so that parse can fail with "AST constructor recursion depth
# mismatch" when threads left by an integration test (subprocess waiters) are still running.

STRICT = os.environ.get("HAKEEPER_STRICT") == "1"


def _skip_or_fail(reason: str) -> None:
    if STRICT:
        pytest.fail(f"HAKEEPER_STRICT=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def needs_root() -> None:
    if os.geteuid() != 0:
        _skip_or_fail("this test needs root (network namespaces, raw sockets)")


def needs_binary(name: str, package: str | None = None) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}") if os.path.exists(p)), None
    )
    if path is None:
        _skip_or_fail(f"this test needs `{name}` (Debian package {package or name})")
    assert path is not None
    return path


def needs_ocf_agent(agent: str, package: str) -> None:
    """`agent` is PROVIDER/TYPE under /usr/lib/ocf/resource.d."""
    if not os.access(f"/usr/lib/ocf/resource.d/{agent}", os.X_OK):
        _skip_or_fail(f"this test needs the OCF agent {agent} (Debian package {package})")


@pytest.fixture
def root() -> None:
    needs_root()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under HAKEEPER_STRICT=1 any skip, wherever it comes from, fails the test."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under HAKEEPER_STRICT=1: {report.longrepr}"


def until(cond: Callable[[], Any], timeout: float = 30, what: str = "", every: float = 0.1) -> Any:
    """Poll `cond` every `every` seconds until it returns something true (returned), or fail the
    test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out ({timeout:g}s) waiting for {what}")
        time.sleep(every)
