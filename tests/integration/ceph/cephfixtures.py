"""The Ceph lab as a module-scoped pytest fixture, shared by the Ceph and backup suites.

Load it with `pytest_plugins = ["cephfixtures"]` in a test module (a conftest.py here would shadow
tests/conftest.py). From another directory, put this one on sys.path first:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ceph"))
    pytest_plugins = ["cephfixtures"]

`ceph_lab` starts one real cluster for the module (about 15-20 s to HEALTH_OK) and removes it,
its namespaces and files afterwards, also when a test failed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import needs_binary, needs_root
from hakeeper.ceph.lab import CephLab


def skip_without_ceph() -> None:
    needs_root()
    for tool, package in (("ceph-mon", "ceph-mon"), ("ceph-osd", "ceph-osd"), ("ceph-mgr", "ceph-mgr"),
                          ("ceph", "ceph-common"), ("rbd", "ceph-common"), ("setpriv", "util-linux")):
        needs_binary(tool, package)


@pytest.fixture(scope="module")
def ceph_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephLab]:
    skip_without_ceph()
    logs = str(tmp_path_factory.mktemp("ceph-logs"))
    # A generous bound: on a loaded machine (load 40 on 2 cores) HEALTH_OK took over 100 s.
    with CephLab(keep_logs=logs, timeout=600) as lab:
        yield lab
