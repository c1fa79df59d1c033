"""The Ceph lab itself: a real cluster that reaches HEALTH_OK, enforces cephx capabilities, serves
hosts on its network, and leaves nothing behind (also when its start fails)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from hakeeper.ceph.lab import CephLab, CephLabError
from hakeeper.netlab.lab import namespaces

pytest_plugins = ["cephfixtures"]

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]


def test_cluster_is_healthy_with_three_osds(ceph_lab: CephLab) -> None:
    assert ceph_lab.health() == "HEALTH_OK"
    stat = ceph_lab.json("osd", "stat")
    assert stat["num_up_osds"] == 3 and stat["num_in_osds"] == 3
    assert ceph_lab.started_in > 0


def test_capabilities_are_enforced_for_a_user(ceph_lab: CephLab, tmp_path: object) -> None:
    for pool in ("labtest-a", "labtest-b"):
        ceph_lab.check("osd", "pool", "create", pool, "8")
        ceph_lab.check("osd", "pool", "application", "enable", pool, "rbd")
    try:
        keyring = ceph_lab.user_keyring("labtest")
        out = ceph_lab.ceph("auth", "get-or-create", "client.labtest", "mon", "allow r", "osd",
                            "allow rwx pool=labtest-a", fmt=False)
        assert out.returncode == 0, out.stderr
        with open(keyring, "w") as f:
            f.write(out.stdout)
        ok = ceph_lab.rbd("create", "--size", "8", "labtest-a/img", user="labtest", fmt=False)
        assert ok.returncode == 0, ok.stderr
        refused = ceph_lab.rbd("create", "--size", "8", "labtest-b/img", user="labtest", fmt=False)
        assert refused.returncode != 0
        listed = json.loads(ceph_lab.rbd("ls", "labtest-a", user="labtest").stdout)
        assert listed == ["img"]
    finally:
        ceph_lab.ceph("auth", "del", "client.labtest", fmt=False)
        for pool in ("labtest-a", "labtest-b"):
            ceph_lab.ceph("osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it", fmt=False)


def test_an_added_host_reaches_the_monitor_as_a_unix_user(ceph_lab: CephLab) -> None:
    host = ceph_lab.add_host("labclient")
    conf = os.path.join(ceph_lab.workdir, "client-only.conf")
    keyring = os.path.join(ceph_lab.workdir, "labping.keyring")
    with open(conf, "w") as f:
        f.write(ceph_lab.client_conf())
    out = ceph_lab.ceph("auth", "get-or-create", "client.labping", "mon", "allow r", fmt=False)
    assert out.returncode == 0, out.stderr
    with open(keyring, "w") as f:
        f.write(out.stdout)
    os.chmod(keyring, 0o644)
    try:
        argv = ["ceph", "-c", conf, "--id", "labping", "--keyring", keyring, "--connect-timeout", "20",
                "health", "--format", "json"]
        seen = CephLab.run_as(host, "nobody", argv, timeout=60)
        assert seen.returncode == 0, seen.stderr
        assert json.loads(seen.stdout)["status"] == "HEALTH_OK"
        assert CephLab.run_as(host, "nobody", ["id", "-un"]).stdout.strip() == "nobody"
        # The same key removed: the monitor refuses it (it is the real cluster answering).
        ceph_lab.check("auth", "del", "client.labping")
        assert CephLab.run_as(host, "nobody", argv, timeout=60).returncode != 0
    finally:
        ceph_lab.ceph("auth", "del", "client.labping", fmt=False)


def test_a_failed_start_leaves_nothing_behind() -> None:
    from cephfixtures import skip_without_ceph
    skip_without_ceph()
    before = set(namespaces())

    class BrokenOsd(CephLab):
        """Fails once the monitor and the manager run: the cleanup has daemons to stop."""

        def _make_osd(self) -> None:
            raise CephLabError("injected: the first OSD cannot be made")

    lab = BrokenOsd()
    with pytest.raises(CephLabError, match="injected"), lab:
        pass
    assert lab.procs == {}
    assert set(namespaces()) - before == set()
    assert not os.path.exists(lab.workdir)
    leftover = subprocess.run(["pgrep", "-f", lab.workdir], capture_output=True, text=True).stdout.split()
    assert leftover == []
