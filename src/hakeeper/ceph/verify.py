"""Checking the wiring by using it: each service's cephx identity, as the service would use it.

For every host, the service's own configuration file is read (glance-api.conf's rbd_store_*,
cinder.conf's rbd_*, nova.conf's [libvirt] rbd_*) and the `rbd` tool is run inside the host's
namespace as the service's unix user, with the ceph.conf and the keyring those settings name:

- Glance's identity writes an image into its pool, reads it back byte for byte, and snapshots and
  protects it as Glance does; it is refused writing into the volumes pool.
- Cinder's identity (the id in cinder-volume's CEPH_ARGS, which must equal rbd_user) creates and
  deletes a volume, clones Glance's snapshot copy-on-write (the reason for show_image_direct_url)
  and reads the image's bytes through the clone; it is refused writing into the images pool.
- Nova's identity clones the snapshot into its pool and is refused writing into the images pool.
- Keyrings: owned by the service's user, mode without group/other bits, readable by that user
  and refused to `nobody`.
- The libvirt secret's UUID (the XML on each compute and, where libvirt runs, the defined secret
  holding the key) equals nova.conf's and cinder.conf's rbd_secret_uuid and hakeeper's record.

A failed check names the host, the file and the setting. Everything created is removed as admin
afterwards, whatever happened.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from hakeeper.ceph.ini import read_keys
from hakeeper.ceph.model import HostAccess, Identity, Wiring
from hakeeper.ceph.observe import Admin, file_state, host_path, in_host, libvirt_secrets, users
from hakeeper.ceph.plan import CINDER_DROPIN, SECRET_XML, SERVICE_CONF, keyring_path

PAYLOAD = 256 * 1024
REFUSED = re.compile(r"not permitted|denied|EPERM|EACCES|\(1\)|\(13\)", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    host: str
    file: str
    setting: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.host}: {self.file}: {self.setting}: {self.detail}"


@dataclass(frozen=True)
class Client:
    """How a service reaches Ceph, as its configuration says, on one host."""

    host: str
    access: HostAccess
    unix_user: str
    ceph_conf: str
    user: str

    def rbd(self, *args: str, stdin: bytes | None = None,
            as_user: str | None = None) -> subprocess.CompletedProcess[bytes]:
        argv = ["rbd", "-c", str(host_path(self.access, self.ceph_conf)), "--id", self.user, "--keyring",
                str(host_path(self.access, keyring_path(self.user))), *args]
        return run_as(self.access, as_user or self.unix_user, argv, stdin)


def run_as(access: HostAccess, unix_user: str, argv: Sequence[str],
           stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid", unix_user, "--regid", unix_user, "--init-groups", "--", *argv]
    return subprocess.run(in_host(access, argv), input=stdin, capture_output=True, timeout=120)


class Verifier:
    def __init__(self, wiring: Wiring, admin: Admin, secret_uuid: str) -> None:
        self.wiring = wiring
        self.admin = admin
        self.secret_uuid = secret_uuid
        self.checks: list[Check] = []
        self.made: list[str] = []  # pool/image created here, removed at the end
        self.payload = os.urandom(PAYLOAD)
        self.tag = f"hk-verify-{os.getpid()}"
        self.snapshot: str | None = None  # pool/image@snap Glance's identity made

    def check(self, host: str, file: str, setting: str, ok: bool, detail: str) -> bool:
        found = Check(host, file, setting, ok, detail)
        if found not in self.checks:  # a file read for two settings is reported missing once
            self.checks.append(found)
        return ok

    def settings(self, host: str, path: str) -> dict[tuple[str, str], str] | None:
        state = file_state(host_path(self.wiring.hosts[host], path))
        if state is None:
            self.check(host, path, "(file)", False, "missing")
            return None
        return read_keys(state.content)

    def client(self, ident: Identity, host: str, section: str, user_key: str, conf_key: str) -> Client | None:
        path = SERVICE_CONF[ident.service]
        got = self.settings(host, path)
        if got is None:
            return None
        missing = [k for k in (user_key, conf_key) if (section, k) not in got]
        for k in missing:
            self.check(host, path, f"[{section}] {k}", False, "not set")
        if missing:
            return None
        return Client(host, self.wiring.hosts[host], ident.unix_user, got[(section, conf_key)],
                      got[(section, user_key)])

    # ----- keyrings -----

    def keyring(self, c: Client, owner: str) -> bool:
        path = keyring_path(c.user)
        state = file_state(host_path(c.access, path))
        if state is None:
            return self.check(c.host, path, "(file)", False, f"missing: the keyring of client.{c.user}")
        ok = self.check(c.host, path, "owner", state.owner == owner, f"{state.owner}:{state.group}, want {owner}")
        ok &= self.check(c.host, path, "mode", state.mode & 0o077 == 0, f"{state.mode:04o}, want no group/other bits")
        real = str(host_path(c.access, path))
        own = run_as(c.access, owner, ["cat", real])
        ok &= self.check(c.host, path, "readable by", own.returncode == 0, f"{owner} can read it"
                         if own.returncode == 0 else f"{owner} cannot read it")
        other = run_as(c.access, "nobody", ["cat", real])
        return ok & self.check(c.host, path, "readable by", other.returncode != 0,
                               "nobody cannot read it" if other.returncode != 0 else "nobody can read it")

    # ----- identities -----

    def must_work(self, c: Client, file: str, setting: str, what: str, *args: str,
                  stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        out = c.rbd(*args, stdin=stdin)
        err = out.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        self.check(c.host, file, setting, out.returncode == 0, f"client.{c.user} {what}"
                   + ("" if out.returncode == 0 else f" failed: {err[0][:200]}"))
        return out

    def must_be_refused(self, c: Client, file: str, setting: str, what: str, *args: str) -> None:
        out = c.rbd(*args)
        err = out.stderr.decode(errors="replace")
        refused = out.returncode != 0 and bool(REFUSED.search(err))
        if out.returncode == 0:
            self.made.append(args[-1])
        self.check(c.host, file, setting, refused, f"client.{c.user} refused to {what}" if refused else
                   f"client.{c.user} was allowed to {what}" if out.returncode == 0 else
                   f"client.{c.user} failed to {what} for another reason: {err.strip()[-200:]}")

    def glance(self, ident: Identity, host: str, others: Sequence[str]) -> None:
        c = self.client(ident, host, "glance_store", "rbd_store_user", "rbd_store_ceph_conf")
        got = self.settings(host, SERVICE_CONF["glance"]) or {}
        pool = got.get(("glance_store", "rbd_store_pool"))
        if c is None or pool is None or not self.keyring(c, ident.unix_user):
            return
        conf = SERVICE_CONF["glance"]
        image = f"{pool}/{self.tag}-image-{host}"
        if self.must_work(c, conf, "[glance_store] rbd_store_pool", f"writes an image in {pool}", "import", "-",
                          image, stdin=self.payload).returncode != 0:
            return
        self.made.append(image)
        back = self.must_work(c, conf, "[glance_store] rbd_store_pool", f"reads it back from {pool}", "export",
                              image, "-")
        self.check(host, conf, "[glance_store] rbd_store_pool", _same(back.stdout, self.payload),
                   "the image read back equals what was written" if _same(back.stdout, self.payload)
                   else "the image read back differs from what was written")
        if (self.must_work(c, conf, "[glance_store] rbd_store_user", "snapshots it", "snap", "create",
                           f"{image}@snap").returncode == 0
                and self.must_work(c, conf, "[glance_store] rbd_store_user", "protects the snapshot", "snap",
                                   "protect", f"{image}@snap").returncode == 0):
            self.snapshot = self.snapshot or f"{image}@snap"
        for other in others:
            self.must_be_refused(c, conf, "[glance_store] rbd_store_user", f"write in pool {other}", "create",
                                 "--size", "1", f"{other}/{self.tag}-refused-{host}")

    def consumer(self, ident: Identity, host: str, section: str, pool_key: str, conf_key: str,
                 images_pool: str | None) -> Client | None:
        """Cinder's or Nova's identity: a volume/disk made and removed, a clone of Glance's snapshot
        read back, and no write into the images pool."""
        c = self.client(ident, host, section, "rbd_user", conf_key)
        got = self.settings(host, SERVICE_CONF[ident.service]) or {}
        pool = got.get((section, pool_key))
        conf = SERVICE_CONF[ident.service]
        if pool is None:
            self.check(host, conf, f"[{section}] {pool_key}", False, "not set")
        if c is None or pool is None or not self.keyring(c, ident.unix_user):
            return c
        setting = f"[{section}] {pool_key}"
        disk = f"{pool}/{self.tag}-{ident.service}-{host}"
        made = self.must_work(c, conf, setting, f"creates an image in {pool}", "create", "--size", "8", disk)
        if made.returncode == 0:
            self.made.append(disk)
            if self.must_work(c, conf, setting, f"deletes it from {pool}", "rm", disk).returncode == 0:
                self.made.remove(disk)
        if self.snapshot is not None:
            clone = f"{disk}-clone"
            if self.must_work(c, conf, setting, f"clones {self.snapshot} into {pool} (copy-on-write)", "clone",
                              self.snapshot, clone).returncode == 0:
                self.made.append(clone)
                back = c.rbd("export", clone, "-")
                same = back.returncode == 0 and _same(back.stdout[: len(self.payload)], self.payload)
                self.check(host, conf, setting, same, "the clone reads the image's bytes through its parent"
                           if same else "the clone does not read back the image's bytes")
                if self.must_work(c, conf, setting, "deletes the clone", "rm", clone).returncode == 0:
                    self.made.remove(clone)
        if images_pool is not None:
            self.must_be_refused(c, conf, f"[{section}] rbd_user", f"write in pool {images_pool}", "create",
                                 "--size", "1", f"{images_pool}/{self.tag}-refused-{ident.service}-{host}")
            if self.snapshot is not None:
                image = self.snapshot.split("@")[0]
                self.must_be_refused(c, conf, f"[{section}] rbd_user", f"snapshot {image}", "snap", "create",
                                     f"{image}@{ident.service}-evil")
        return c

    def cinder_env(self, host: str, c: Client) -> None:
        state = file_state(host_path(c.access, CINDER_DROPIN))
        m = re.search(r"CEPH_ARGS=\"?--id ([A-Za-z0-9_-]+)", state.content) if state else None
        self.check(host, CINDER_DROPIN, "CEPH_ARGS", m is not None and m.group(1) == c.user,
                   f"--id {m.group(1) if m else '(none)'}, cinder.conf rbd_user {c.user}")

    def uuids(self) -> None:
        for ident in self.wiring.identities:
            if ident.service == "glance":
                continue
            section = "libvirt" if ident.service == "nova" else "ceph"
            for host in ident.hosts:
                got = self.settings(host, SERVICE_CONF[ident.service]) or {}
                have = got.get((section, "rbd_secret_uuid"))
                self.check(host, SERVICE_CONF[ident.service], f"[{section}] rbd_secret_uuid",
                           have == self.secret_uuid, f"{have}, libvirt secret {self.secret_uuid}")
                if ident.service == "nova":
                    self.secret(host, ident)

    def secret(self, host: str, ident: Identity) -> None:
        access = self.wiring.hosts[host]
        state = file_state(host_path(access, SECRET_XML))
        m = re.search(r"<uuid>([0-9a-f-]+)</uuid>", state.content) if state else None
        self.check(host, SECRET_XML, "uuid", m is not None and m.group(1) == self.secret_uuid,
                   f"{m.group(1) if m else 'missing'}, nova.conf/cinder.conf {self.secret_uuid}")
        values = libvirt_secrets(access, [self.secret_uuid])
        if values is None:
            self.check(host, "libvirt", "secret", True, "libvirt not reachable here: the defined secret was "
                       "not checked (its XML was)")
            return
        key = users(self.admin, [ident.entity]).get(ident.entity)
        self.check(host, "libvirt", f"secret {self.secret_uuid}", key is not None and values.get(
            self.secret_uuid) == key.key, f"holds the key of {ident.entity}" if key and values.get(
            self.secret_uuid) == key.key else "missing or holds another key")

    def cleanup(self) -> None:
        for name in reversed(self.made):
            for snap in ("snap", "cinder-evil", "nova-evil"):
                self.admin.run("rbd", "snap", "unprotect", f"{name}@{snap}", check=False)
            self.admin.run("rbd", "snap", "purge", name, check=False)
            self.admin.run("rbd", "rm", "--no-progress", name, check=False)


def _same(a: bytes, b: bytes) -> bool:
    return hashlib.sha256(a).digest() == hashlib.sha256(b).digest()


def verify(wiring: Wiring, admin: Admin, secret_uuid: str) -> list[Check]:
    v = Verifier(wiring, admin, secret_uuid)
    by_service = {i.service: i for i in wiring.identities}
    images_pool = by_service["glance"].pool if "glance" in by_service else None
    try:
        if "glance" in by_service:
            g = by_service["glance"]
            others = sorted({i.pool for i in wiring.identities if i.pool != g.pool})
            for host in g.hosts:
                v.glance(g, host, others)
        if "cinder" in by_service:
            for host in by_service["cinder"].hosts:
                c = v.consumer(by_service["cinder"], host, "ceph", "rbd_pool", "rbd_ceph_conf", images_pool)
                if c is not None:
                    v.cinder_env(host, c)
        if "nova" in by_service:
            for host in by_service["nova"].hosts:
                v.consumer(by_service["nova"], host, "libvirt", "images_rbd_pool", "images_rbd_ceph_conf",
                           images_pool)
        v.uuids()
    finally:
        v.cleanup()
    return v.checks
