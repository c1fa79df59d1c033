"""`hakeeper backup restore`: verify the backup, read what the targets hold, decide (plan.py),
then carry the steps out in order. Nothing is touched before the whole plan is accepted."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from hakeeper.backup.archive import atomic_write, verify
from hakeeper.backup.create import CONFIG_JSON, SECRET_CONFIG_JSON
from hakeeper.backup.manifest import Entry, Manifest
from hakeeper.backup.mariadb import copy_back, read_datadir
from hakeeper.backup.plan import RestorePlan, StoreState, plan_restore
from hakeeper.backup.secretbox import BackupKey, decrypt
from hakeeper.errors import InputError
from hakeeper.spec import ClusterSpec


@dataclass(frozen=True)
class Prepared:
    backup: str
    manifest: Manifest
    plan: RestorePlan
    spec: ClusterSpec | None  # the configuration to write into the store


def backup_spec(backup: str, manifest: Manifest, box: Fernet | None) -> ClusterSpec | None:
    for entry in manifest.entries:
        if entry.path in (CONFIG_JSON, SECRET_CONFIG_JSON, SECRET_CONFIG_JSON + ".enc"):
            where = os.path.join(backup, entry.path)
            data = read_entry(backup, entry, box)
            try:
                return ClusterSpec.model_validate_json(data)
            except ValueError:
                raise InputError.at("not a hakeeper configuration", file=where) from None
    return None


def read_entry(backup: str, entry: Entry, box: Fernet | None) -> bytes:
    data = Path(backup, entry.path).read_bytes()
    if not entry.encrypted:
        return data
    if box is None:
        where = os.path.join(backup, entry.path)
        raise InputError.at("encrypted: pass --backup-key FILE", file=where, field="--backup-key")
    return decrypt(box, data, os.path.join(backup, entry.path))


def destination(root: str, source: str) -> str:
    return os.path.join(root, source.lstrip("/"))


def _sha256(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def prepare(backup: str, datadirs: Sequence[str], store: StoreState, current: ClusterSpec | None, root: str,
            key: BackupKey | None, force: bool, stamp: str) -> Prepared:
    box = key.box if key is not None else None
    manifest, problems = verify(backup, key)
    if problems:
        raise InputError(problems)
    spec = backup_spec(backup, manifest, box) if (box is not None or manifest.secrets != "encrypted") else None
    if store == "empty" and current is not None:
        store = "same" if current == spec else "different"
    files = {e.source: _sha256(destination(root, e.source))
             for e in manifest.entries if e.kind in ("file", "secret-file") and e.source}
    # The plan compares what a file holds with the backup's plain text: for an encrypted entry
    # that is its decrypted content's checksum.
    if box is not None:
        for e in manifest.entries:
            if e.encrypted and e.source and files.get(e.source) is not None:
                plain = hashlib.sha256(read_entry(backup, e, box)).hexdigest()
                files[e.source] = e.sha256 if files[e.source] == plain else files[e.source]
    targets = [read_datadir(d) for d in datadirs]
    plan = plan_restore(manifest, targets, store, files, have_key=box is not None, force=force, stamp=stamp)
    return Prepared(backup, manifest, plan, spec)


def carry_out(p: Prepared, root: str, box: Fernet | None) -> None:
    """The plan's file and database steps (the store's is the caller's: it is async)."""
    by_source = {e.source: e for e in p.manifest.entries if e.source}
    for step in p.plan.steps:
        if step.kind == "set-aside":
            os.rename(step.target, step.to)
        elif step.kind == "set-aside-file":
            os.rename(destination(root, step.target), destination(root, step.to))
        elif step.kind == "copy-back":
            assert p.manifest.database is not None
            copy_back(os.path.join(p.backup, "database"), step.target, p.manifest.database.position)
        elif step.kind == "put-file":
            entry = by_source[step.target]
            dest = destination(root, step.target)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            atomic_write(dest, read_entry(p.backup, entry, box), entry.mode if entry.mode is not None else 0o600)
            if entry.owner and entry.group:
                # The user may not exist on this host yet: root keeps the file, with its mode.
                with contextlib.suppress(LookupError):
                    shutil.chown(dest, entry.owner, entry.group)
