"""A host's file changes land all or nothing, with their owner and mode, and keep the operator's
lines in the INI files hakeeper only edits keys in (real files under a temporary root)."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest

from hakeeper.ceph.apply import apply_host
from hakeeper.ceph.model import HostAccess
from hakeeper.ceph.plan import Change, FileChange, IniChange, WantFile, WantIni

ME = pwd.getpwuid(os.getuid()).pw_name  # chown to oneself works without root
GROUP = grp.getgrgid(os.getgid()).gr_name
KEYRING = WantFile("/etc/ceph/ceph.client.images.keyring", ME, GROUP, 0o600,
                   "[client.images]\n\tkey = AQBfake==\n", key_of="client.images", secret=True)
INI = WantIni("/etc/glance/glance-api.conf", {("glance_store", "default_store"): "rbd"}, ME, GROUP, 0o640)


def changes() -> list[Change]:
    return [FileChange("h", KEYRING, ("missing",)),
            IniChange("h", INI, "glance_store", "default_store", "rbd", "file")]


def test_files_land_with_owner_and_mode_and_the_operators_lines_stay(tmp_path: Path) -> None:
    conf = tmp_path / "etc/glance/glance-api.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[DEFAULT]\n# mine\nbind_port = 9292\n[glance_store]\ndefault_store = file\n")
    conf.chmod(0o644)
    apply_host(HostAccess(root=str(tmp_path)), changes())
    keyring = tmp_path / "etc/ceph/ceph.client.images.keyring"
    assert keyring.read_text() == KEYRING.text
    assert keyring.stat().st_mode & 0o7777 == 0o600
    assert conf.read_text() == "[DEFAULT]\n# mine\nbind_port = 9292\n[glance_store]\ndefault_store = rbd\n"
    assert conf.stat().st_mode & 0o7777 == 0o644  # an existing file keeps its mode


def test_an_interruption_leaves_the_host_as_it_was(tmp_path: Path) -> None:
    conf = tmp_path / "etc/glance/glance-api.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[glance_store]\ndefault_store = file\n")
    calls: list[str] = []

    def cut(path: str) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_host(HostAccess(root=str(tmp_path)), changes(), interrupt=cut)
    assert not (tmp_path / "etc/ceph/ceph.client.images.keyring").exists()
    assert conf.read_text() == "[glance_store]\ndefault_store = file\n"
    assert [n for _, _, files in os.walk(tmp_path) for n in files if ".hk-" in n] == []
    apply_host(HostAccess(root=str(tmp_path)), changes())  # run again: done
    assert "default_store = rbd" in conf.read_text()


def test_a_missing_unix_user_changes_nothing(tmp_path: Path) -> None:
    bad = FileChange("h", WantFile("/etc/ceph/k", "no-such-user-hk", "no-such-user-hk", 0o600, "x"), ("missing",))
    with pytest.raises(RuntimeError, match="no-such-user-hk"):
        apply_host(HostAccess(root=str(tmp_path)), [*changes(), bad])
    assert [n for _, _, files in os.walk(tmp_path) for n in files] == []
