"""A cluster that does not answer is bad input naming storage.cluster (exit 2), and nothing is written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import needs_binary
from hakeeper.ceph.observe import Admin, cluster_facts
from hakeeper.errors import InputError


def test_an_unreachable_cluster_is_named(tmp_path: Path) -> None:
    needs_binary("ceph", "ceph-common")
    needs_binary("ceph-authtool", "ceph-common")
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nfsid = 8d0f0cf4-0000-4000-8000-000000000001\nmon_host = 127.0.0.1:1\n")
    keyring = tmp_path / "admin.keyring"
    subprocess.run(["ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "client.admin"],
                   check=True, capture_output=True)
    with pytest.raises(InputError) as err:
        cluster_facts(Admin(str(conf), str(keyring), connect_timeout=2))
    shown = str(err.value)
    assert f"{conf}: storage.cluster: cannot reach the Ceph cluster: ceph mon dump" in shown, shown
    assert "AQ" not in shown  # no key material in the message
