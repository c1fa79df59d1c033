"""LSB exit codes → results, the service:/upstart: backend choice, unit and script names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.resources.lsb import action_result, bad_script_name, choose_backend, script_path, status_result
from hakeeper.resources.result import Status
from hakeeper.resources.runner import Completed
from hakeeper.resources.systemd import unit_exists, unit_name


@pytest.mark.parametrize(("rc", "status"), [
    (0, Status.SUCCESS),
    (1, Status.NOT_RUNNING),  # dead, pid file left: nothing runs
    (2, Status.NOT_RUNNING),  # dead, lock file left
    (3, Status.NOT_RUNNING),
    (4, Status.ERROR),  # unknown
    (150, Status.NOT_INSTALLED),
    (151, Status.ERROR),
    (5, Status.UNDEFINED),  # not an LSB status code
    (7, Status.UNDEFINED),
    (200, Status.UNDEFINED),
    (None, Status.UNDEFINED),  # killed by a signal
])
def test_status_codes(rc: int | None, status: Status) -> None:
    res = status_result(Completed(rc, "", 0.01))
    assert res.status is status and res.rc == rc


def test_status_without_output_says_what_the_code_means() -> None:
    assert status_result(Completed(1, "", 0.0)).output == "dead, its pid file remains"
    assert status_result(Completed(3, "stopped\n", 0.0)).output == "stopped\n"


@pytest.mark.parametrize(("rc", "status"), [
    (0, Status.SUCCESS), (1, Status.ERROR), (2, Status.ERROR), (3, Status.ERROR), (4, Status.ERROR),
    (5, Status.NOT_INSTALLED), (6, Status.NOT_CONFIGURED), (7, Status.NOT_RUNNING),
    (8, Status.UNDEFINED),  # OCF's "promoted" means nothing for an init script
    (9, Status.UNDEFINED), (255, Status.UNDEFINED), (None, Status.UNDEFINED),
])
def test_start_stop_codes(rc: int | None, status: Status) -> None:
    assert action_result(Completed(rc, "", 0.0)).status is status


def test_timeouts_are_timeouts() -> None:
    done = Completed(None, "timed out after 1s", 1.0, timed_out=True)
    assert status_result(done).status is Status.TIMEOUT
    assert action_result(done).status is Status.TIMEOUT


@given(systemd_up=st.booleans(), has_unit=st.booleans(), has_script=st.booleans())
def test_backend_choice(systemd_up: bool, has_unit: bool, has_script: bool) -> None:
    got = choose_backend(systemd_up=systemd_up, has_unit=has_unit, has_script=has_script)
    if systemd_up and has_unit:
        assert got == "systemd"  # systemd first where it manages the service, as Pacemaker does
    elif has_script:
        assert got == "lsb"
    else:
        assert got is None


@given(st.text(min_size=1, max_size=20))
def test_script_names_never_leave_the_directory(name: str) -> None:
    bad = bad_script_name(name)
    if not name.startswith("/"):
        assert (bad is not None) == ("/" in name or name in (".", "..") or "\0" in name)
    if bad is None:
        path = script_path(name, "/etc/init.d")
        # Inside the directory, or the very absolute path written (no `..`, nothing to normalise).
        assert os.path.dirname(path) == "/etc/init.d" or (path == name and os.path.normpath(path) == path)
        assert ".." not in path.split("/")


@pytest.mark.parametrize("name", ["/usr/lib/heartbeat/cts/LSBDummy", "/etc/init.d/ssh"])
def test_absolute_script_paths_as_pacemaker(name: str) -> None:
    assert bad_script_name(name) is None and script_path(name, "/etc/init.d") == name


@pytest.mark.parametrize("name", ["/etc/../bin/sh", "/etc//x", "/etc/init.d/", "a/b", "../x", "..", "."])
def test_bad_script_paths(name: str) -> None:
    assert bad_script_name(name) is not None


def test_unit_lookup(tmp_path: Path) -> None:
    lib, etc = tmp_path / "lib", tmp_path / "etc"
    lib.mkdir()
    etc.mkdir()
    (lib / "nginx.service").write_text("[Service]\n")
    (etc / "getty@.service").write_text("[Service]\n")
    (lib / "data.mount").write_text("[Mount]\n")
    dirs = (str(etc), str(lib))
    assert unit_name("nginx") == "nginx.service" and unit_name("data.mount") == "data.mount"
    assert unit_exists("nginx", dirs) and unit_exists("nginx.service", dirs)
    assert unit_exists("getty@tty1", dirs)  # an instance, through its template
    assert unit_exists("data.mount", dirs)
    assert not unit_exists("apache2", dirs)
    assert not unit_exists("../lib/nginx", dirs)
