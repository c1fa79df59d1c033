"""The manifest of a backup and the pure checks on it.

A backup is a directory: `manifest.json` plus the files it lists, each with its size and sha256.
`verify` recomputes them; `checksum_problems` turns what was found into one problem per file that
does not match (named by its path in the backup), so a tampered or truncated file is never
restored. The Galera position is what `mariabackup --galera-info` saw at the moment the copy was
consistent: the restored node bootstraps a new cluster from exactly there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from hakeeper.errors import InputError, Problem

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.hmac"  # with a backup key: a changed manifest is caught too
FORMAT = 1

EntryKind = Literal["database", "config", "file", "secret-config", "secret-file"]
SecretMode = Literal["encrypted", "plaintext", "none"]


class Entry(BaseModel):
    path: str  # relative to the backup directory
    kind: EntryKind
    size: int
    sha256: str
    encrypted: bool = False
    source: str | None = None  # where a configuration file lives on its host (absolute)
    mode: int | None = None
    owner: str | None = None
    group: str | None = None


class GaleraPosition(BaseModel):
    uuid: str
    seqno: int
    gtid: str | None = None


class DatabasePart(BaseModel):
    method: Literal["mariabackup"]
    position: GaleraPosition | None  # None: not a Galera node (a plain MariaDB)
    wsrep_last_committed: int | None = None
    gtid_binlog_pos: str | None = None
    source: str  # which node (host name) the copy was taken from


class Manifest(BaseModel):
    format: int = FORMAT
    id: str
    created_at: str  # ISO 8601, UTC
    host: str
    hakeeper_version: str
    secrets: SecretMode
    database: DatabasePart | None = None
    config_version: int | None = None
    entries: list[Entry] = Field(default_factory=list)

    def entry(self, path: str) -> Entry | None:
        return next((e for e in self.entries if e.path == path), None)

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries)


def parse_manifest(text: str, where: str) -> Manifest:
    try:
        manifest = Manifest.model_validate_json(text)
    except ValueError as exc:
        first = str(exc).splitlines()[:3]
        raise InputError.at(f"not a hakeeper backup manifest: {' '.join(first)[:200]}", file=where) from None
    if manifest.format != FORMAT:
        raise InputError.at(f"format {manifest.format} is not one this hakeeper reads ({FORMAT})", file=where,
                            field="format")
    return manifest


@dataclass(frozen=True)
class Found:
    """What is actually in the backup directory for one path."""

    size: int
    sha256: str


def checksum_problems(manifest: Manifest, found: Mapping[str, Found | None], backup: str) -> list[Problem]:
    """One problem per listed file that is missing or differs, and per file nobody listed (a file
    slipped into a backup is as suspicious as one changed). `found` maps every path the manifest
    lists, and every file present, to what it holds (None: absent)."""
    problems: list[Problem] = []
    listed = {e.path for e in manifest.entries}
    for entry in manifest.entries:
        got = found.get(entry.path)
        where = f"{backup}/{entry.path}"
        if got is None:
            problems.append(Problem("missing: listed in the manifest, not in the backup", where))
        elif got.size != entry.size:
            problems.append(Problem(f"size {got.size} does not match the manifest's {entry.size}", where,
                                    field="size"))
        elif got.sha256 != entry.sha256:
            problems.append(Problem("sha256 does not match the manifest (changed since the backup)", where,
                                    field="sha256"))
    for path in sorted(set(found) - listed - {MANIFEST, SIGNATURE}):
        if found[path] is not None:
            problems.append(Problem("not listed in the manifest (added after the backup)", f"{backup}/{path}"))
    return problems


_GALERA_INFO = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(-?\d+)(?:[ ,]+(\S+))?")


def parse_galera_info(text: str, where: str) -> GaleraPosition:
    """mariabackup's galera info file: `uuid:seqno` and, on newer servers, the GTID after it."""
    m = _GALERA_INFO.search(text)
    if m is None:
        raise InputError.at(f"no Galera position (uuid:seqno) in {text.strip()[:80]!r}", file=where)
    return GaleraPosition(uuid=m.group(1), seqno=int(m.group(2)), gtid=m.group(3))


def grastate_text(position: GaleraPosition) -> str:
    """The grastate.dat a restored node bootstraps from: the backup's position, marked safe."""
    return (
        "# GALERA saved state\n"
        "version: 2.1\n"
        f"uuid:    {position.uuid}\n"
        f"seqno:   {position.seqno}\n"
        "safe_to_bootstrap: 1\n"
    )
