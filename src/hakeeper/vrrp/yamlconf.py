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
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hakeeper.vrrp.config import Config, Garp, Group, Instance, Script, Track, Vip, check
from hakeeper.vrrp.packet import AUTH_PASS, pad_password
from hakeeper.yamlsource import YamlDocument, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VipModel(_Strict):
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    dev: str | None = None
    label: str | None = None
    brd: str | None = None
    scope: str | None = None


class TrackModel(_Strict):
    name: str
    weight: int | None = None


class GarpModel(_Strict):
    master_delay: float = 5.0
    master_repeat: int = 5
    master_refresh: float = 0.0
    master_refresh_repeat: int = 1


class ScriptModel(_Strict):
    script: str
    interval: float = Field(1.0, gt=0)
    timeout: float | None = Field(None, gt=0)
    weight: int = Field(0, ge=-254, le=254)
    rise: int = Field(1, ge=1)
    fall: int = Field(1, ge=1)
    init_fail: bool = False


class InstanceModel(_Strict):
    name: str
    interface: str
    vrid: int
    priority: int = 100
    state: Literal["MASTER", "BACKUP"] = "BACKUP"
    advert_int: float = 1.0
    version: Literal[2, 3] | None = None
    auth_pass: str | None = None
    vips: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface | VipModel]
    excluded_vips: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface | VipModel] = []
    track_scripts: list[str | TrackModel] = []
    track_interfaces: list[str | TrackModel] = []
    dont_track_primary: bool = False
    nopreempt: bool = False
    preempt_delay: float = Field(0.0, ge=0)
    mcast_src_ip: str | None = None
    unicast_src_ip: str | None = None
    unicast_peers: list[str] = []
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None
    garp: GarpModel | None = None


class GroupModel(_Strict):
    name: str
    members: list[str]
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify: str | None = None


class VrrpFile(_Strict):
    version: Literal[2, 3] = 2
    garp: GarpModel = GarpModel()
    scripts: dict[str, ScriptModel] = {}
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
