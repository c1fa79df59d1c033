"""Render a resolved profile: haproxy.cfg, keepalived.conf per controller, and a native cluster spec.

Pure functions of the profile: the same profile always gives byte-identical files, so a reload can
be skipped when nothing changed and a diff shows exactly what an edit does.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tempfile
from dataclasses import dataclass

from hakeeper.errors import InputError
from hakeeper.openstack.profile import Controller, Listener, Resolved
from hakeeper.spec.model import (
    Clone,
    ClusterOptions,
    ClusterSpec,
    Colocation,
    Constraints,
    Meta,
    Node,
    Operation,
    Order,
    Primitive,
    Resources,
)
from hakeeper.spec.values import AgentRef
from hakeeper.vrrp.config import Garp, Instance, Script, Track, Vip
from hakeeper.vrrp.kaconf import read_keepalived
from hakeeper.vrrp.packet import AUTH_NONE, AUTH_PASS, pad_password

MONITOR_URI = "/haproxy-alive"


@dataclass(frozen=True)
class RuntimePaths:
    """Where one haproxy keeps its pid file and sockets (several share a host in the demo)."""

    stats_socket: str
    pidfile: str


def default_paths(resolved: Resolved) -> RuntimePaths:
    h = resolved.profile.haproxy
    return RuntimePaths(h.stats_socket, h.pidfile)


# A line of a generated haproxy.cfg as meant: a directive's words, or a comment or blank line
# written as it stands. Rendering joins the words; `verify_haproxy` splits the text again and must
# find exactly these directives, so a value that smuggled in a newline, a space or a '#' is caught.
Part = tuple[str, ...] | str
SECTIONS = frozenset({"global", "defaults", "peers", "frontend", "backend", "listen"})


def _check_args(resolved: Resolved) -> tuple[str, ...]:
    h = resolved.profile.haproxy
    return ("check", "inter", h.check_inter, "fall", str(h.fall), "rise", str(h.rise))


def _listener(resolved: Resolved, x: Listener) -> list[Part]:
    svc = x.service
    out: list[Part] = [("listen", x.name)]
    for alias in x.aliases:
        out.append(f"    # also serves {alias}: same VIP and port, same backends")
    out.append(("bind", f"{x.vip}:{svc.port}"))
    out.append(("mode", svc.mode))
    if svc.balance == "active-backup":
        # One backend takes every connection, the others wait as `backup`: Galera accepts writes on
        # any node but certification conflicts make multi-writer traffic fail; keep one writer.
        out.append("    # one node at a time; the others are backups (single writer)")
        peers = ("peers", PEERS) if _shares_tables(resolved) else ()
        out.append(("stick-table", "type", "ip", "size", "1", *peers))
        out.append(("stick", "on", "dst"))
        out.append(("timeout", "client", "90m"))
        out.append(("timeout", "server", "90m"))
    else:
        out.append(("balance", svc.balance))
    if svc.check == "http":
        out.append(("option", "httpchk", "GET", svc.check_path))
        out.append(("http-check", "expect", "status", "200-399"))
    elif svc.check == "galera":
        # A node that completes MySQL's handshake may still refuse every statement (a minority
        # partition, a joiner, a frozen donor): ask the node's clustercheck instead.
        out.append("    # hakeeper galera clustercheck on each controller: 200 for a Synced, writable node only")
        out.append(("option", "httpchk", "GET", "/"))
        out.append(("http-check", "expect", "status", "200"))
    elif svc.check == "mysql":
        out.append("    # needs a MySQL user without password and privileges: CREATE USER 'haproxy_check'@'%';")
        out.append(("option", "mysql-check", "user", "haproxy_check", "post-41"))
    elif svc.check == "ssl-hello":
        out.append(("option", "ssl-hello-chk"))
    if svc.mode == "http":
        out.append(("option", "forwardfor"))
    check = _check_args(resolved) + (("port", str(svc.check_port)) if svc.check == "galera" else ())
    for i, c in enumerate(resolved.profile.controllers):
        words: tuple[str, ...] = ("server", c.name, f"{c.address}:{svc.port}", *check)
        if svc.balance == "active-backup":
            # Sessions on a failed primary are cut so clients reconnect to the next one at once.
            words += ("on-marked-down", "shutdown-sessions")
            if i > 0:
                words += ("backup",)
        out.append(words)
    return out


PEERS = "hakeeper"


def _shares_tables(resolved: Resolved) -> bool:
    return any(x.service.balance == "active-backup" for x in resolved.listeners)


def _peers(resolved: Resolved) -> list[Part]:
    """Every controller's haproxy holds the same stick table: when the VIP moves, the new holder
    sends MySQL to the writer the old one chose, not back to the first server (a second writer)."""
    if not _shares_tables(resolved):
        return []
    port = resolved.profile.haproxy.peers_port
    return [
        "# The controllers' haproxies share their stick tables, so the MySQL writer stays the same",
        "# when the VIP moves. Each haproxy must know which peer it is: run it with `-L <controller>`",
        '# (Debian: EXTRAOPTS="-L <controller>" in /etc/default/haproxy) unless its hostname is the',
        "# controller's name.",
        ("peers", PEERS),
        *(("peer", c.name, f"{c.address}:{port}") for c in resolved.profile.controllers),
        "",
    ]


def haproxy_parts(resolved: Resolved, paths: RuntimePaths | None = None) -> list[Part]:
    """haproxy.cfg as meant, line by line (see `Part`)."""
    p = resolved.profile
    h = p.haproxy
    paths = paths or default_paths(resolved)
    parts: list[Part] = [
        f"# haproxy.cfg generated by hakeeper from profile {p.name!r}: regenerate, do not edit.",
        "# The same file runs on every controller. haproxy binds the VIPs whether or not this",
        "# controller holds them: the hosts need net.ipv4.ip_nonlocal_bind=1. The API services",
        "# listen on their controller's own address, haproxy on the VIP, both on the same port.",
        ("global",),
        ("maxconn", str(h.maxconn)),
        ("pidfile", paths.pidfile),
        ("stats", "socket", paths.stats_socket, "mode", "600", "level", "admin", "expose-fd", "listeners"),
        "",
        ("defaults",),
        ("mode", "http"),
        ("option", "redispatch"),
        ("retries", "3"),
        ("timeout", "connect", h.timeout_connect),
        ("timeout", "client", h.timeout_client),
        ("timeout", "server", h.timeout_server),
        ("timeout", "check", h.check_inter),
        "",
        *_peers(resolved),
        "# haproxy's own health: the VRRP check asks it, so a VIP stays with a haproxy that answers.",
        ("frontend", "hakeeper-monitor"),
        ("bind", f"{h.monitor_address}:{h.monitor_port}"),
        ("mode", "http"),
        ("monitor-uri", MONITOR_URI),
        "",
    ]
    for x in resolved.listeners:
        parts += _listener(resolved, x)
        parts.append("")
    for x in resolved.unproxied:
        nodes = ",".join(f"USER:PASS@{c.address}:{x.service.port}" for c in p.controllers)
        parts += [
            f"# {x.name} is not behind haproxy: as the OpenStack HA guide says, RabbitMQ clients list",
            "# every broker and fail over themselves; a proxy in between only hides failures from them.",
            f"#   transport_url = rabbit://{nodes}/",
            f"# Its VIP {x.vip} is not used (set rabbitmq-on-vip: true to put it behind haproxy).",
            "",
        ]
    return parts


def _haproxy_line(part: Part) -> str:
    if isinstance(part, str):
        return part
    return " ".join(part) if part[0] in SECTIONS else "    " + " ".join(part)


class RenderMismatch(RuntimeError):
    """A generated file does not read back as what was meant: a bug or a value that slipped past the
    profile's checks. Nothing is written."""


