"""The OpenStack controller profile: a short description of an HA control plane.

An operator writes the controllers, the networks, and a VIP per service (the rcbops Chef `vips`
map); everything else (ports, health checks, balancing) comes from the service catalogue below and
can be overridden per service. `resolve()` turns a checked profile into the list of listeners that
the renderers (haproxy.cfg, keepalived.conf, cluster spec) work from.

    name: Cluster01
    networks: {management: 10.0.0.0/24}
    controllers:
      - {name: controller01, address: 10.0.0.11}
      - {name: controller02, address: 10.0.0.12}
    vips:
      keystone-service-api: 10.0.0.22
      mysql-db: 10.0.0.21

Every value that ends up in haproxy.cfg or keepalived.conf is checked here, with its line: names
(profile, networks, controllers, services, units) follow hakeeper's identifier rule
(`hakeeper.names`), interfaces Linux's, paths, check paths and passwords must be one printable word,
timeouts haproxy's time format. The renderers then parse what they wrote (`render.py`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hakeeper.errors import InputError, Problem
from hakeeper.names import ConfigWord, InterfaceName, Name
from hakeeper.yamlsource import Path_, YamlDocument, load_yaml, parse_yaml


def _hyphenate(name: str) -> str:
    return name.replace("_", "-")


class ProfileModel(BaseModel):
    """Hyphenated keys as in the rest of hakeeper's YAML; unknown keys refused (typos must not pass)."""

    model_config = ConfigDict(alias_generator=_hyphenate, populate_by_name=True, extra="forbid")


# `galera`: hakeeper's clustercheck on each controller (`hakeeper galera clustercheck`, HTTP on
# `check-port`), which answers 200 only for a Synced, writable node of the primary component;
# `mysql` is haproxy's handshake-only mysql-check, for a plain MySQL.
Check = Literal["http", "tcp", "mysql", "ssl-hello", "galera"]
Balance = Literal["roundrobin", "source", "active-backup"]
# The URI haproxy's HTTP check asks for: one word, starting with '/'.
CheckPath = Annotated[ConfigWord, Field(pattern=r"^/", max_length=1024)]
# An absolute path haproxy writes (its pid file, its stats socket).
AbsolutePath = Annotated[ConfigWord, Field(pattern=r"^/", max_length=1024)]
# haproxy's time format: a number with an optional unit.
HaproxyTime = Annotated[str, Field(pattern=r"^[0-9]{1,9}(us|ms|s|m|h|d)?$")]


class ServiceDef(ProfileModel):
    """How haproxy fronts one service. `check-path` is used by `check: http`."""

    port: int = Field(ge=1, le=65535)
    mode: Literal["http", "tcp"] = "http"
    check: Check = "http"
    check_path: CheckPath = "/"
    # Where `check: galera` asks (the clustercheck's port on each controller).
    check_port: int = Field(default=9200, ge=1, le=65535)
    balance: Balance = "roundrobin"
    # The systemd unit that runs the service on a controller (for the cluster spec).
    unit: Name
    # Behind haproxy unless it is a service clients reach on every node themselves (RabbitMQ).
    proxied: bool = True
    # Served by another service's listener when both share a VIP and port (keystone internal/public).
    same_as: str | None = None


class ServiceOverride(ProfileModel):
    port: int | None = Field(default=None, ge=1, le=65535)
    mode: Literal["http", "tcp"] | None = None
    check: Check | None = None
    check_path: CheckPath | None = None
    check_port: int | None = Field(default=None, ge=1, le=65535)
    balance: Balance | None = None
    unit: Name | None = None


def _svc(port: int, unit: str, **kw: object) -> ServiceDef:
    return ServiceDef.model_validate({"port": port, "unit": unit, **kw})


# The usual ports of the rcbops cookbooks (the names of the Chef `vips` map). Stateless HTTP APIs
# get HTTP checks and round robin; haproxy treats 2xx and 3xx as healthy, which fits the version
# documents most APIs serve on `/`. Galera takes writes on one node at a time: active/backup.
CATALOGUE: dict[str, ServiceDef] = {
    "keystone-service-api": _svc(5000, "keystone"),
    "keystone-admin-api": _svc(35357, "keystone"),
    "keystone-internal-api": _svc(5000, "keystone", same_as="keystone-service-api"),
    "glance-api": _svc(9292, "glance-api"),
    "glance-registry": _svc(9191, "glance-registry", mode="tcp", check="tcp"),  # 401 without a token
    "nova-api": _svc(8774, "nova-api"),
    "nova-ec2-public": _svc(8773, "nova-api", mode="tcp", check="tcp"),
    "nova-novnc-proxy": _svc(6080, "nova-novncproxy", mode="tcp", check="tcp", balance="source"),
    "nova-xvpvnc-proxy": _svc(6081, "nova-xvpvncproxy", mode="tcp", check="tcp", balance="source"),
    "cinder-api": _svc(8776, "cinder-api"),
    "neutron-api": _svc(9696, "neutron-server"),
    "horizon-dash": _svc(80, "apache2"),
    "horizon-dash_ssl": _svc(443, "apache2", mode="tcp", check="ssl-hello", balance="source"),
    "mysql-db": _svc(3306, "mariadb", mode="tcp", check="galera", balance="active-backup"),
    "rabbitmq-queue": _svc(5672, "rabbitmq-server", mode="tcp", check="tcp", balance="active-backup",
                           proxied=False),
}


