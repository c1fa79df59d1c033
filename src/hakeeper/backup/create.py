"""`hakeeper backup create`: gathers the parts (database, configuration, files) into a backup
directory through BackupWriter. Secrets go in only encrypted, or in plain text when the operator
says so explicitly; otherwise the command refuses before copying anything."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet

from hakeeper import __version__
from hakeeper.backup.archive import BackupWriter
from hakeeper.backup.manifest import DatabasePart, Manifest, SecretMode
from hakeeper.backup.mariadb import Connection, copy_database
from hakeeper.backup.secretbox import BackupKey, is_secret_file
from hakeeper.coord.secrets import mask_spec, secret_values
from hakeeper.errors import InputError, Problem
from hakeeper.spec import ClusterSpec
from hakeeper.spec.loader import dump_spec

CONFIG_YAML = "config/cluster.yaml"  # masked: for reading
CONFIG_JSON = "config/cluster.json"  # the whole configuration, when it holds no secret
SECRET_CONFIG_JSON = "secrets/cluster.json"


@dataclass(frozen=True)
class Sources:
    database: Connection | None
    config: tuple[ClusterSpec, int] | None  # the store's configuration and its version
    files: Sequence[str]
    secret_files: Sequence[str]


def backup_id(now: float, host: str) -> str:
    # Milliseconds: two backups a second apart (or less) never share a name.
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z-{host}"


def secret_mode(sources: Sources, box: Fernet | None, plaintext: bool) -> SecretMode:
    """How the secrets go in; refuses (before anything is copied) a backup with secrets but
    neither a key nor the explicit flag."""
    files = [*sources.secret_files, *(f for f in sources.files if is_secret_file(f))]
    has_secrets = bool(files) or (sources.config is not None and bool(secret_values(sources.config[0])))
    if not has_secrets:
        return "none"
    if box is not None:
        return "encrypted"
    if plaintext:
        return "plaintext"
    what = ", ".join(files[:3]) or "the configuration's secret parameters"
    raise InputError.at(f"the backup would hold secrets ({what}): pass --backup-key FILE to encrypt them, or "
                        "--include-plaintext-secrets to store them readable", field="--backup-key")


def create(dest: str, sources: Sources, key: BackupKey | None, plaintext: bool, now: float) -> tuple[str, Manifest]:
    box = key.box if key is not None else None
    problems = [Problem("cannot read", f) for f in [*sources.files, *sources.secret_files]
                if not os.path.isfile(f) or not os.access(f, os.R_OK)]
    if problems:
        raise InputError(problems)
    mode = secret_mode(sources, box, plaintext)
    host = socket.gethostname()
    writer = BackupWriter(dest, backup_id(now, host))
    secret_box = box if mode == "encrypted" else None
    database: DatabasePart | None = None
    if sources.database is not None:
        database = copy_database(sources.database, str(writer.path("database")), host)
        writer.add_tree("database", "database")
    version = None
    if sources.config is not None:
        spec, version = sources.config
        writer.add_bytes(CONFIG_YAML, dump_spec(mask_spec(spec)).encode(), "config")
        whole = spec.model_dump_json(indent=1).encode()
        if secret_values(spec):
            writer.add_bytes(SECRET_CONFIG_JSON, whole, "secret-config", box=secret_box)
        else:
            writer.add_bytes(CONFIG_JSON, whole, "config")
    for path in sources.files:
        secret = is_secret_file(path) or path in sources.secret_files
        _add_file(writer, path, secret, secret_box)
    for path in sources.secret_files:
        if path not in sources.files:
            _add_file(writer, path, True, secret_box)
    manifest = Manifest(
        id=os.path.basename(writer.final), created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        host=host, hakeeper_version=__version__, secrets=mode, database=database, config_version=version,
    )
    return writer.finish(manifest, key), manifest


def _add_file(writer: BackupWriter, path: str, secret: bool, box: Fernet | None) -> None:
    source = os.path.abspath(path)
    with open(source, "rb") as fh:
        data = fh.read()
    rel = ("secrets/files" if secret else "files") + source
    writer.add_bytes(rel, data, "secret-file" if secret else "file", box=box if secret else None,
                     source=source, stat=os.stat(source))