def haproxy_directives(text: str) -> list[tuple[str, ...]]:
    """The directives of a haproxy.cfg as haproxy splits them: words, with '#' starting a comment.
    Quotes and backslashes (which hakeeper never writes) are refused rather than interpreted."""
    out: list[tuple[str, ...]] = []
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0]
        if any(c in line for c in "\"'\\") or any(ord(c) < 32 and c != "\t" for c in line):
            raise RenderMismatch(f"haproxy.cfg line {n} holds a quote, escape or control character: {raw!r}")
        words = tuple(line.split())
        if words:
            out.append(words)
    return out


def verify_haproxy(text: str, parts: list[Part]) -> None:
    """Raise RenderMismatch unless `text` holds exactly the directives of `parts`, in order."""
    meant = [p for p in parts if not isinstance(p, str)]
    found = haproxy_directives(text)
    if found != meant:
        diff = next((i for i, (a, b) in enumerate(zip(found, meant, strict=False)) if a != b),
                    min(len(found), len(meant)))
        got = " ".join(found[diff]) if diff < len(found) else "(end of file)"
        want = " ".join(meant[diff]) if diff < len(meant) else "(end of file)"
        raise RenderMismatch(f"haproxy.cfg does not read back as meant: directive {diff + 1} is {got!r}, "
                             f"meant {want!r}")


