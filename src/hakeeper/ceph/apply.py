"""Carrying out a plan: pools and cephx users through the ceph CLI, then each host's files at once.

Order: the libvirt secret's UUID is recorded first (so an interrupted run reuses it), then the
cluster-wide changes (pools, users), then the plan is made again, now with every user's key known,
and each host's changes are applied all or nothing: every file is staged next to its target with
its owner and mode, and only when all are staged are they renamed into place. A host that fails
keeps its old files; the others go on. Running apply again after an interruption does what is left.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hakeeper.ceph.ini import set_keys
from hakeeper.ceph.model import HostAccess, Wiring
from hakeeper.ceph.observe import Admin, file_state, host_path, in_host, survey
from hakeeper.ceph.plan import (
    Change,
    FileChange,
    IniChange,
    Plan,
    PoolChange,
    SecretChange,
    UserChange,
)
from hakeeper.errors import InputError


@dataclass(frozen=True)
class Outcome:
    applied: list[str]
    failed: dict[str, str]  # host -> why nothing was changed there
    notes: list[tuple[str, str]]


def write_state(path: str, secret_uuid: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump({"secret_uuid": secret_uuid}, f)
        f.write("\n")
    os.replace(tmp, target)


def apply_cluster_change(admin: Admin, change: PoolChange | UserChange) -> None:
    if isinstance(change, PoolChange):
        name, pg = change.pool, change.pg_num
        if change.action == "create":
            mode = "on" if pg == "autoscale" else "off"
            first = "32" if pg == "autoscale" else str(pg)
            admin.run("ceph", "osd", "pool", "create", name, first, first, "--autoscale-mode", mode)
            admin.run("ceph", "osd", "pool", "application", "enable", name, "rbd")
        elif change.action == "set-pg-num":
            admin.run("ceph", "osd", "pool", "set", name, "pg_num", str(pg))
        elif change.action in ("autoscale-on", "autoscale-off"):
            admin.run("ceph", "osd", "pool", "set", name, "pg_autoscale_mode", change.action.split("-")[1])
        else:
            admin.run("ceph", "osd", "pool", "application", "enable", name, "rbd")
        return
    caps = [word for pair in change.caps for word in pair]
    verb = "get-or-create" if change.action == "create" else "caps"
    admin.run("ceph", "auth", verb, change.entity, *caps)


def _ids(owner: str, group: str) -> tuple[int, int]:
    return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid


def _staged_text(access: HostAccess, changes: list[Change], path: str) -> str:
    """The new content of `path`: its wanted text, or the current one with the INI keys set."""
    files = [c for c in changes if isinstance(c, FileChange) and c.file.path == path]
    if files and files[0].file.text is not None:
        return files[0].file.text
    current = file_state(host_path(access, path))
    text = current.content if current is not None else ""
    settings = {(c.section, c.key): c.value for c in changes if isinstance(c, IniChange) and c.ini.path == path}
    return set_keys(text, settings) if settings else text


def _owner_mode(access: HostAccess, changes: list[Change], path: str) -> tuple[str, str, int]:
    for c in changes:
        if isinstance(c, FileChange) and c.file.path == path:
            return c.file.owner, c.file.group, c.file.mode
    current = file_state(host_path(access, path))
    if current is not None:  # an INI file hakeeper only edits keys in keeps its owner and mode
        return current.owner, current.group, current.mode
    ini = next(c.ini for c in changes if isinstance(c, IniChange) and c.ini.path == path)
    return ini.owner, ini.group, ini.mode


def apply_host(access: HostAccess, changes: list[Change], interrupt: Callable[[str], None] | None = None) -> None:
    """Every file change of one host, or none: staged first, renamed last. Raises with the reason."""
    paths = list(dict.fromkeys(c.file.path if isinstance(c, FileChange) else c.ini.path
                               for c in changes if isinstance(c, FileChange | IniChange)))
    staged: list[tuple[str, Path]] = []
    try:
        for path in paths:
            owner, group, mode = _owner_mode(access, changes, path)
            try:
                uid, gid = _ids(owner, group)
            except KeyError:
                raise RuntimeError(f"{path}: unix user or group {owner}:{group} does not exist on this host") from None
            target = host_path(access, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.hk-")
            staged.append((tmp, target))
            # Owner and mode before the content: a keyring is never readable by others, even staged.
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(_staged_text(access, changes, path))
                f.flush()
                os.fsync(f.fileno())
            if interrupt is not None:
                interrupt(path)
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    for c in changes:
        if isinstance(c, SecretChange):
            define_secret(access, c)


def define_secret(access: HostAccess, change: SecretChange) -> None:
    """virsh secret-define from the XML written on the host, then its value, never on a command line."""
    xml = host_path(access, "/etc/ceph/hakeeper-libvirt-secret.xml")
    out = subprocess.run(in_host(access, ["virsh", "-q", "-c", "qemu:///system", "secret-define", "--file",
                                          str(xml)]), capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"virsh secret-define: {out.stderr.strip()}")


def apply(wiring: Wiring, admin: Admin, secret_uuid: str, record_uuid: bool,
          interrupt: Callable[[str], None] | None = None) -> Outcome:
    first = survey(wiring, admin, secret_uuid)  # the cluster is reachable and the hosts readable
    if record_uuid:
        write_state(wiring.state, secret_uuid)
    applied: list[str] = []
    for change in first.plan.changes:
        if isinstance(change, PoolChange | UserChange):
            try:
                apply_cluster_change(admin, change)
            except RuntimeError as exc:
                raise InputError.at(f"Ceph refused `{change.describe()}`: {exc}", field="storage") from None
            applied.append(change.describe())
    # Again, with the keys of the users just created.
    second = survey(wiring, admin, secret_uuid)
    failed: dict[str, str] = {}
    for host in second.plan.hosts():
        changes = second.plan.for_host(host)
        try:
            apply_host(wiring.hosts[host], changes, interrupt)
            _set_secret_values(wiring.hosts[host], changes, second.keys)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            failed[host] = str(exc)
            continue
        applied += [f"{host}: {c.describe()}" for c in changes]
    return Outcome(applied, failed, list(second.plan.notes))


def _set_secret_values(access: HostAccess, changes: list[Change], keys: dict[str, str]) -> None:
    for c in changes:
        if not isinstance(c, SecretChange):
            continue
        with tempfile.NamedTemporaryFile("w", prefix="hk-secret-") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(keys[c.entity])
            f.flush()
            out = subprocess.run(in_host(access, ["virsh", "-q", "-c", "qemu:///system", "secret-set-value",
                                                  "--secret", c.uuid, "--file", f.name]),
                                 capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"virsh secret-set-value {c.uuid}: {out.stderr.strip()}")


def describe_plan(p: Plan) -> list[str]:
    lines = []
    cluster = p.for_host(None)
    if cluster:
        lines.append("cluster:")
        lines += [f"  {c.describe()}" for c in cluster]
    for host in p.hosts():
        lines.append(f"{host}:")
        lines += [f"  {c.describe()}" for c in p.for_host(host)]
    for host, note in p.notes:
        lines.append(f"note: {host}: {note}")
    return lines

