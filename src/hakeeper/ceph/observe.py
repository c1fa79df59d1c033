"""Reading the real state: the cluster through the `ceph` CLI, the hosts' files under their roots.

hakeeper talks to Ceph through its command-line tools with `--format json` (see docs/ceph.md for
why not python3-rados). Every call is bounded by a timeout; a cluster that cannot be reached is the
operator's problem to fix, reported as an InputError naming the storage.cluster settings (exit 2).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hakeeper.ceph.model import HostAccess, Wiring
from hakeeper.ceph.plan import (
    ClusterFacts,
    Desired,
    FileState,
    HostState,
    Observed,
    Plan,
    PoolState,
    UserState,
    desired,
    plan,
)
from hakeeper.errors import InputError

TIMEOUT = 120  # a loaded machine's ceph CLI can take many seconds to start


class CephCommandError(RuntimeError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv[:4])}: exit {returncode}: {stderr.strip()[-400:]}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Admin:
    """The ceph CLI as client.admin, from the machine (namespace) hakeeper runs in."""

    conf: str
    keyring: str

    connect_timeout: int = 30

    def argv(self, tool: str, args: Sequence[str]) -> list[str]:
        # Only the ceph tool takes a connect timeout; rados/rbd are bounded by the subprocess timeout.
        bound = ["--connect-timeout", str(self.connect_timeout)] if tool == "ceph" else []
        return [tool, "-c", self.conf, "-n", "client.admin", "--keyring", self.keyring, *bound, *args]

    def run(self, tool: str, *args: str, check: bool = True, stdin: str | None = None) -> str:
        argv = self.argv(tool, args)
        try:
            out = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise InputError.at(f"the Ceph cluster did not answer `{tool} {' '.join(args[:3])}` within "
                                f"{TIMEOUT}s: is it reachable?", file=self.conf, field="storage.cluster") from None
        except FileNotFoundError:
            raise InputError.at(f"`{tool}` is not installed (Debian package ceph-common)",
                                field="storage.cluster") from None
        if check and out.returncode != 0:
            raise CephCommandError([tool, *args], out.returncode, out.stderr)
        return out.stdout

    def json(self, *args: str) -> Any:
        text = self.run("ceph", *args, "--format", "json")
        return json.loads(text) if text.strip() else None


def admin_for(wiring: Wiring) -> Admin:
    for path, field in ((wiring.cluster.conf, "storage.cluster.conf"), (wiring.cluster.keyring,
                                                                          "storage.cluster.keyring")):
        if not os.access(path, os.R_OK):
            raise InputError.at("cannot read it (the cluster's ceph.conf and client.admin keyring are needed)",
                                file=path, field=field)
    return Admin(wiring.cluster.conf, wiring.cluster.keyring)


def cluster_facts(admin: Admin) -> ClusterFacts:
    try:
        dump = admin.json("mon", "dump")
    except CephCommandError as exc:
        raise InputError.at(f"cannot reach the Ceph cluster: {exc}", file=admin.conf,
                            field="storage.cluster") from None
    hosts = []
    for mon in dump["mons"]:
        addrs = ",".join(f"{a['type']}:{a['addr']}" for a in mon["public_addrs"]["addrvec"])
        hosts.append(f"[{addrs}]")
    return ClusterFacts(dump["fsid"], ",".join(hosts))


def pools(admin: Admin) -> dict[str, PoolState]:
    out = {}
    for p in admin.json("osd", "pool", "ls", "detail"):
        target = int(p.get("pg_num_target", p["pg_num"]))
        out[p["pool_name"]] = PoolState(target, p.get("pg_autoscale_mode") == "on",
                                        "rbd" in (p.get("application_metadata") or {}))
    return out


def users(admin: Admin, entities: Sequence[str]) -> dict[str, UserState]:
    """The cephx users among `entities` that exist (one `auth ls`: each call is a process)."""
    wanted = set(entities)
    out = {}
    for entry in admin.json("auth", "ls")["auth_dump"]:
        if entry["entity"] in wanted:
            out[entry["entity"]] = UserState(entry["key"], tuple(sorted(entry.get("caps", {}).items())))
    return out


def host_path(access: HostAccess, path: str) -> Path:
    """`path` as seen on the host, from here: under the host's root."""
    return Path(access.root) / path.lstrip("/")


def file_state(path: Path) -> FileState | None:
    try:
        st = path.stat()
        content = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return FileState(content, _name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid), st.st_mode & 0o7777)


def _name(lookup: Any, ident: int) -> str:
    try:
        return str(lookup(ident)[0])
    except KeyError:
        return str(ident)


def in_host(access: HostAccess, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", access.netns, *argv] if access.netns else list(argv)


def libvirt_secrets(access: HostAccess, uuids: Sequence[str]) -> dict[str, str | None] | None:
    """libvirt's values for `uuids` on the host, or None when virsh cannot reach a libvirt daemon."""
    if shutil.which("virsh") is None:
        return None
    listed = _virsh(access, ["secret-list", "--uuid"])
    if listed is None:
        return None
    out: dict[str, str | None] = {}
    for u in uuids:
        if u in listed.split():
            value = _virsh(access, ["secret-get-value", u])
            out[u] = value.strip() if value else None
    return out


def _virsh(access: HostAccess, args: Sequence[str]) -> str | None:
    try:
        out = subprocess.run(in_host(access, ["virsh", "-q", "-c", "qemu:///system", *args]),
                             capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return None
    return out.stdout if out.returncode == 0 else None


def secret_uuid(state_path: str) -> str | None:
    try:
        data = json.loads(Path(state_path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError.at(f"cannot read hakeeper's Ceph state: {exc}", file=state_path,
                            field="storage.state") from None
    value = data.get("secret_uuid") if isinstance(data, dict) else None
    try:
        return str(uuidlib.UUID(str(value))) if value else None
    except ValueError:
        raise InputError.at("secret_uuid is not a UUID", file=state_path, field="secret_uuid") from None


@dataclass(frozen=True)
class Survey:
    """What is wanted, what is, and the plan between them, from one look at the cluster and hosts."""

    want: Desired
    have: Observed
    keys: dict[str, str]
    plan: Plan


def survey(wiring: Wiring, admin: Admin, secret_uuid: str) -> Survey:
    facts = cluster_facts(admin)
    found = users(admin, [i.entity for i in wiring.identities])
    keys = {e: u.key for e, u in found.items()}
    want = desired(wiring, facts, keys, secret_uuid)
    hosts = {}
    for name, wh in want.hosts.items():
        access = wiring.hosts[name]
        paths = [f.path for f in wh.files] + [i.path for i in wh.inis]
        files = {p: file_state(host_path(access, p)) for p in paths}
        secrets = libvirt_secrets(access, [wh.secret[0]]) if wh.secret else None
        hosts[name] = HostState(files, secrets)
    have = Observed(pools(admin), found, hosts)
    return Survey(want, have, keys, plan(want, have, keys))
