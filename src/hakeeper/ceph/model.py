"""The storage section of a controller profile: Ceph pools and which hosts run the RBD clients.

    storage:
      cluster: {conf: /etc/ceph/ceph.conf, keyring: /etc/ceph/ceph.client.admin.keyring}
      state: /var/lib/hakeeper/ceph-state.json     # the libvirt secret's UUID, made once
      pools:
        volumes: {pg-num: 128}
        images: {pg-num: 128}
        vms: {pg-num: autoscale}
      computes:
        - {name: compute1, address: 10.0.0.31}
      glance: {hosts: [controller01]}                # glance-api: client.images, pool images
      cinder: {hosts: [controller01]}                # cinder-volume: client.volumes, pool volumes
      nova: {hosts: [compute1]}                      # nova-compute: client.nova, pool vms
      hosts:                                         # where a host's / is, and its namespace
        controller01: {root: /, netns: null}

The rest of the file is the controller profile (`hakeeper.openstack.profile`), read and checked by
the same reader, so every error names the file, the line and the field. Each service may override
its pool, its cephx user, its unix user and its capabilities; the defaults are seed 001's
(`client.volumes` and `client.images` with its capabilities) and, for Nova, the current upstream
`profile rbd` grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from hakeeper.ceph.caps import cap_problem
from hakeeper.errors import InputError, Problem
from hakeeper.names import Name
from hakeeper.openstack.profile import Controller, Profile, ProfileModel, resolve
from hakeeper.yamlsource import Path_, YamlDocument, load_yaml, parse_yaml

# What Ceph accepts and what stays harmless in a file name and a config line.
_CEPH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
MAX_PG = 32768


def _ceph_name(value: str) -> str:
    if not _CEPH_NAME.match(value):
        raise ValueError(f"{value[:40]!r} is not a name Ceph accepts here: 1-63 letters, digits, '_' or '-', "
                         "starting with a letter or digit")
    return value


def _unix_user(value: str) -> str:
    if not _UNIX_USER.match(value):
        raise ValueError(f"{value[:40]!r} is not a unix user name")
    return value


def _absolute(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or "/../" in value + "/":
        raise ValueError(f"{value[:60]!r} is not an absolute path without spaces or '..'")
    return value


CephName = Annotated[str, AfterValidator(_ceph_name)]
UnixUser = Annotated[str, AfterValidator(_unix_user)]
AbsPath = Annotated[str, AfterValidator(_absolute)]
ServiceName = Literal["glance", "cinder", "nova"]
SERVICES: tuple[ServiceName, ...] = ("glance", "cinder", "nova")


class Pool(ProfileModel):
    # A power of two (Ceph warns POOL_PG_NUM_NOT_POWER_OF_TWO otherwise), or the autoscaler's choice.
    pg_num: int | Literal["autoscale"] = "autoscale"

    @field_validator("pg_num")
    @classmethod
    def _power_of_two(cls, n: int | str) -> int | str:
        if isinstance(n, int) and (n < 1 or n > MAX_PG or n & (n - 1)):
            raise ValueError(f"{n} is not a power of two between 1 and {MAX_PG} (or 'autoscale')")
        return n


class Caps(ProfileModel):
    mon: str
    osd: str
    mgr: str | None = None

    @model_validator(mode="after")
    def _parsable(self) -> Caps:
        for service in ("mon", "osd", "mgr"):
            cap = getattr(self, service)
            if cap is not None and (problem := cap_problem(service, cap)) is not None:
                raise ValueError(f"{service} capability: {problem}")
        return self

    def as_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((s, c) for s, c in (("mon", self.mon), ("osd", self.osd), ("mgr", self.mgr)) if c is not None)


class ServiceWiring(ProfileModel):
    hosts: list[Name] = Field(default_factory=list)
    pool: CephName | None = None
    user: CephName | None = None  # the cephx id (client.<user>)
    unix_user: UnixUser | None = None  # who owns the keyring on the host
    caps: Caps | None = None


class HostAccess(ProfileModel):
    root: AbsPath = "/"
    netns: Name | None = None


class ClusterAccess(ProfileModel):
    conf: AbsPath = "/etc/ceph/ceph.conf"
    keyring: AbsPath = "/etc/ceph/ceph.client.admin.keyring"


class Storage(ProfileModel):
    cluster: ClusterAccess = Field(default_factory=ClusterAccess)
    state: AbsPath = "/var/lib/hakeeper/ceph-state.json"
    pools: dict[CephName, Pool] = Field(min_length=1)
    computes: list[Controller] = Field(default_factory=list)
    glance: ServiceWiring = Field(default_factory=ServiceWiring)
    cinder: ServiceWiring = Field(default_factory=ServiceWiring)
    nova: ServiceWiring = Field(default_factory=ServiceWiring)
    hosts: dict[Name, HostAccess] = Field(default_factory=dict)


class WiredProfile(Profile):
    storage: Storage


# ----- the checked result the planner works from -----

@dataclass(frozen=True)
class Identity:
    """One service's wiring, defaults filled in."""

    service: ServiceName
    hosts: tuple[str, ...]
    pool: str
    user: str
    unix_user: str
    caps: tuple[tuple[str, str], ...]

    @property
    def entity(self) -> str:
        return f"client.{self.user}"