class Controller(ProfileModel):
    name: Name
    address: ipaddress.IPv4Address
    # The interface carrying the VIP network on this controller (defaults to vrrp.interface).
    interface: InterfaceName | None = None


class VrrpOptions(ProfileModel):
    interface: InterfaceName = "eth0"
    first_vrid: int = Field(default=51, ge=1, le=255)
    # VRRPv3 (RFC 5798) allows adverts in centiseconds, hence sub-second failover; v2 whole seconds.
    version: Literal[2, 3] = 2
    advert_int: float = Field(default=1.0, gt=0, le=40.95)
    # The first controller gets `priority`, each next one `priority-step` less.
    priority: int = Field(default=150, ge=2, le=254)
    priority_step: int = Field(default=10, ge=1, le=100)
    preempt: bool = True
    auth_pass: ConfigWord | None = Field(default=None, max_length=8)
    # How the VIP follows a working haproxy: `monitor` asks haproxy's monitor URI over HTTP (it
    # answers only if haproxy serves requests); `process` only checks that the process exists.
    haproxy_check: Literal["monitor", "process"] = "monitor"
    # keepalived runs track scripts at whole-second intervals.
    check_interval: int = Field(default=1, ge=1, le=3600)
    check_fall: int = Field(default=2, ge=1, le=1000)
    check_rise: int = Field(default=2, ge=1, le=1000)
    # Seconds between gratuitous ARPs while master (keepalived's garp_master_refresh; 0: only at
    # the takeover). Two masters at once (a partition that lets ARP through but not the adverts,
    # or a master fenced mid-partition) leave hosts' ARP caches pointing at the loser, which no
    # longer answers: without a refresh they learn the holder again only after the kernel's
    # neighbour probes give up, 5 to 10 s later (measured in the fault soak, docs/soak.md).
    garp_refresh: int = Field(default=1, ge=0, le=3600)


class HaproxyOptions(ProfileModel):
    monitor_address: ipaddress.IPv4Address = ipaddress.IPv4Address("127.0.0.1")
    monitor_port: int = Field(default=8404, ge=1, le=65535)
    stats_socket: AbsolutePath = "/run/haproxy/admin.sock"
    pidfile: AbsolutePath = "/run/haproxy.pid"
    check_inter: str = Field(default="1s", pattern=r"^\d+(ms|s)?$")
    fall: int = Field(default=2, ge=1, le=1000)
    rise: int = Field(default=2, ge=1, le=1000)
    timeout_connect: HaproxyTime = "5s"
    timeout_client: HaproxyTime = "1m"
    timeout_server: HaproxyTime = "1m"
    maxconn: int = Field(default=4096, ge=1, le=10_000_000)
    # Where the controllers' haproxies share their stick tables (the single MySQL writer).
    peers_port: int = Field(default=1024, ge=1, le=65535)


# A RabbitMQ virtual host name as it goes into transport_url's path (no '/' or '%' to escape).
VhostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class MessagingOptions(ProfileModel):
    """What every OpenStack service's oslo.messaging needs (openstack/messaging.py renders it).

    `cluster`: clients list every broker in transport_url and fail over themselves (the OpenStack
    HA guide), queues are quorum queues. `active-passive` (seed 002): one broker moving with the
    `rabbitmq-queue` VIP, which transport_url names alone; durable classic queues by default."""

    mode: Literal["cluster", "active-passive"] = "cluster"
    user: ConfigWord = "openstack"
    password: ConfigWord = Field(min_length=1, max_length=256)
    vhost: VhostName = "openstack"
    # rabbit_quorum_queue; unset: true in cluster mode, false in active-passive mode.
    quorum_queues: bool | None = None
    # oslo.messaging's AMQP heartbeats: a dead broker is noticed after the threshold (seconds),
    # checked `rate` times per threshold. 0 turns heartbeats off (not advised).
    heartbeat_timeout_threshold: int = Field(default=60, ge=0, le=3600)
    heartbeat_rate: int = Field(default=3, ge=1, le=100)


