"""The storage section: seed 001's defaults, and bad input refused naming file, line and field with
exit status 2, before anything is looked at or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.ceph.model import parse_wiring
from hakeeper.cli import main
from hakeeper.errors import InputError

GOOD = """\
networks: {management: 10.0.0.0/24}
controllers:
  - {name: controller01, address: 10.0.0.11}
  - {name: controller02, address: 10.0.0.12}
vips: {glance-api: 10.0.0.20}
storage:
  pools:
    volumes: {pg-num: 128}
    images: {pg-num: 128}
    vms: {pg-num: autoscale}
  computes: [{name: compute1, address: 10.0.0.31}]
  glance: {hosts: [controller01]}
  cinder: {hosts: [controller01]}
  nova: {hosts: [compute1]}
"""


def test_seed_defaults() -> None:
    w = parse_wiring(GOOD)
    by = {i.service: i for i in w.identities}
    assert by["cinder"].entity == "client.volumes" and by["cinder"].unix_user == "cinder"
    assert dict(by["cinder"].caps) == {
        "mon": "allow r",
        "osd": "allow class-read object_prefix rbd_children, allow rwx pool=volumes, allow rx pool=images"}
    assert dict(by["glance"].caps)["osd"] == "allow class-read object_prefix rbd_children, allow rwx pool=images"
    assert dict(by["nova"].caps)["mon"] == "profile rbd"
    assert w.pools == {"volumes": 128, "images": 128, "vms": "autoscale"}
    assert set(w.hosts) == {"controller01", "controller02", "compute1"}


BAD = [
    ("    volumes: {pg-num: 128}", "    vol umes: {pg-num: 128}", 8, "storage.pools", "not a name Ceph accepts"),
    ("    images: {pg-num: 128}", "    images: {pg-num: 100}", 9, "storage.pools.images.pg-num",
     "not a power of two"),
    ("  cinder: {hosts: [controller01]}",
     "  cinder: {hosts: [controller01], caps: {mon: allow r, osd: allow rwz pool=volumes}}", 13,
     "storage.cinder.caps", "cannot parse 'rwz'"),
    ("  nova: {hosts: [compute1]}", "  nova: {hosts: [compute9]}", 14, "storage.nova.hosts.0",
     "unknown host 'compute9'"),
    ("  glance: {hosts: [controller01]}", "  glance: {hosts: [controller01], user: 'client images'}", 12,
     "storage.glance.user", "not a name Ceph accepts"),
    ("  glance: {hosts: [controller01]}", "  glance: {hosts: [controller01], pool: rbd}", 12,
     "storage.glance.pool", "pool 'rbd' is not in storage.pools"),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "why"), BAD)
def test_bad_input_names_file_line_and_field(old: str, new: str, line: int, field: str, why: str) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(InputError) as err:
        parse_wiring(text, "profile.yaml")
    shown = str(err.value)
    assert f"profile.yaml:{line}: {field}" in shown, shown
    assert why in shown, shown


@pytest.mark.parametrize("command", ["plan", "apply", "verify"])
def test_cli_exits_2_without_touching_anything(tmp_path: Path, command: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(GOOD.replace("    images: {pg-num: 128}", "    images: {pg-num: 3}"))
    assert main(["ceph", command, str(profile)]) == 2
    err = capsys.readouterr().err
    assert f"{profile}:9: storage.pools.images.pg-num: 3 is not a power of two" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.yaml"]


def test_cli_exits_2_when_the_cluster_files_are_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(GOOD + f"  cluster: {{conf: {tmp_path}/nope.conf}}\n  state: {tmp_path}/state.json\n")
    assert main(["ceph", "apply", str(profile)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/nope.conf: storage.cluster.conf: cannot read it" in err
    assert not (tmp_path / "state.json").exists()
