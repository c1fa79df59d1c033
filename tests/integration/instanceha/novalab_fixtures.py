"""The Nova lab (hakeeper.instanceha.novalab) as a module-scoped pytest fixture.

Load it with `pytest_plugins = ["novalab_fixtures"]` in a test module of this directory (a
conftest.py here would shadow tests/conftest.py); from elsewhere put this directory on sys.path
first. `nova_lab` starts the real services once for the module (one to several minutes, depending
on the machine's load) and removes every process, namespace and file afterwards, also when a test
failed. Without the venvs of scripts/setup-nova, or without root, tests skip (and fail in CI,
HAKEEPER_STRICT=1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from conftest import _skip_or_fail, needs_binary, needs_root
from hakeeper.instanceha.novalab import NovaLab, missing_install


def skip_without_nova() -> None:
    needs_root()
    for tool, package in (("mariadbd", "mariadb-server"), ("mariadb-install-db", "mariadb-server"),
                          ("rabbitmq-server", "rabbitmq-server")):
        needs_binary(tool, package)
    why = missing_install()
    if why is not None:
        _skip_or_fail(why)


@pytest.fixture(scope="module")
def nova_lab() -> Iterator[NovaLab]:
    skip_without_nova()
    # HAKEEPER_KEEP_NOVALAB=1 keeps the lab's directory (configs, every daemon's log) for a post-mortem.
    with NovaLab(computes=2, keep_workdir=os.environ.get("HAKEEPER_KEEP_NOVALAB") == "1") as lab:
        print(f"novalab: cold start {lab.timings['cold_start']:.1f} s (databases ready after "
              f"{lab.timings['databases']:.1f} s), RSS {lab.rss_mb():.0f} MiB")
        yield lab
