"""Backups on disk: writing one (into `<dest>/<id>.partial`, renamed to `<dest>/<id>` only once
its manifest is written, so a half-made backup never looks complete), listing, verifying."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from cryptography.fernet import Fernet

from hakeeper.backup.manifest import (
    MANIFEST,
    SIGNATURE,
    Entry,
    EntryKind,
    Found,
    Manifest,
    checksum_problems,
    parse_manifest,
)
from hakeeper.backup.secretbox import BackupKey
from hakeeper.errors import InputError, Problem

PARTIAL = ".partial"


def sha256_file(path: str | Path) -> Found:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return Found(size, h.hexdigest())


def atomic_write(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)  # exactly this mode, whatever the umask
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class BackupWriter:
    """Collects a backup's files and their entries; `finish` writes the manifest and renames."""

    def __init__(self, dest: str, backup_id: str) -> None:
        self.final = os.path.join(dest, backup_id)
        if os.path.exists(self.final):
            raise InputError.at("a backup of this name exists already", file=self.final)
        os.makedirs(dest, exist_ok=True)
        self.root = self.final + PARTIAL
        shutil.rmtree(self.root, ignore_errors=True)  # a partial of ours, left by an interrupted run
        os.makedirs(self.root, mode=0o700)
        self.entries: list[Entry] = []

    def path(self, rel: str) -> Path:
        p = Path(self.root, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add_bytes(self, rel: str, data: bytes, kind: EntryKind, box: Fernet | None = None,
                  source: str | None = None, stat: os.stat_result | None = None) -> None:
        """A small file (configuration, secret); encrypted when `box` is given."""
        if box is not None:
            data, rel = box.encrypt(data), rel + ".enc"
        atomic_write(self.path(rel), data)
        self._entry(rel, kind, encrypted=box is not None, source=source, stat=stat)

    def add_tree(self, rel: str, kind: EntryKind) -> None:
        """Every file under `rel` (already written there, e.g. by mariabackup)."""
        for dirpath, _, files in os.walk(os.path.join(self.root, rel)):
            for name in sorted(files):
                self._entry(os.path.relpath(os.path.join(dirpath, name), self.root), kind)

    def _entry(self, rel: str, kind: EntryKind, encrypted: bool = False, source: str | None = None,
               stat: os.stat_result | None = None) -> None:
        found = sha256_file(os.path.join(self.root, rel))
        owner = group = None
        if stat is not None:
            owner, group = _name_of_uid(stat.st_uid), _name_of_gid(stat.st_gid)
        self.entries.append(Entry(
            path=rel, kind=kind, size=found.size, sha256=found.sha256, encrypted=encrypted, source=source,
            mode=(stat.st_mode & 0o7777) if stat is not None else None, owner=owner, group=group,
        ))

    def finish(self, manifest: Manifest, key: BackupKey | None = None) -> str:
        manifest.entries = sorted(self.entries, key=lambda e: e.path)
        text = manifest.model_dump_json(indent=1).encode()
        atomic_write(os.path.join(self.root, MANIFEST), text, 0o600)
        if key is not None:
            atomic_write(os.path.join(self.root, SIGNATURE), key.sign(text).encode() + b"\n", 0o600)
        os.rename(self.root, self.final)
        return self.final


def _name_of_uid(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _name_of_gid(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def read_manifest(backup: str) -> Manifest:
    path = os.path.join(backup, MANIFEST)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError.at(f"cannot read: {exc.strerror} (is this a hakeeper backup?)", file=path) from None
    return parse_manifest(text, path)


def scan(backup: str, manifest: Manifest) -> dict[str, Found | None]:
    """What the backup directory holds: every file present, and every listed path (None: absent)."""
    found: dict[str, Found | None] = {e.path: None for e in manifest.entries}
    for dirpath, _, files in os.walk(backup):
        for name in files:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, backup)] = sha256_file(full)
    return found


def verify(backup: str, key: BackupKey | None = None) -> tuple[Manifest, list[Problem]]:
    """Every file against the manifest; with the key, the manifest against its signature (a
    backup whose secrets were encrypted was signed with the same key)."""
    manifest = read_manifest(backup)
    problems = checksum_problems(manifest, scan(backup, manifest), backup.rstrip("/"))
    signature = Path(backup, SIGNATURE)
    where = os.path.join(backup.rstrip("/"), MANIFEST)
    if key is not None and signature.is_file():
        if not key.signed(Path(where).read_bytes(), signature.read_text()):
            problems.insert(0, Problem("its signature does not match with this key (the manifest was changed, "
                                       "or another key)", where))
    elif key is not None and manifest.secrets == "encrypted":
        problems.insert(0, Problem(f"not signed: {SIGNATURE} is missing", where))
    return manifest, problems


def list_backups(dest: str) -> list[tuple[str, Manifest | None]]:
    """Each backup in `dest` (oldest first) with its manifest (None: unreadable)."""
    out: list[tuple[str, Manifest | None]] = []
    try:
        names = sorted(os.listdir(dest))
    except OSError as exc:
        raise InputError.at(f"cannot list: {exc.strerror}", file=dest) from None
    for name in names:
        path = os.path.join(dest, name)
        if name.endswith(PARTIAL) or not os.path.isfile(os.path.join(path, MANIFEST)):
            continue
        try:
            out.append((path, read_manifest(path)))
        except InputError:
            out.append((path, None))
    return out


def summary(manifest: Manifest) -> str:
    db = manifest.database
    pos = f"{db.position.uuid}:{db.position.seqno}" if db is not None and db.position else "-"
    return json.dumps({"id": manifest.id, "created_at": manifest.created_at, "size": manifest.total_size,
                       "files": len(manifest.entries), "galera": pos, "secrets": manifest.secrets})