def render_haproxy(resolved: Resolved, paths: RuntimePaths | None = None) -> str:
    parts = haproxy_parts(resolved, paths)
    text = "\n".join(_haproxy_line(p) for p in parts)
    verify_haproxy(text, parts)
    return text


def _check_script(resolved: Resolved) -> str:
    h = resolved.profile.haproxy
    if resolved.profile.vrrp.haproxy_check == "process":
        return "/usr/bin/killall -0 haproxy"
    return f"/usr/bin/curl -sf -m 1 -o /dev/null http://{h.monitor_address}:{h.monitor_port}{MONITOR_URI}"


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


@dataclass(frozen=True)
class KeepalivedPlan:
    """keepalived.conf for one controller as meant: its header facts, the check script and the
    instances, in hakeeper's VRRP model (`vrrp.config`), which is also what reading the file gives."""

    controller: Controller
    priority: int
    script: Script
    instances: tuple[Instance, ...]
    served: tuple[tuple[str, ...], ...]  # per instance, the services on its VIP (a comment)


def keepalived_plan(resolved: Resolved, controller: str) -> KeepalivedPlan:
    p = resolved.profile
    v = p.vrrp
    index = next(i for i, c in enumerate(p.controllers) if c.name == controller)
    me: Controller = p.controllers[index]
    iface = me.interface or v.interface
    priority = resolved.priority(index)
    # A failed check must drop the holder below every healthy controller, the lowest included.
    weight = v.priority_step * len(p.controllers)
    script = Script("chk_haproxy", _check_script(resolved), float(v.check_interval), float(v.check_interval),
                    -min(253, weight), v.check_rise, v.check_fall)
    instances: list[Instance] = []
    served: list[tuple[str, ...]] = []
    for vip in resolved.vip_addresses():
        _, net = resolved.network_of(vip)
        names = [x.name for x in resolved.listeners if x.vip == vip]
        names += [a for x in resolved.listeners if x.vip == vip for a in x.aliases]
        names += [x.name for x in resolved.unproxied if x.vip == vip]
        served.append(tuple(names))
        instances.append(Instance(
            f"vip_{str(vip).replace('.', '_')}", iface, resolved.vrids[vip], priority,
            "MASTER" if index == 0 and v.preempt else "BACKUP", v.advert_int, v.version,
            AUTH_PASS if v.auth_pass else AUTH_NONE, pad_password(v.auth_pass) if v.auth_pass else b"",
            vips=[Vip(ipaddress.ip_interface(f"{vip}/{net.prefixlen}"), dev=iface)],
            track_scripts=[Track("chk_haproxy")], nopreempt=not v.preempt,
            garp=Garp(master_refresh=float(v.garp_refresh))))
    return KeepalivedPlan(me, priority, script, tuple(instances), tuple(served))


