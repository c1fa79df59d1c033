"""The restore plan, decided before anything is touched.

Input: the backup's manifest, what each target holds (datadirs, the store's configuration, the
files to put back), whether a key is at hand and whether the operator forces. Output: either the
steps, in order, or every reason to refuse at once (nothing is done then). Rules:

* A controller "holds data" when its datadir has a Galera history (grastate.dat with a non-zero
  UUID) or a database beyond the system schemas a fresh `mariadb-install-db` creates. Such a
  target is refused without --force; with --force its datadir is set aside (renamed), never deleted.
* The first datadir receives the backup and bootstraps the new cluster; the others join it by
  SST. Who bootstraps is galera.bootstrap.decide's decision over the positions the restore leaves
  (the restored node at the backup's position, safe_to_bootstrap; the others without history), so
  the restore and the operator's `galera bootstrap` follow one rule.
* A configuration already in the store that differs from the backup's is replaced only with
  --force (the store keeps the replaced version in its history); a rendered file that exists with
  other content is set aside only with --force.
* Encrypted secrets need the key; without them the configuration would hold placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from hakeeper.backup.manifest import Manifest
from hakeeper.errors import InputError, Problem
from hakeeper.galera.bootstrap import ZERO_UUID, Position, decide

# What mariadb-install-db creates: a datadir holding only these holds no data of the cloud.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys", "information_schema", "test", "#innodb_redo",
                            "#innodb_temp", "lost+found"})

StepKind = Literal["set-aside", "set-aside-file", "copy-back", "write-grastate", "write-config", "put-file"]
StoreState = Literal["empty", "same", "different", "not-given"]


@dataclass(frozen=True)
class Datadir:
    """What a target datadir holds, read at the edge."""

    path: str
    exists: bool
    nonempty: bool = False  # anything in it at all
    schemas: frozenset[str] = frozenset()  # subdirectories (each a schema)
    position: Position | None = None  # from grastate.dat, if any

    @property
    def holds_data(self) -> bool:
        history = self.position is not None and self.position.uuid != ZERO_UUID
        return history or bool(self.schemas - SYSTEM_SCHEMAS)


@dataclass(frozen=True)
class Step:
    kind: StepKind
    target: str
    detail: str
    to: str = ""  # where a set-aside target goes


@dataclass(frozen=True)
class RestorePlan:
    steps: tuple[Step, ...]
    bootstrap: str | None  # the datadir the new cluster starts from

    def describe(self) -> list[str]:
        return [f"{s.kind:15} {s.target}: {s.detail}" for s in self.steps]


def plan_restore(
    manifest: Manifest,
    datadirs: Sequence[Datadir],
    store: StoreState,
    files: Mapping[str, str | None],  # destination -> sha256 of what is there now (None: absent)
    *,
    have_key: bool,
    force: bool,
    stamp: str,
) -> RestorePlan:
    problems: list[Problem] = []
    steps: list[Step] = []
    aside = f".pre-restore-{stamp}"
    if manifest.secrets == "encrypted" and not have_key:
        problems.append(Problem("the backup's secrets are encrypted: pass --backup-key FILE (the key it was made with)",
                                field="--backup-key"))
    bootstrap: str | None = None
    if manifest.database is not None:
        if not datadirs:
            problems.append(Problem("the backup holds a database: name the new controllers' datadirs (--datadir)",
                                    field="--datadir"))
        for d in datadirs:
            if d.holds_data and not force:
                problems.append(Problem(
                    "holds data (a Galera history or a database of its own): refused without --force "
                    "(with it, the datadir is set aside, not deleted)", d.path))
        if datadirs:
            bootstrap = _bootstrap_choice(manifest, datadirs, problems)
        for i, d in enumerate(datadirs):
            # The receiving datadir must be empty for copy-back; a joiner's is overwritten by its
            # SST, which is harmless unless it holds data (then --force was given: keep it aside).
            if (i == 0 and d.nonempty) or (i > 0 and d.holds_data):
                to = d.path.rstrip("/") + aside
                steps.append(Step("set-aside", d.path, f"renamed to {to}", to))
        if datadirs:
            target = datadirs[0].path
            steps.append(Step("copy-back", target, "the prepared backup copied in (mariabackup --copy-back)"))
            if manifest.database.position is not None:
                pos = manifest.database.position
                steps.append(Step("write-grastate", target, f"{pos.uuid}:{pos.seqno}, safe_to_bootstrap: 1"))
    if any(e.kind in ("config", "secret-config") for e in manifest.entries):
        if store == "different" and not force:
            problems.append(Problem("holds another configuration: refused without --force (with it, the backup's "
                                    "becomes the next version and the store's history keeps the current one)",
                                    "the store"))
        if store in ("empty", "different"):
            steps.append(Step("write-config", "the store", f"configuration version {manifest.config_version}"))
        elif store == "not-given":
            problems.append(Problem("the backup holds hakeeper's configuration: pass --etcd or --store "
                                    "(or --skip-config to leave the store alone)", field="--etcd/--store"))
    for entry in manifest.entries:
        if entry.kind not in ("file", "secret-file") or entry.source is None:
            continue
        dest = entry.source
        now = files.get(dest)
        if now == entry.sha256:
            continue  # already what the backup holds
        if now is not None:
            if not force:
                problems.append(Problem("exists with other content: refused without --force (with it, "
                                        "the current file is set aside, not deleted)", dest))
            steps.append(Step("set-aside-file", dest, f"renamed to {dest}{aside}", dest + aside))
        steps.append(Step("put-file", dest, f"from {entry.path}" + (" (decrypted)" if entry.encrypted else "")))
    if problems:
        raise InputError(problems)
    return RestorePlan(tuple(steps), bootstrap)


def _bootstrap_choice(manifest: Manifest, datadirs: Sequence[Datadir], problems: list[Problem]) -> str | None:
    """The node the restore leaves able to bootstrap, as galera.bootstrap.decide sees it."""
    assert manifest.database is not None
    pos = manifest.database.position
    if pos is None:
        return datadirs[0].path  # a plain MariaDB: no cluster to bootstrap
    after = {datadirs[0].path: Position(pos.uuid, pos.seqno, safe_to_bootstrap=True)}
    after.update({d.path: Position(ZERO_UUID, -1) for d in datadirs[1:]})
    decision = decide(after, [d.path for d in datadirs])
    if decision.node != datadirs[0].path:
        problems.append(Problem(f"the restored node would not bootstrap: {decision.reason}", datadirs[0].path))
    return decision.node
