"""Seed 001's wiring planned, applied and verified against a real Ceph cluster, and each
misconfiguration verify must catch (a widened capability, a keyring's owner, a mismatched secret
UUID) made by hand, seen by plan as drift, and repaired by apply. One cluster for the module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wiringlab import Wired, wired

from hakeeper.ceph.apply import apply
from hakeeper.ceph.ini import read_keys, set_keys
from hakeeper.ceph.lab import CephLab
from hakeeper.ceph.model import load_wiring
from hakeeper.ceph.observe import admin_for, file_state, secret_uuid, survey
from hakeeper.ceph.plan import FileChange, IniChange, UserChange

pytest_plugins = ["cephfixtures"]

# The first test also starts the cluster; a loaded machine's ceph CLI takes seconds a call.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1200)]

KEYRING_IMAGES = "/etc/ceph/ceph.client.images.keyring"
NOVA_CONF = "/etc/nova/nova.conf"


@pytest.fixture(scope="module")
def lab(ceph_lab: CephLab) -> Iterator[Wired]:
    with wired(ceph_lab) as w:
        yield w


def hk(w: Wired, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hakeeper", "ceph", *args, w.profile], capture_output=True,
                          text=True, timeout=600)


def applied(w: Wired) -> None:
    out = hk(w, "apply")
    assert out.returncode == 0, out.stdout + out.stderr


def plan_changes(w: Wired) -> list[object]:
    wiring = load_wiring(w.profile)
    uuid = secret_uuid(wiring.state)
    assert uuid is not None
    return list(survey(wiring, admin_for(wiring), uuid).plan.changes)


def failures(out: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in out.stdout.splitlines() if line.startswith("FAIL")]


def test_plan_apply_verify_seed_001(lab: Wired) -> None:
    first = hk(lab, "plan")
    assert first.returncode == 0, first.stderr
    for expected in ("create pool volumes", "create pool images", "create client.volumes", "create client.images",
                     "allow rwx pool=volumes, allow rx pool=images", "/etc/ceph/ceph.client.volumes.keyring",
                     "cinder:cinder 0600", "rbd_secret_uuid", "CEPH_ARGS", "show_image_direct_url"):
        assert expected in first.stdout, expected
    applied(lab)
    assert os.path.exists(lab.state)
    again = hk(lab, "plan")
    assert again.returncode == 0 and again.stdout.startswith("up to date"), again.stdout
    checked = hk(lab, "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert failures(checked) == []
    for evidence in ("client.images writes an image in images", "the image read back equals what was written",
                     "client.volumes clones", "the clone reads the image's bytes through its parent",
                     "client.volumes refused to write in pool images", "client.images refused to write in pool volumes",
                     "client.nova refused to write in pool images", "nobody cannot read it"):
        assert evidence in checked.stdout, evidence
    # What Ceph itself holds: the seed's capabilities, verbatim.
    caps = lab.ceph.json("auth", "get", "client.volumes")[0]["caps"]
    assert caps == {"mon": "allow r",
                    "osd": "allow class-read object_prefix rbd_children, allow rwx pool=volumes, allow rx pool=images"}


def test_a_capability_widened_by_hand(lab: Wired) -> None:
    applied(lab)
    lab.ceph.check("auth", "caps", "client.volumes", "mon", "allow r", "osd",
                   "allow class-read object_prefix rbd_children, allow rwx pool=volumes, allow rwx pool=images")
    drift = [c for c in plan_changes(lab) if isinstance(c, UserChange)]
    assert [(c.entity, c.action) for c in drift] == [("client.volumes", "set-caps")]
    out = hk(lab, "verify")
    assert out.returncode == 1
    assert any("controller01: /etc/cinder/cinder.conf: [ceph] rbd_user: client.volumes was allowed to write in pool "
               "images" in line for line in failures(out)), out.stdout
    applied(lab)
    assert hk(lab, "verify").returncode == 0


def test_a_keyring_with_the_wrong_owner(lab: Wired) -> None:
    applied(lab)
    path = lab.root("controller01", KEYRING_IMAGES)
    shutil.chown(path, "cinder", "cinder")
    drift = [c for c in plan_changes(lab) if isinstance(c, FileChange)]
    assert [(c.host, c.file.path, c.reasons) for c in drift] == [
        ("controller01", KEYRING_IMAGES, ("owner cinder:cinder",))]
    out = hk(lab, "verify")
    assert out.returncode == 1
    assert any(f"controller01: {KEYRING_IMAGES}: owner: cinder:cinder, want glance" in line
               for line in failures(out)), out.stdout
    applied(lab)
    state = file_state(Path(path))
    assert state is not None and (state.owner, state.mode) == ("glance", 0o600)


def test_a_mismatched_secret_uuid(lab: Wired) -> None:
    applied(lab)
    path = lab.root("compute1", NOVA_CONF)
    with open(path) as f:
        text = f.read()
    wrong = "00000000-0000-4000-8000-000000000000"
    with open(path, "w") as f:
        f.write(set_keys(text, {("libvirt", "rbd_secret_uuid"): wrong}))
    drift = [c for c in plan_changes(lab) if isinstance(c, IniChange)]
    assert [(c.host, c.key, c.had) for c in drift] == [("compute1", "rbd_secret_uuid", wrong)]
    out = hk(lab, "verify")
    assert out.returncode == 1
    assert any(f"compute1: {NOVA_CONF}: [libvirt] rbd_secret_uuid: {wrong}" in line for line in failures(out))
    applied(lab)
    with open(path) as f:
        assert read_keys(f.read())[("libvirt", "rbd_secret_uuid")] == secret_uuid(lab.state)


def test_an_interrupted_apply_changes_nothing_on_the_host_and_resumes(lab: Wired) -> None:
    applied(lab)
    ctl = lab.roots["controller01"]
    shutil.rmtree(os.path.join(ctl, "etc"))
    os.makedirs(os.path.join(ctl, "etc", "glance"))
    with open(os.path.join(ctl, "etc", "glance", "glance-api.conf"), "w") as f:
        f.write("[DEFAULT]\n# the operator's own settings stay\nbind_port = 9292\n")
    wiring = load_wiring(lab.profile)
    uuid = secret_uuid(wiring.state)
    assert uuid is not None
    seen: list[str] = []

    def power_cut(path: str) -> None:
        seen.append(path)
        if len(seen) == 3:
            raise RuntimeError("interrupted")

    outcome = apply(wiring, admin_for(wiring), uuid, record_uuid=False, interrupt=power_cut)
    assert "controller01" in outcome.failed
    # Nothing of controller01 changed: no keyring, the operator's file as it was, no staged leftovers.
    assert not os.path.exists(lab.root("controller01", "/etc/ceph/ceph.client.images.keyring"))
    with open(lab.root("controller01", "/etc/glance/glance-api.conf")) as f:
        assert "rbd_store_user" not in f.read()
    left = [n for _, _, files in os.walk(ctl) for n in files if ".hk-" in n]
    assert left == []
    applied(lab)
    with open(lab.root("controller01", "/etc/glance/glance-api.conf")) as f:
        text = f.read()
    assert "bind_port = 9292" in text and "# the operator's own settings stay" in text
    assert hk(lab, "plan").stdout.startswith("up to date")
    assert hk(lab, "verify").returncode == 0
