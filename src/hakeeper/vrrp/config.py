"""The VRRP configuration both readers produce (keepalived.conf and hakeeper's YAML), and its checks.

Plain dataclasses; every instance remembers where it was written so checks can name file and line.
`check` is pure (the interfaces present on the host are passed in), and collects every problem
before anything is applied.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field

from hakeeper.errors import InputError, Problem
from hakeeper.vrrp.packet import AUTH_NONE, AUTH_PASS

Where = tuple[str, int]  # file, line
# `ip addr add ... scope NAME`, as keepalived accepts them.
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}


@dataclass
class Vip:
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    dev: str | None = None
    label: str | None = None
    brd: str | None = None
    scope: str | None = None


@dataclass
class Script:
    name: str
    script: str
    interval: float = 1.0
    timeout: float | None = None
    weight: int = 0
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    where: Where = ("<input>", 0)


@dataclass
class Track:
    name: str
    weight: int | None = None  # None: the script's own weight
    quoted: bool = True  # False: read from an included file's block, so never quoted (see kaconf)


@dataclass
class Garp:
    master_delay: float = 5.0
    master_repeat: int = 5
    master_refresh: float = 0.0  # 0: never
    master_refresh_repeat: int = 1


@dataclass
class Instance:
    name: str
    interface: str
    vrid: int
    priority: int = 100
    state: str = "BACKUP"
    advert_int: float = 1.0
    version: int = 2
    auth_type: int = AUTH_NONE
    auth_pass: bytes = field(default=b"", repr=False)  # never in a log line or an event
    vips: list[Vip] = field(default_factory=list)
    excluded_vips: list[Vip] = field(default_factory=list)
    track_scripts: list[Track] = field(default_factory=list)
    track_interfaces: list[Track] = field(default_factory=list)
    dont_track_primary: bool = False
    nopreempt: bool = False
    preempt_delay: float = 0.0
    mcast_src_ip: str | None = None
    unicast_src_ip: str | None = None
    unicast_peers: list[str] = field(default_factory=list)
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None
    garp: Garp = field(default_factory=Garp)
    where: Where = ("<input>", 0)
    lines: dict[str, int] = field(default_factory=dict)  # keyword -> line, for errors

    @property
    def family(self) -> int:
        return 6 if self.vips and self.vips[0].address.version == 6 else 4

    @property
    def interval_cs(self) -> int:
        return round(self.advert_int * 100)

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.where[1])


@dataclass
class Group:
    name: str
    members: list[str]
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify: str | None = None
    where: Where = ("<input>", 0)
    unquoted: set[str] = field(default_factory=set)  # members read from an included file's block


@dataclass
class Config:
    instances: list[Instance] = field(default_factory=list)
    scripts: dict[str, Script] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _show(name: str, quoted: bool) -> str:
    return repr(name) if quoted else "(a name from an included file, not quoted)"


def check(cfg: Config) -> None:
    """Semantic checks that need no host: ranges, versions, references. Raises InputError."""
    problems: list[Problem] = []

    def bad(inst: Instance, key: str, msg: str) -> None:
        problems.append(Problem(msg, inst.where[0], inst.line_of(key), f"{inst.name}.{key}"))

    seen: dict[tuple[str, int, int], str] = {}
    names = {i.name for i in cfg.instances}
    for inst in cfg.instances:
        if not 1 <= inst.vrid <= 255:
            bad(inst, "virtual_router_id", f"VRID {inst.vrid} is outside 1-255")
        if not 1 <= inst.priority <= 255:
            bad(inst, "priority", f"priority {inst.priority} is outside 1-255")
        if inst.version not in (2, 3):
            bad(inst, "version", f"VRRP version {inst.version}: only 2 and 3 exist")
        elif not math.isfinite(inst.advert_int):
            bad(inst, "advert_int", "advert_int must be a finite number of seconds")
        elif inst.version == 2:
            if inst.advert_int != int(inst.advert_int) or not 1 <= inst.advert_int <= 255:
                bad(inst, "advert_int", f"advert_int {inst.advert_int:g}: VRRPv2 carries whole seconds 1-255")
            if inst.family == 6:
                bad(inst, "virtual_ipaddress", "VRRPv2 is IPv4 only; use vrrp_version 3 for IPv6")
        elif abs(inst.advert_int * 100 - inst.interval_cs) > 1e-6 or not 1 <= inst.interval_cs <= 4095:
            bad(inst, "advert_int", f"advert_int {inst.advert_int:g}: VRRPv3 carries 0.01-40.95 s in 0.01 s")
        if inst.version == 3 and inst.auth_type:
            # RFC 5798 removed authentication; keepalived refuses it with VRRPv3 as well.
            bad(inst, "authentication", "authentication is VRRPv2 only")
        if inst.state not in ("MASTER", "BACKUP"):
            bad(inst, "state", f"state {inst.state!r}: MASTER or BACKUP")
        if not inst.vips:
            bad(inst, "virtual_ipaddress", "no virtual_ipaddress")
        fams = {v.address.version for v in inst.vips}
        if len(fams) > 1:
            bad(inst, "virtual_ipaddress", "IPv4 and IPv6 addresses mixed in one instance")
        if len(inst.vips) > 255:
            bad(inst, "virtual_ipaddress", "more than 255 addresses in one advert")
        for v in inst.vips + inst.excluded_vips:
            if v.scope is not None and v.scope not in SCOPES:
                bad(inst, "virtual_ipaddress", f"scope {v.scope!r}: one of {', '.join(SCOPES)}")
        key = (inst.interface, inst.family, inst.vrid)
        if key in seen:
            bad(inst, "virtual_router_id", f"VRID {inst.vrid} on {inst.interface} is used by {seen[key]}")
        seen[key] = inst.name
        for t in inst.track_scripts:
            if t.name not in cfg.scripts:
                bad(inst, "track_script", f"no vrrp_script {_show(t.name, t.quoted)}")
        for peer in [inst.unicast_src_ip, inst.mcast_src_ip, *inst.unicast_peers]:
            if peer is not None:
                try:
                    ipaddress.ip_address(peer)
                except ValueError:
                    bad(inst, "unicast_peer", f"{peer!r} is not an IP address")
    for g in cfg.groups:
        for m in g.members:
            if m not in names:
                problems.append(Problem(f"no vrrp_instance {_show(m, m not in g.unquoted)}", g.where[0],
                                        g.where[1], f"{g.name}.group"))
    if problems:
        raise InputError(problems)


def check_host(cfg: Config, links: dict[str, list[str]]) -> None:
    """Checks against the host: interfaces exist; priority 255 only for the address owner.

    `links` maps each interface name to the addresses (without prefix) configured on it."""
    problems: list[Problem] = []
    for inst in cfg.instances:
        f = inst.where[0]
        wanted = [("interface", inst.interface)]
        wanted += [("track_interface", t.name) for t in inst.track_interfaces]
        wanted += [("virtual_ipaddress", v.dev) for v in inst.vips + inst.excluded_vips if v.dev]
        for key, dev in wanted:
            if dev not in links:
                quoted = key != "track_interface" or all(t.quoted for t in inst.track_interfaces
                                                         if t.name == dev)
                problems.append(Problem(f"interface {_show(dev, quoted)} does not exist on this host", f,
                                        inst.line_of(key), f"{inst.name}.{key}"))
        if inst.priority == 255 and inst.interface in links:
            own = set(links[inst.interface])
            if not any(str(v.address.ip) in own for v in inst.vips):
                problems.append(Problem(
                    "priority 255 is for the address owner, and no virtual address is configured on "
                    f"{inst.interface}", f, inst.line_of("priority"), f"{inst.name}.priority"))
    if problems:
        raise InputError(problems)


def auth_from(kind: str | None) -> int:
    return {None: AUTH_NONE, "PASS": AUTH_PASS}[kind]