@dataclass(frozen=True)
class Wiring:
    pools: dict[str, int | Literal["autoscale"]]
    identities: tuple[Identity, ...]
    hosts: dict[str, HostAccess]  # every controller and compute
    cluster: ClusterAccess
    state: str

    def identity(self, service: ServiceName) -> Identity:
        return next(i for i in self.identities if i.service == service)


DEFAULT_POOLS: dict[ServiceName, str] = {"glance": "images", "cinder": "volumes", "nova": "vms"}
DEFAULT_USERS: dict[ServiceName, str] = {"glance": "images", "cinder": "volumes", "nova": "nova"}


def default_caps(service: ServiceName, pools: dict[ServiceName, str]) -> tuple[tuple[str, str], ...]:
    """Seed 001's grants for Glance and Cinder; upstream's `profile rbd` grants for Nova."""
    images, volumes, vms = pools["glance"], pools["cinder"], pools["nova"]
    if service == "glance":
        return (("mon", "allow r"), ("osd", f"allow class-read object_prefix rbd_children, allow rwx pool={images}"))
    if service == "cinder":
        return (("mon", "allow r"), ("osd", f"allow class-read object_prefix rbd_children, allow rwx pool={volumes}, "
                                            f"allow rx pool={images}"))
    return (("mon", "profile rbd"),
            ("osd", f"profile rbd pool={vms}, profile rbd pool={volumes}, profile rbd-read-only pool={images}"),
            ("mgr", f"profile rbd pool={vms}"))


def wiring_problems(p: WiredProfile) -> tuple[Wiring | None, list[tuple[Path_, str]]]:
    s = p.storage
    problems: list[tuple[Path_, str]] = []
    known = [c.name for c in p.controllers] + [c.name for c in s.computes]
    for i, c in enumerate(s.computes):
        if c.name in known[: len(p.controllers) + i]:
            problems.append((("storage", "computes", i, "name"), f"host {c.name!r} is listed twice"))
    for name in s.hosts:
        if name not in known:
            problems.append((("storage", "hosts", name), f"unknown host {name!r}: not a controller or compute"))
    wirings: dict[ServiceName, ServiceWiring] = {"glance": s.glance, "cinder": s.cinder, "nova": s.nova}
    pools: dict[ServiceName, str] = {svc: w.pool or DEFAULT_POOLS[svc] for svc, w in wirings.items()}
    users: dict[str, str] = {}
    identities = []
    for svc in SERVICES:
        w = wirings[svc]
        for j, h in enumerate(w.hosts):
            if h not in known:
                problems.append((("storage", svc, "hosts", j), f"unknown host {h!r}: not a controller or "
                                 f"compute ({', '.join(known)})"))
        if w.hosts and pools[svc] not in s.pools:
            problems.append((("storage", svc, "pool") if w.pool else ("storage", svc),
                             f"pool {pools[svc]!r} is not in storage.pools"))
        user = w.user or DEFAULT_USERS[svc]
        if user in users and w.hosts:
            problems.append((("storage", svc, "user"), f"cephx user {user!r} is also {users[user]}'s"))
        if w.hosts:
            users.setdefault(user, svc)
        caps = w.caps.as_pairs() if w.caps else default_caps(svc, pools)
        identities.append(Identity(svc, tuple(w.hosts), pools[svc], user, w.unix_user or svc, caps))
    if problems:
        return None, problems
    hosts = {n: s.hosts.get(n, HostAccess()) for n in known}
    return Wiring({k: v.pg_num for k, v in s.pools.items()}, tuple(i for i in identities if i.hosts), hosts,
                  s.cluster, s.state), []


def wiring_from_document(doc: YamlDocument) -> Wiring:
    profile = doc.validate(WiredProfile)
    _, problems = resolve(profile)
    wiring, more = wiring_problems(profile)
    problems += more
    if problems or wiring is None:
        raise InputError([Problem(msg, doc.file, doc.line_of(path), ".".join(str(p) for p in path))
                          for path, msg in problems])
    return wiring


def load_wiring(path: str | Path) -> Wiring:
    return wiring_from_document(load_yaml(path))


def parse_wiring(text: str, file: str = "<input>") -> Wiring:
    return wiring_from_document(parse_yaml(text, file))