class Profile(ProfileModel):
    name: Name = "openstack"
    vip_mode: Literal["vrrp", "cluster"] = "vrrp"
    networks: dict[Name, ipaddress.IPv4Network] = Field(min_length=1)
    controllers: list[Controller] = Field(min_length=2)
    vips: dict[Name, ipaddress.IPv4Address] = Field(min_length=1)
    # VRRP router ids per VIP address; unset ones are numbered from vrrp.first-vrid.
    vrids: dict[str, int] = Field(default_factory=dict)
    services: dict[Name, ServiceOverride] = Field(default_factory=dict)
    # RabbitMQ clients list every broker (transport_url); put it on its VIP only when asked.
    rabbitmq_on_vip: bool = False
    # oslo.messaging's transport_url and rabbit options (rendered as oslo-messaging.conf when set).
    messaging: MessagingOptions | None = None
    vrrp: VrrpOptions = Field(default_factory=VrrpOptions)
    haproxy: HaproxyOptions = Field(default_factory=HaproxyOptions)


@dataclass(frozen=True)
class Listener:
    """One haproxy listener (or, for unproxied services, a VIP alone): what the renderers use."""

    name: str
    vip: ipaddress.IPv4Address
    service: ServiceDef
    # Other services served by this listener (same VIP and port, same backends).
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolved:
    profile: Profile
    listeners: tuple[Listener, ...]
    # Services that are not behind haproxy (RabbitMQ by default), with their VIP.
    unproxied: tuple[Listener, ...]
    vrids: dict[ipaddress.IPv4Address, int]

    def vip_addresses(self) -> list[ipaddress.IPv4Address]:
        """The VIPs that VRRP (or the cluster) must hold, in a stable order."""
        used = {x.vip for x in self.listeners}
        used |= {x.vip for x in self.unproxied if self.profile.rabbitmq_on_vip}
        return sorted(used)

    def network_of(self, address: ipaddress.IPv4Address) -> tuple[str, ipaddress.IPv4Network]:
        for name, net in self.profile.networks.items():
            if address in net:
                return name, net
        raise LookupError(address)  # resolve() has checked every address

    def priority(self, index: int) -> int:
        v = self.profile.vrrp
        return v.priority - index * v.priority_step


def service_def(profile: Profile, name: str) -> ServiceDef | None:
    base = CATALOGUE.get(name)
    override = profile.services.get(name)
    if override is None:
        return base
    changes = override.model_dump(exclude_none=True)
    if base is None:
        if "port" not in changes:
            return None
        changes.setdefault("unit", name)
        return ServiceDef.model_validate(changes)
    return base.model_copy(update=changes)


def _where(net: dict[str, ipaddress.IPv4Network]) -> str:
    return ", ".join(f"{k} {v}" for k, v in net.items())