def _keepalived_text(resolved: Resolved, plan: KeepalivedPlan) -> str:
    p = resolved.profile
    v = p.vrrp
    s = plan.script
    lines = [
        f"! keepalived.conf generated by hakeeper for {plan.controller.name} of profile {p.name!r}: "
        "regenerate, do not edit.",
        f"! Priority {plan.priority}: controllers rank by their order in the profile.",
        "global_defs {",
        f"    router_id {plan.controller.name}",
        "    script_user root",
        "    enable_script_security",
        "}",
        "",
        f"vrrp_script {s.name} {{",
        f'    script "{s.script}"',
        f"    interval {_fmt(s.interval)}",
        f"    timeout {_fmt(s.timeout or s.interval)}",
        f"    fall {s.fall}",
        f"    rise {s.rise}",
        f"    weight {s.weight}",
        "}",
    ]
    for inst, served in zip(plan.instances, plan.served, strict=True):
        lines += [
            "",
            f"! {', '.join(served)}",
            f"vrrp_instance {inst.name} {{",
            f"    state {inst.state}",
            f"    interface {inst.interface}",
            f"    virtual_router_id {inst.vrid}",
            f"    priority {inst.priority}",
            f"    advert_int {_fmt(inst.advert_int)}",
        ]
        if inst.version == 3:
            lines.append("    version 3")
        if inst.nopreempt:
            lines.append("    nopreempt")
        if inst.garp.master_refresh:
            lines.append(f"    garp_master_refresh {_fmt(inst.garp.master_refresh)}")
        if v.auth_pass:
            lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {v.auth_pass}", "    }"]
        lines += ["    virtual_ipaddress {"]
        lines += [f"        {vip.address} dev {vip.dev}" for vip in inst.vips]
        lines += ["    }", "    track_script {"]
        lines += [f"        {t.name}" for t in inst.track_scripts]
        lines += ["    }", "}"]
    return "\n".join(lines) + "\n"


# The keywords hakeeper writes into keepalived.conf, block openers and closers included. A line
# starting with anything else (an `include`, a `virtual_server`, a `notify` script) was not meant.
_KEEPALIVED_KEYWORDS = frozenset({
    "global_defs", "router_id", "script_user", "enable_script_security", "}", "vrrp_script", "script",
    "interval", "timeout", "fall", "rise", "weight", "vrrp_instance", "state", "interface",
    "virtual_router_id", "priority", "advert_int", "version", "nopreempt", "garp_master_refresh",
    "authentication", "auth_type",
    "auth_pass", "virtual_ipaddress", "track_script", "chk_haproxy"})


def _unmeant_keepalived_line(text: str) -> str | None:
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line[0] in "!#":
            continue
        first = line.split()[0]
        if first in _KEEPALIVED_KEYWORDS:
            continue
        try:
            ipaddress.ip_interface(first)  # an address line of virtual_ipaddress
        except ValueError:
            return f"line {n} is not one hakeeper writes: {raw!r}"
    return None


def _comparable(inst: Instance) -> Instance:
    # Where each keyword was read is no part of what it means.
    return dataclasses.replace(inst, where=("", 0), lines={})


