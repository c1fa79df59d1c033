"""What the Ceph wiring should be, what it is, and the typed changes between them (pure).

`desired()` turns the checked storage section (model.Wiring), the cluster's id and monitors, the
cephx keys that exist and the libvirt secret's UUID into the wanted state; `plan()` compares it
with the observed state and returns the changes, cluster-wide first (pools, users), then per host
(files with owner and mode, INI keys, the libvirt secret). Applying them and observing again gives
an empty plan; a capability edited by hand or a keyring with the wrong owner comes back as a change.
Keys are carried to the shell that writes them, never shown: `describe()` says only which key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hakeeper.ceph.caps import normalize
from hakeeper.ceph.ini import read_keys
from hakeeper.ceph.model import Identity, Wiring

CEPH_CONF = "/etc/ceph/ceph.conf"
SECRET_XML = "/etc/ceph/hakeeper-libvirt-secret.xml"
CINDER_DROPIN = "/etc/systemd/system/cinder-volume.service.d/hakeeper-ceph.conf"
SERVICE_CONF = {"glance": "/etc/glance/glance-api.conf", "cinder": "/etc/cinder/cinder.conf",
                "nova": "/etc/nova/nova.conf"}
CINDER_BACKEND = "ceph"


def keyring_path(user: str) -> str:
    return f"/etc/ceph/ceph.client.{user}.keyring"


def keyring_text(entity: str, key: str) -> str:
    return f"[{entity}]\n\tkey = {key}\n"


# ----- state -----

@dataclass(frozen=True)
class ClusterFacts:
    fsid: str
    mon_host: str


@dataclass(frozen=True)
class PoolState:
    pg_num: int
    autoscale: bool
    rbd: bool  # the rbd application is enabled


@dataclass(frozen=True)
class UserState:
    key: str
    caps: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FileState:
    content: str
    owner: str
    group: str
    mode: int


@dataclass(frozen=True)
class HostState:
    files: Mapping[str, FileState | None]  # path as on the host -> its state, None if missing
    # libvirt's secrets (uuid -> base64 value, None if unset); None when virsh cannot reach libvirt.
    libvirt: Mapping[str, str | None] | None = None


@dataclass(frozen=True)
class Observed:
    pools: Mapping[str, PoolState]
    users: Mapping[str, UserState]
    hosts: Mapping[str, HostState]


@dataclass(frozen=True)
class WantFile:
    path: str
    owner: str
    group: str
    mode: int
    text: str | None  # None: the keyring of `key_of`, whose key exists only once the user is created
    key_of: str | None = None
    secret: bool = False


@dataclass(frozen=True)
class WantIni:
    path: str
    settings: Mapping[tuple[str, str], str]
    owner: str  # used when the file has to be created
    group: str
    mode: int


@dataclass(frozen=True)
class WantHost:
    files: tuple[WantFile, ...]
    inis: tuple[WantIni, ...]
    secret: tuple[str, str] | None  # (uuid, entity whose key libvirt holds)


@dataclass(frozen=True)
class Desired:
    pools: Mapping[str, int | Literal["autoscale"]]
    users: Mapping[str, tuple[tuple[str, str], ...]]
    hosts: Mapping[str, WantHost]
    secret_uuid: str


# ----- changes -----

@dataclass(frozen=True)
class PoolChange:
    pool: str
    action: Literal["create", "set-pg-num", "autoscale-on", "autoscale-off", "enable-rbd"]
    pg_num: int | Literal["autoscale"]
    host: None = None

    def describe(self) -> str:
        return {"create": f"create pool {self.pool} (pg-num {self.pg_num}), application rbd",
                "set-pg-num": f"set pool {self.pool} pg_num {self.pg_num}",
                "autoscale-on": f"turn the PG autoscaler on for pool {self.pool}",
                "autoscale-off": f"turn the PG autoscaler off for pool {self.pool}",
                "enable-rbd": f"enable application rbd on pool {self.pool}"}[self.action]


@dataclass(frozen=True)
class UserChange:
    entity: str
    action: Literal["create", "set-caps"]
    caps: tuple[tuple[str, str], ...]
    had: tuple[tuple[str, str], ...] = ()
    host: None = None

    def describe(self) -> str:
        want = " ".join(f"{s} '{c}'" for s, c in self.caps)
        if self.action == "create":
            return f"create {self.entity} with {want}"
        return f"set caps of {self.entity} to {want} (now: {' '.join(f'{s} {c!r}' for s, c in self.had) or 'none'})"


@dataclass(frozen=True)
class FileChange:
    host: str
    file: WantFile
    reasons: tuple[str, ...]

    def describe(self) -> str:
        f = self.file
        what = f"key of {f.key_of}" if f.key_of else "content"
        head = f"write {f.path} ({what}) {f.owner}:{f.group} {f.mode:04o}: {', '.join(self.reasons)}"
        if f.secret or f.text is None or not {"missing", "content differs"} & set(self.reasons):
            return head
        return head + "".join(f"\n    | {line}" for line in f.text.splitlines())


@dataclass(frozen=True)
class IniChange:
    host: str
    ini: WantIni
    section: str
    key: str
    value: str
    had: str | None

    def describe(self) -> str:
        was = "unset" if self.had is None else repr(self.had)
        return f"set [{self.section}] {self.key} = {self.value} in {self.ini.path} (now {was})"


@dataclass(frozen=True)
class SecretChange:
    host: str
    uuid: str
    entity: str

    def describe(self) -> str:
        return f"define libvirt secret {self.uuid} holding the key of {self.entity}"


Change = PoolChange | UserChange | FileChange | IniChange | SecretChange


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    notes: tuple[tuple[str, str], ...] = field(default=())  # (host, note): what hakeeper cannot do there

    def for_host(self, host: str | None) -> list[Change]:
        return [c for c in self.changes if c.host == host]

    def hosts(self) -> list[str]:
        return sorted({c.host for c in self.changes if c.host is not None})


# ----- desired state -----

def client_conf_settings(facts: ClusterFacts) -> dict[tuple[str, str], str]:
    return {("global", "fsid"): facts.fsid, ("global", "mon_host"): facts.mon_host}


def service_settings(ident: Identity, secret_uuid: str) -> dict[tuple[str, str], str]:
    if ident.service == "glance":
        return {("DEFAULT", "show_image_direct_url"): "True", ("glance_store", "stores"): "rbd",
                ("glance_store", "default_store"): "rbd", ("glance_store", "rbd_store_pool"): ident.pool,
                ("glance_store", "rbd_store_user"): ident.user, ("glance_store", "rbd_store_ceph_conf"): CEPH_CONF}
    if ident.service == "cinder":
        b = CINDER_BACKEND
        return {("DEFAULT", "enabled_backends"): b, (b, "volume_driver"): "cinder.volume.drivers.rbd.RBDDriver",
                (b, "volume_backend_name"): b, (b, "rbd_pool"): ident.pool, (b, "rbd_user"): ident.user,
                (b, "rbd_ceph_conf"): CEPH_CONF, (b, "rbd_secret_uuid"): secret_uuid}
    return {("libvirt", "images_type"): "rbd", ("libvirt", "images_rbd_pool"): ident.pool,
            ("libvirt", "images_rbd_ceph_conf"): CEPH_CONF, ("libvirt", "rbd_user"): ident.user,
            ("libvirt", "rbd_secret_uuid"): secret_uuid}


def secret_xml(uuid: str, entity: str) -> str:
    return (f"<secret ephemeral='no' private='no'>\n  <uuid>{uuid}</uuid>\n  <usage type='ceph'>\n"
            f"    <name>{entity} secret</name>\n  </usage>\n</secret>\n")


def desired(wiring: Wiring, facts: ClusterFacts, keys: Mapping[str, str], secret_uuid: str) -> Desired:
    hosts: dict[str, tuple[list[WantFile], list[WantIni], tuple[str, str] | None]] = {}
    for ident in wiring.identities:
        key = keys.get(ident.entity)
        for h in ident.hosts:
            files, inis, secret = hosts.setdefault(h, ([], [], None))
            if not any(i.path == CEPH_CONF for i in inis):
                inis.append(WantIni(CEPH_CONF, client_conf_settings(facts), "root", "root", 0o644))
            files.append(WantFile(keyring_path(ident.user), ident.unix_user, ident.unix_user, 0o600,
                                  None if key is None else keyring_text(ident.entity, key),
                                  key_of=ident.entity, secret=True))
            inis.append(WantIni(SERVICE_CONF[ident.service], service_settings(ident, secret_uuid),
                                "root", ident.unix_user, 0o640))
            if ident.service == "cinder":
                files.append(WantFile(CINDER_DROPIN, "root", "root", 0o644,
                                      f"[Service]\nEnvironment=CEPH_ARGS=--id {ident.user}\n"))
            if ident.service == "nova":
                files.append(WantFile(SECRET_XML, "root", "root", 0o644, secret_xml(secret_uuid, ident.entity)))
                secret = (secret_uuid, ident.entity)
            hosts[h] = (files, inis, secret)
    return Desired(
        pools=dict(wiring.pools),
        users={i.entity: i.caps for i in wiring.identities},
        hosts={h: WantHost(tuple(f), tuple(i), s) for h, (f, i, s) in sorted(hosts.items())},
        secret_uuid=secret_uuid,
    )


# ----- the diff -----

def _caps_equal(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> bool:
    return {s: normalize(c) for s, c in a} == {s: normalize(c) for s, c in b}


def _pool_changes(want: Mapping[str, int | Literal["autoscale"]], have: Mapping[str, PoolState]) -> list[Change]:
    out: list[Change] = []
    for name, pg in want.items():
        state = have.get(name)
        if state is None:
            out.append(PoolChange(name, "create", pg))
            continue
        if pg == "autoscale" and not state.autoscale:
            out.append(PoolChange(name, "autoscale-on", pg))
        if pg != "autoscale":
            if state.autoscale:
                out.append(PoolChange(name, "autoscale-off", pg))
            if state.pg_num != pg:
                out.append(PoolChange(name, "set-pg-num", pg))
        if not state.rbd:
            out.append(PoolChange(name, "enable-rbd", pg))
    return out


def _file_reasons(want: WantFile, have: FileState | None) -> tuple[str, ...]:
    if have is None:
        return ("missing",)
    reasons = []
    if want.text is not None and have.content != want.text:
        reasons.append("content differs")
    if (have.owner, have.group) != (want.owner, want.group):
        reasons.append(f"owner {have.owner}:{have.group}")
    if have.mode != want.mode:
        reasons.append(f"mode {have.mode:04o}")
    return tuple(reasons)


def _host_changes(name: str, want: WantHost, have: HostState) -> tuple[list[Change], list[tuple[str, str]]]:
    out: list[Change] = []
    notes: list[tuple[str, str]] = []
    for f in want.files:
        reasons = _file_reasons(f, have.files.get(f.path))
        if reasons:
            out.append(FileChange(name, f, reasons))
    for ini in want.inis:
        state = have.files.get(ini.path)
        current = read_keys(state.content) if state is not None else {}
        for (section, key), value in ini.settings.items():
            if current.get((section, key)) != value:
                out.append(IniChange(name, ini, section, key, value, current.get((section, key))))
    if want.secret is not None:
        uuid, entity = want.secret
        if have.libvirt is None:
            notes.append((name, f"libvirt is not reachable here: define the secret from {SECRET_XML} with "
                                f"virsh secret-define, then virsh secret-set-value {uuid} with {entity}'s key"))
        elif uuid not in have.libvirt or have.libvirt[uuid] is None:
            out.append(SecretChange(name, uuid, entity))
    return out, notes


def plan(want: Desired, have: Observed, keys: Mapping[str, str]) -> Plan:
    """The changes that turn `have` into `want`. `keys` are the cephx keys as observed, to tell a
    libvirt secret holding a stale key from a current one."""
    changes: list[Change] = _pool_changes(want.pools, have.pools)
    for entity, caps in want.users.items():
        user = have.users.get(entity)
        if user is None:
            changes.append(UserChange(entity, "create", caps))
        elif not _caps_equal(user.caps, caps):
            changes.append(UserChange(entity, "set-caps", caps, user.caps))
    notes: list[tuple[str, str]] = []
    for name, host_want in want.hosts.items():
        host_have = have.hosts.get(name, HostState({}))
        more, more_notes = _host_changes(name, host_want, host_have)
        if host_want.secret is not None and host_have.libvirt is not None:
            uuid, entity = host_want.secret
            value = host_have.libvirt.get(uuid)
            if value is not None and entity in keys and value != keys[entity]:
                more.append(SecretChange(name, uuid, entity))
        changes += more
        notes += more_notes
    return Plan(tuple(changes), tuple(notes))