def resolve(profile: Profile) -> tuple[Resolved | None, list[tuple[Path_, str]]]:
    """The listeners of a profile, or the problems (path, message) that keep it from working."""
    problems: list[tuple[Path_, str]] = []
    nets = profile.networks

    def inside(addr: ipaddress.IPv4Address) -> bool:
        return any(addr in n for n in nets.values())

    names: dict[str, int] = {}
    addresses: dict[ipaddress.IPv4Address, int] = {}
    for i, c in enumerate(profile.controllers):
        if c.name in names:
            problems.append((("controllers", i, "name"), f"controller {c.name!r} is listed twice"))
        names.setdefault(c.name, i)
        if c.address in addresses:
            other = profile.controllers[addresses[c.address]].name
            problems.append((("controllers", i, "address"), f"{c.address} is also {other}'s address"))
        addresses.setdefault(c.address, i)
        if not inside(c.address):
            problems.append((("controllers", i, "address"),
                             f"{c.address} is outside every network ({_where(nets)})"))
    v = profile.vrrp
    if v.version == 2 and (v.advert_int != int(v.advert_int) or v.advert_int > 255):
        problems.append((("vrrp", "advert-int"), f"VRRP version 2 adverts in whole seconds (1..255), not "
                         f"{v.advert_int}: use version: 3 for sub-second adverts"))
    elif v.version == 3 and round(v.advert_int * 100) < 1:
        problems.append((("vrrp", "advert-int"), "VRRP version 3 adverts at least every 0.01 s"))
    if v.version == 3 and v.auth_pass is not None:
        problems.append((("vrrp", "auth-pass"), "VRRP version 3 has no authentication (RFC 5798): "
                         "remove auth-pass or use version: 2"))
    lowest = profile.vrrp.priority - (len(profile.controllers) - 1) * profile.vrrp.priority_step
    if lowest < 1:
        problems.append((("vrrp", "priority-step"),
                         f"{len(profile.controllers)} controllers need priority - step*(n-1) >= 1, got {lowest}"))

    for name in profile.services:
        if name not in CATALOGUE and service_def(profile, name) is None:
            problems.append((("services", name, "port"), f"{name!r} is not a known service: give its port"))

    listeners: list[Listener] = []
    unproxied: list[Listener] = []
    taken: dict[tuple[ipaddress.IPv4Address, int], str] = {}
    deferred: list[tuple[str, ServiceDef, ipaddress.IPv4Address]] = []
    for name, vip in profile.vips.items():
        svc = service_def(profile, name)
        if svc is None:
            problems.append((("vips", name), f"unknown service {name!r}; known: {', '.join(CATALOGUE)} "
                             "(or describe it under services: with its port)"))
            continue
        if not inside(vip):
            problems.append((("vips", name), f"{vip} is outside every network ({_where(nets)})"))
            continue
        if vip in addresses:
            problems.append((("vips", name), f"{vip} is controller "
                             f"{profile.controllers[addresses[vip]].name}'s own address, not a VIP"))
            continue
        if not svc.proxied and not profile.rabbitmq_on_vip:
            unproxied.append(Listener(name, vip, svc))
            continue
        if svc.same_as is not None:
            deferred.append((name, svc, vip))
            continue
        key = (vip, svc.port)
        if key in taken:
            problems.append((("vips", name), f"{vip}:{svc.port} is already {taken[key]}'s listener"))
            continue
        taken[key] = name
        listeners.append(Listener(name, vip, svc))
    for name, svc, vip in deferred:
        key = (vip, svc.port)
        owner = taken.get(key)
        if owner is None:
            taken[key] = name
            listeners.append(Listener(name, vip, svc))
        elif owner == svc.same_as:
            # The rcbops layout: keystone's internal endpoint is the public one on the same VIP.
            i = next(k for k, x in enumerate(listeners) if x.name == owner)
            listeners[i] = Listener(owner, vip, listeners[i].service, (*listeners[i].aliases, name))
        else:
            problems.append((("vips", name), f"{vip}:{svc.port} is already {owner}'s listener"))

    problems += _messaging_problems(profile)

    vrids: dict[ipaddress.IPv4Address, int] = {}
    used_vrids: set[int] = set()
    for text, vrid in profile.vrids.items():
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            problems.append((("vrids", text), f"{text!r} is not an IPv4 address"))
            continue
        if not 1 <= vrid <= 255:
            problems.append((("vrids", text), f"a VRRP router id is 1..255, not {vrid}"))
        elif vrid in used_vrids:
            problems.append((("vrids", text), f"router id {vrid} is used twice"))
        vrids[addr] = vrid
        used_vrids.add(vrid)
    if problems:
        return None, problems
    result = Resolved(profile, tuple(listeners), tuple(unproxied), {})
    next_vrid = profile.vrrp.first_vrid
    for addr in result.vip_addresses():
        if addr not in vrids:
            while next_vrid in used_vrids:
                next_vrid += 1
            if next_vrid > 255:
                return None, [(("vrrp", "first-vrid"), "no VRRP router ids left below 256")]
            vrids[addr] = next_vrid
            used_vrids.add(next_vrid)
    return Resolved(profile, tuple(listeners), tuple(unproxied), vrids), []


def _messaging_problems(profile: Profile) -> list[tuple[Path_, str]]:
    m = profile.messaging
    if m is None or m.mode != "active-passive":
        return []
    if "rabbitmq-queue" not in profile.vips:
        return [(("messaging", "mode"), "active-passive messaging needs the broker's VIP: "
                 "add vips: {rabbitmq-queue: ADDRESS}")]
    if profile.rabbitmq_on_vip:
        return [(("rabbitmq-on-vip",), "active-passive messaging moves the VIP with the broker itself; "
                 "it cannot also be a haproxy listener (set rabbitmq-on-vip: false)")]
    return []


def profile_from_document(doc: YamlDocument) -> Resolved:
    profile = doc.validate(Profile)
    resolved, problems = resolve(profile)
    if problems or resolved is None:
        raise InputError([Problem(msg, doc.file, doc.line_of(path), ".".join(str(p) for p in path))
                          for path, msg in problems])
    return resolved


def load_profile(path: str | Path) -> Resolved:
    return profile_from_document(load_yaml(path))


def parse_profile(text: str, file: str = "<input>") -> Resolved:
    return profile_from_document(parse_yaml(text, file))