def verify_keepalived(text: str, plan: KeepalivedPlan) -> None:
    """Raise RenderMismatch unless `text`, read back by hakeeper's keepalived.conf reader, holds
    exactly the plan's check script and instances (names, interfaces, VIPs, priorities, auth)."""
    unmeant = _unmeant_keepalived_line(text)
    if unmeant is not None:
        raise RenderMismatch(f"keepalived.conf for {plan.controller.name}: {unmeant}")
    with tempfile.TemporaryDirectory(prefix="hakeeper-verify-") as tmp:
        path = os.path.join(tmp, "keepalived.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            read = read_keepalived(path)
        except InputError as exc:
            raise RenderMismatch(f"keepalived.conf for {plan.controller.name} does not read back: "
                                 f"{str(exc).splitlines()[0]}") from None
    meant_script = dataclasses.replace(plan.script, where=("", 0))
    got_scripts = {k: dataclasses.replace(v, where=("", 0)) for k, v in read.scripts.items()}
    if got_scripts != {plan.script.name: meant_script}:
        raise RenderMismatch(f"keepalived.conf for {plan.controller.name}: the check script reads back as "
                             f"{sorted(got_scripts)}, not as meant")
    got = [_comparable(i) for i in read.instances]
    meant = [_comparable(i) for i in plan.instances]
    if got != meant or read.groups:
        diff = next((i for i, (a, b) in enumerate(zip(got, meant, strict=False)) if a != b), None)
        which = f"instance {meant[diff].name}" if diff is not None else "the instance list"
        raise RenderMismatch(f"keepalived.conf for {plan.controller.name}: {which} does not read back as meant")


def render_keepalived(resolved: Resolved, controller: str) -> str:
    """keepalived.conf for one controller: one VRRP instance per VIP, all tracking haproxy."""
    plan = keepalived_plan(resolved, controller)
    text = _keepalived_text(resolved, plan)
    verify_keepalived(text, plan)
    return text


def _vip_id(vip: ipaddress.IPv4Address) -> str:
    return "vip-" + str(vip).replace(".", "-")


def render_spec(resolved: Resolved) -> ClusterSpec:
    """The native cluster spec: haproxy and the services cloned on every controller; in `cluster`
    VIP mode, also a VIP primitive per address, kept with a running haproxy."""
    p = resolved.profile
    monitor = [Operation(name="monitor", interval=10.0, timeout=20.0)]
    primitives = [Primitive(id="haproxy", agent=AgentRef.parse("systemd:haproxy"), operations=monitor)]
    clones = [Clone(id="haproxy-clone", child="haproxy", meta=Meta(interleave=True))]
    units: list[str] = []
    for x in (*resolved.listeners, *resolved.unproxied):
        if x.service.unit not in units:
            units.append(x.service.unit)
    for unit in units:
        rid = f"svc-{unit}"
        primitives.append(Primitive(id=rid, agent=AgentRef.parse(f"systemd:{unit}"), operations=monitor))
        clones.append(Clone(id=f"{rid}-clone", child=rid, meta=Meta(interleave=True)))
    ports = sorted({x.service.check_port for x in resolved.listeners if x.service.check == "galera"})
    for port in ports:
        # What haproxy's `check: galera` asks, on every controller.
        rid = "galera-clustercheck" if len(ports) == 1 else f"galera-clustercheck-{port}"
        primitives.append(Primitive(
            id=rid, agent=AgentRef.parse("process"),
            params={"command": f"hakeeper galera clustercheck --port {port}"}, operations=monitor))
        clones.append(Clone(id=f"{rid}-clone", child=rid, meta=Meta(interleave=True)))
    constraints = Constraints()
    if p.vip_mode == "cluster":
        for vip in resolved.vip_addresses():
            _, net = resolved.network_of(vip)
            rid = _vip_id(vip)
            primitives.append(Primitive(
                id=rid, agent=AgentRef.parse("vip"),
                params={"ip": str(vip), "cidr_netmask": str(net.prefixlen), "nic": p.vrrp.interface},
                operations=[Operation(name="monitor", interval=5.0, timeout=10.0)]))
            constraints.colocation.append(Colocation(id=f"{rid}-with-haproxy", resource=rid,
                                                     with_resource="haproxy-clone"))
            constraints.order.append(Order(id=f"haproxy-before-{rid}", first="haproxy-clone", then=rid))
    return ClusterSpec(
        # Controllers are usually fenced by the platform, not by the profile: no fencing devices here,
        # so the spec does not ask for them (Pacemaker would otherwise start nothing).
        cluster=ClusterOptions(name=p.name, stonith_enabled=False),
        nodes=[Node(name=c.name) for c in p.controllers],
        resources=Resources(primitives=primitives, clones=clones),
        constraints=constraints,
    )
