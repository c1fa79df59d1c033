"""Ceph's edge, through the `rados` and `rbd` command-line tools (ceph-common): a backup stored
as RADOS objects in a backup pool, and the RBD images a consistency check compares with the
database.

A backup in Ceph is its directory as one uncompressed tar, cut into objects of CHUNK bytes
(`<id>/part.00000`, ...; RADOS refuses objects beyond osd_max_object_size, 128 MiB by default),
plus `<id>/manifest.json` so `list` reads manifests without fetching data. The manifest object is
written last: a backup whose upload was interrupted has no manifest and is not listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from dataclasses import dataclass

from hakeeper.backup.manifest import MANIFEST, Manifest, parse_manifest
from hakeeper.errors import InputError

CHUNK = 64 * 1024 * 1024


@dataclass(frozen=True)
class CephTarget:
    pool: str
    conf: str | None = None
    user: str | None = None  # cephx id, e.g. "backup" for client.backup
    keyring: str | None = None

    def args(self) -> list[str]:
        out = []
        if self.conf:
            out += ["-c", self.conf]
        if self.user:
            out += ["--id", self.user]
        if self.keyring:
            out += ["--keyring", self.keyring]
        return out

    def where(self) -> str:
        return f"ceph:{self.pool}"


def parse_destination(text: str) -> str | tuple[str, str | None]:
    """A directory, or ("pool", backup id or None) for `ceph:POOL[/ID]`."""
    if not text.startswith("ceph:"):
        return text
    pool, _, backup_id = text[5:].partition("/")
    if not pool:
        raise InputError.at("ceph:POOL[/ID] names no pool", field=text)
    return pool, backup_id or None


def _tool(target: CephTarget, tool: str, args: list[str], data: bytes | None = None,
          timeout: float = 600) -> bytes:
    argv = [tool, *target.args(), *args]
    try:
        out = subprocess.run(argv, input=data, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise InputError.at(f"`{tool}` is not installed (Debian package ceph-common)", field=target.where()) from None
    except subprocess.TimeoutExpired:
        raise InputError.at(f"{tool} {args[0]}: no answer in {timeout:g}s (is the cluster reachable?)",
                            field=target.where()) from None
    if out.returncode != 0:
        err = out.stderr.decode(errors="replace").strip().splitlines()
        raise InputError.at(f"{tool} {' '.join(args[:3])}: {(err[-1] if err else 'failed')[-300:]}",
                            field=target.where())
    return out.stdout


def rados(target: CephTarget, *args: str, data: bytes | None = None) -> bytes:
    return _tool(target, "rados", ["-p", target.pool, *args], data)


def rbd_images(target: CephTarget, pool: str) -> list[str]:
    return [str(n) for n in json.loads(_tool(target, "rbd", ["ls", "-p", pool, "--format", "json"]) or b"[]")]


def upload(target: CephTarget, backup_dir: str, backup_id: str, staging: str) -> int:
    """The backup directory into the pool; returns the number of data objects."""
    tar_path = os.path.join(staging, f"{backup_id}.tar")
    with tarfile.open(tar_path, "w") as tar:
        tar.add(backup_dir, arcname=backup_id)
    parts = 0
    try:
        with open(tar_path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                rados(target, "put", f"{backup_id}/part.{parts:05d}", "-", data=chunk)
                parts += 1
    finally:
        os.unlink(tar_path)
    with open(os.path.join(backup_dir, MANIFEST), "rb") as fh:
        rados(target, "put", f"{backup_id}/{MANIFEST}", "-", data=fh.read())
    return parts


def objects(target: CephTarget) -> list[str]:
    return sorted(rados(target, "ls").decode().split())


def manifests(target: CephTarget) -> list[tuple[str, Manifest]]:
    found = []
    for name in objects(target):
        backup_id, _, rest = name.partition("/")
        if rest == MANIFEST:
            found.append((f"ceph:{target.pool}/{backup_id}",
                          parse_manifest(rados(target, "get", name, "-").decode(), f"{target.where()}/{name}")))
    return found


def download(target: CephTarget, backup_id: str, staging: str) -> str:
    """The backup's objects into `staging/<id>` (for verify and restore, which read directories)."""
    names = objects(target)
    if f"{backup_id}/{MANIFEST}" not in names:
        raise InputError.at("no such backup (or its upload did not finish)", file=f"{target.where()}/{backup_id}")
    parts = sorted(n for n in names if n.startswith(f"{backup_id}/part."))
    tar_path = os.path.join(staging, f"{backup_id}.tar")
    with open(tar_path, "wb") as fh:
        for name in parts:
            fh.write(rados(target, "get", name, "-"))
    with tarfile.open(tar_path) as tar:
        tar.extractall(staging, filter="data")
    os.unlink(tar_path)
    return os.path.join(staging, backup_id)
