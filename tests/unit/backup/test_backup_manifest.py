"""Checksums, the manifest and secrets: what verify reports, on real files in a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.backup import archive
from hakeeper.backup.create import Sources, create, secret_mode
from hakeeper.backup.manifest import Entry, Found, GaleraPosition, Manifest, checksum_problems, parse_galera_info
from hakeeper.backup.secretbox import decrypt, generate_key, is_secret_file, load_key
from hakeeper.cli import main
from hakeeper.errors import InputError


def make(tmp_path: Path, **kw: object) -> tuple[str, Manifest]:
    conf = tmp_path / "etc" / "glance-api.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("[glance_store]\nrbd_store_pool = images\n")
    ring = tmp_path / "etc" / "ceph.client.images.keyring"
    ring.write_text("[client.images]\n key = AQ-secret-value==\n")
    key = tmp_path / "k"
    if not key.exists():
        generate_key(str(key))
    return create(str(tmp_path / "out"), Sources(None, None, [str(conf), str(ring)], []),
                  load_key(str(key)), False, 1_700_000_000.5)


def test_a_backup_verifies_and_keeps_the_keyring_only_encrypted(tmp_path: Path) -> None:
    path, manifest = make(tmp_path)
    assert manifest.secrets == "encrypted"
    assert archive.verify(path)[1] == []
    assert not any(b"AQ-secret-value" in p.read_bytes() for p in Path(path).rglob("*") if p.is_file())
    entry = next(e for e in manifest.entries if e.kind == "secret-file")
    assert entry.encrypted and entry.path.endswith(".keyring.enc")
    plain = decrypt(load_key(str(tmp_path / "k")).box, Path(path, entry.path).read_bytes(), entry.path)
    assert b"AQ-secret-value" in plain


def test_verify_names_each_changed_missing_and_added_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, manifest = make(tmp_path)
    conf = next(e for e in manifest.entries if e.kind == "file")
    Path(path, conf.path).write_text(Path(path, conf.path).read_text().replace("images", "imagez"))
    assert main(["backup", "verify", path]) == 2
    err = capsys.readouterr().err
    assert f"{path}/{conf.path}: sha256" in err and "Traceback" not in err
    Path(path, "extra").write_text("x")
    ring = next(e for e in manifest.entries if e.kind == "secret-file")
    Path(path, ring.path).unlink()
    problems = archive.verify(path)[1]
    assert {str(p).split(":")[0] for p in problems} == {f"{path}/{conf.path}", f"{path}/extra", f"{path}/{ring.path}"}


def test_a_file_changed_with_its_manifest_is_caught_by_the_signature(tmp_path: Path) -> None:
    path, manifest = make(tmp_path)
    key = load_key(str(tmp_path / "k"))
    assert archive.verify(path, key)[1] == []
    conf = next(e for e in manifest.entries if e.kind == "file")
    Path(path, conf.path).write_text("default_store = file\n")
    found = archive.sha256_file(Path(path, conf.path))
    conf.size, conf.sha256 = found.size, found.sha256
    Path(path, "manifest.json").write_text(manifest.model_dump_json(indent=1))
    assert archive.verify(path)[1] == []  # without the key the forgery is consistent
    problems = archive.verify(path, key)[1]
    assert [str(p) for p in problems] == [f"{path}/manifest.json: its signature does not match with this key "
                                          "(the manifest was changed, or another key)"]


def test_secrets_without_key_or_flag_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    ring = tmp_path / "cookie"
    ring.write_text("ERLANGCOOKIE")
    with pytest.raises(InputError, match="--include-plaintext-secrets"):
        create(str(tmp_path / "out"), Sources(None, None, [str(ring)], []), None, False, 1.0)
    assert not (tmp_path / "out").exists()
    assert secret_mode(Sources(None, None, [str(ring)], []), None, True) == "plaintext"


def test_a_key_is_never_overwritten_and_a_wrong_key_is_named(tmp_path: Path) -> None:
    generate_key(str(tmp_path / "k"))
    with pytest.raises(InputError, match="never overwritten"):
        generate_key(str(tmp_path / "k"))
    (tmp_path / "bad").write_text("not a key")
    with pytest.raises(InputError, match="bad: --backup-key: not a backup key"):
        load_key(str(tmp_path / "bad"))
    generate_key(str(tmp_path / "k2"))
    token = load_key(str(tmp_path / "k")).box.encrypt(b"x")
    with pytest.raises(InputError, match="cannot be decrypted"):
        decrypt(load_key(str(tmp_path / "k2")).box, token, "f")


def test_galera_info_and_secret_file_names() -> None:
    pos = parse_galera_info("6f1e2d3c-4b5a-4968-8776-655443322110:1234 0-1-1234\n", "f")
    assert pos == GaleraPosition(uuid="6f1e2d3c-4b5a-4968-8776-655443322110", seqno=1234, gtid="0-1-1234")
    with pytest.raises(InputError, match="f: no Galera position"):
        parse_galera_info("garbage", "f")
    assert is_secret_file("/etc/ceph/ceph.client.volumes.keyring")
    assert is_secret_file("/var/lib/rabbitmq/.erlang.cookie")
    assert not is_secret_file("/etc/glance/glance-api.conf")


def test_a_corrupt_manifest_is_named(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(InputError, match=r"manifest\.json: not a hakeeper backup manifest"):
        archive.read_manifest(str(tmp_path))


names = st.text(alphabet="abcdef/", min_size=1, max_size=8)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, st.tuples(st.integers(0, 9), st.sampled_from("xyz")), max_size=6),
       st.dictionaries(names, st.none() | st.tuples(st.integers(0, 9), st.sampled_from("xyz")), max_size=6))
def test_property_problems_are_exactly_the_differing_paths(
    listed: dict[str, tuple[int, str]], changes: dict[str, tuple[int, str] | None]
) -> None:
    m = Manifest(id="i", created_at="t", host="h", hakeeper_version="v", secrets="none",
                 entries=[Entry(path=p, kind="file", size=s, sha256=h) for p, (s, h) in listed.items()])
    found: dict[str, Found | None] = {p: Found(s, h) for p, (s, h) in listed.items()}
    found.update({p: (Found(*c) if c else None) for p, c in changes.items()})
    named = {p.file.removeprefix("B/") for p in checksum_problems(m, found, "B") if p.file}
    expected = {p for p in listed if found[p] != Found(*listed[p])}
    expected |= {p for p, c in found.items() if p not in listed and c is not None and p != "manifest.json"}
    assert named == expected
