"""hakeeper's own YAML form of the VRRP settings: the same `config.Config` as keepalived.conf gives.

    version: 3                      # default VRRP version for instances
    scripts:
      chk_api: {script: "/usr/local/bin/chk", interval: 2, weight: -60, fall: 2, rise: 2}
    instances:
      - name: nooip
        interface: eth0
        vrid: 200
        priority: 200
        advert_int: 1
        auth_pass: secret12         # VRRPv2 simple password (keepalived's auth_type PASS)
        vips: ["172.16.9.200/24", {address: 172.16.9.201/24, label: eth0:api}]
        track_scripts: [chk_api]
    sync_groups:
      - {name: g1, members: [nooip]}

Names (instances, scripts, groups, tracked scripts) follow hakeeper's identifier rule, interfaces
Linux's (`hakeeper.names`); script and notify commands are one line; numbers are finite and within
what keepalived accepts, so a bad value is an error with its line, never a crash in the speaker.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from hakeeper.names import InterfaceName, Name, control_character_problem
from hakeeper.vrrp.config import Config, Garp, Group, Instance, Script, Track, Vip, check
from hakeeper.vrrp.packet import AUTH_PASS, pad_password
from hakeeper.yamlsource import YamlDocument, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_line(value: str) -> str:
    problem = control_character_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A command line or label: any printable text, but one line.
OneLine = Annotated[str, AfterValidator(_one_line)]
DAY = 86400.0
Seconds = Annotated[float, Field(ge=0, le=DAY, allow_inf_nan=False)]
Repeat = Annotated[int, Field(ge=1, le=10_000)]


class VipModel(_Strict):
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    dev: InterfaceName | None = None
    label: Annotated[OneLine, Field(max_length=15)] | None = None
    brd: OneLine | None = None
    scope: OneLine | None = None


class TrackModel(_Strict):
    name: Name
    weight: int | None = Field(default=None, ge=-254, le=254)


class GarpModel(_Strict):
    master_delay: Seconds = 5.0
    master_repeat: Repeat = 5
    master_refresh: Seconds = 0.0
    master_refresh_repeat: Repeat = 1


class ScriptModel(_Strict):
    script: OneLine
    interval: float = Field(1.0, gt=0, le=DAY, allow_inf_nan=False)
    timeout: float | None = Field(None, gt=0, le=DAY, allow_inf_nan=False)
    weight: int = Field(0, ge=-254, le=254)
    rise: int = Field(1, ge=1, le=1_000_000)
    fall: int = Field(1, ge=1, le=1_000_000)
    init_fail: bool = False


class InstanceModel(_Strict):
    name: Name
    interface: InterfaceName
    vrid: int  # vrid, priority and advert_int are checked by config.check, which knows the version
    priority: int = 100
    state: Literal["MASTER", "BACKUP"] = "BACKUP"
    advert_int: float = Field(1.0, allow_inf_nan=False)
    version: Literal[2, 3] | None = None
    auth_pass: str | None = None
    vips: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface | VipModel]
    excluded_vips: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface | VipModel] = []
    track_scripts: list[Name | TrackModel] = []
    track_interfaces: list[InterfaceName | TrackModel] = []
    dont_track_primary: bool = False
    nopreempt: bool = False
    preempt_delay: float = Field(0.0, ge=0, le=1000, allow_inf_nan=False)
    mcast_src_ip: OneLine | None = None
    unicast_src_ip: OneLine | None = None
    unicast_peers: list[OneLine] = []
    notify_master: OneLine | None = None
    notify_backup: OneLine | None = None
    notify_fault: OneLine | None = None
    notify_stop: OneLine | None = None
    notify: OneLine | None = None
    garp: GarpModel | None = None


class GroupModel(_Strict):
    name: Name
    members: list[Name]
    notify_master: OneLine | None = None
    notify_backup: OneLine | None = None
    notify_fault: OneLine | None = None
    notify: OneLine | None = None


class VrrpFile(_Strict):
    version: Literal[2, 3] = 2
    garp: GarpModel = GarpModel()
    scripts: dict[Name, ScriptModel] = {}
    instances: list[InstanceModel]
    sync_groups: list[GroupModel] = []


def _vip(v: ipaddress.IPv4Interface | ipaddress.IPv6Interface | VipModel) -> Vip:
    if isinstance(v, VipModel):
        return Vip(v.address, v.dev, v.label, v.brd, v.scope)
    return Vip(v)


def _track(t: str | TrackModel) -> Track:
    return Track(t) if isinstance(t, str) else Track(t.name, t.weight)


def to_config(doc: YamlDocument, model: VrrpFile) -> Config:
    cfg = Config(files=[doc.file])
    for name, s in model.scripts.items():
        cfg.scripts[name] = Script(name, s.script, s.interval, s.timeout, s.weight, s.rise, s.fall,
                                   s.init_fail, (doc.file, doc.line_of(("scripts", name)) or 0))
    for i, m in enumerate(model.instances):
        path = ("instances", i)
        lines = {k: doc.line_of((*path, k)) or 0 for k in m.model_fields_set}
        lines["virtual_router_id"] = lines.get("vrid", 0)
        lines["virtual_ipaddress"] = lines.get("vips", 0)
        garp = m.garp or model.garp
        inst = Instance(
            m.name, m.interface, m.vrid, m.priority, m.state, m.advert_int, m.version or model.version,
            AUTH_PASS if m.auth_pass else 0, pad_password(m.auth_pass) if m.auth_pass else b"",
            [_vip(v) for v in m.vips], [_vip(v) for v in m.excluded_vips],
            [_track(t) for t in m.track_scripts], [_track(t) for t in m.track_interfaces],
            m.dont_track_primary, m.nopreempt, m.preempt_delay, m.mcast_src_ip, m.unicast_src_ip,
            list(m.unicast_peers), m.notify_master, m.notify_backup, m.notify_fault, m.notify_stop, m.notify,
            Garp(**garp.model_dump()), (doc.file, doc.line_of(path) or 0),
            {k: v for k, v in lines.items() if v},
        )
        cfg.instances.append(inst)
    for j, g in enumerate(model.sync_groups):
        cfg.groups.append(Group(g.name, list(g.members), g.notify_master, g.notify_backup, g.notify_fault,
                                g.notify, (doc.file, doc.line_of(("sync_groups", j)) or 0)))
    return cfg


def read_yaml(path: str) -> Config:
    doc = load_yaml(path)
    cfg = to_config(doc, doc.validate(VrrpFile))
    check(cfg)
    return cfg
