"""The VRRP speaker: asyncio around the pure state machines, one process for many instances.

Per interface and family one raw socket receives every advert; packets are checked (`packet`),
dispatched by VRID to an instance's `Machine`, and the machine's actions are carried out here:
sending adverts, adding/removing VIPs, gratuitous ARP / unsolicited NA, notify scripts, the state
file. Time is the loop's monotonic clock, passed into the machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hakeeper.vrrp import netio
from hakeeper.vrrp.config import SCOPES, Config, Group, Instance
from hakeeper.vrrp.effects import Notifier, ScriptStatus, StateFile, track_loop
from hakeeper.vrrp.machine import (
    Action,
    Machine,
    Params,
    Send,
    State,
    SyncGroup,
    Transition,
    effective_priority,
)
from hakeeper.vrrp.packet import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    Advert,
    DropCounter,
    Dropped,
    Expect,
    IPAddr,
    decode,
    encode,
    ipv4_header,
    split_ipv4,
    verify,
)

log = logging.getLogger("hakeeper.vrrp")


@dataclass
class Runner:
    """One instance at run time."""

    inst: Instance
    machine: Machine
    expect: Expect
    src: IPAddr
    dsts: list[IPAddr]
    peers: set[IPAddr]
    link: netio.Link
    sock: socket.socket
    drops: DropCounter = field(default_factory=DropCounter)
    handle: asyncio.TimerHandle | None = None
    garp: asyncio.Task[None] | None = None
    vip_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    group: tuple[SyncGroup, Group] | None = None
    sent: int = 0
    received: int = 0
    packets: dict[tuple[int, IPAddr], bytes] = field(default_factory=dict)


def _group_addr(family: int) -> IPAddr:
    return ipaddress.ip_address(VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6)


class Speaker:
    def __init__(self, cfg: Config, ipr: AsyncIPRoute, links: dict[str, netio.Link],
                 state_file: str | None = None) -> None:
        self.cfg = cfg
        self.ipr = ipr
        self.links = links
        self.tasks: set[asyncio.Task[None]] = set()
        self.runners: list[Runner] = []
        self.by_key: dict[tuple[str, int, int], Runner] = {}
        self.socks: dict[tuple[str, int], socket.socket] = {}
        self.unknown = DropCounter()
        self.scripts = {name: ScriptStatus(s) for name, s in cfg.scripts.items()}
        self.notifier = Notifier()
        self.state_file = StateFile(state_file)
        self.stopping = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self._dirty = False
        self.own: dict[str, set[IPAddr]] = {}
        self.frame_socks: dict[tuple[str, int], socket.socket] = {}
        self._build()

    # -- setup ----------------------------------------------------------------------------------
    def _build(self) -> None:
        vip_strs = {str(v.address.ip) for i in self.cfg.instances for v in i.vips + i.excluded_vips}
        for inst in self.cfg.instances:
            link = self.links[inst.interface]
            fam = inst.family
            key = (inst.interface, fam)
            multicast = not inst.unicast_peers
            if key not in self.socks:
                if fam == 4:
                    s = netio.vrrp_socket_v4(inst.interface, link.index, multicast)
                else:
                    s = netio.vrrp_socket_v6(inst.interface, link.index, multicast)
                self.socks[key] = s
                self.loop.add_reader(s.fileno(), self._readable, s, inst.interface, fam)
            elif multicast and fam == 4:
                # A later multicast instance on a socket opened for unicast ones: join now.
                mreqn = socket.inet_aton(VRRP_GROUP_V4) + bytes(4) + link.index.to_bytes(4, "little")
                with contextlib.suppress(OSError):  # already joined
                    self.socks[key].setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            src_s = inst.unicast_src_ip or inst.mcast_src_ip
            src = ipaddress.ip_address(src_s) if src_s else netio.primary_address(link, fam, vip_strs)
            if src is None:
                src = ipaddress.ip_address("0.0.0.0" if fam == 4 else "::")
                log.warning("%s: %s has no IPv%d address of its own yet", inst.name, inst.interface, fam)
            peers = {ipaddress.ip_address(p) for p in inst.unicast_peers}
            dsts = sorted(peers, key=str) if peers else [_group_addr(fam)]
            params = Params(inst.version, inst.priority, inst.interval_cs, int(src),
                            preempt=not inst.nopreempt, preempt_delay=inst.preempt_delay,
                            start_master=inst.state == "MASTER")
            expect = Expect(inst.version, inst.vrid, inst.auth_type, inst.auth_pass, inst.interval_cs)
            r = Runner(inst, Machine(params), expect, src, dsts, peers, link, self.socks[key])
            self.runners.append(r)
            self.by_key[(inst.interface, fam, inst.vrid)] = r
        for r in self.runners:
            self.own.setdefault(r.inst.interface, set()).add(r.src)
        by_name = {r.inst.name: r for r in self.runners}
        for g in self.cfg.groups:
            members = [by_name[m] for m in g.members]
            sg = SyncGroup([r.machine for r in members])
            for r in members:
                r.group = (sg, g)
        self.by_machine = {id(r.machine): r for r in self.runners}

    # -- main -----------------------------------------------------------------------------------
    async def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stopping.set)
        mon = netio.link_monitor()
        self.loop.add_reader(mon.fileno(), self._links_changed, mon)
        tasks = [asyncio.create_task(track_loop(st, self._reassess)) for st in self.scripts.values()
                 if any(t.name == st.script.name for r in self.runners for t in r.inst.track_scripts)]
        now = self.loop.time()
        for r in self.runners:
            self._assess(r, now, starting=True)
            self._apply(r, r.machine.start(now))
        self._write_state()
        ticker = asyncio.create_task(self._state_ticker())
        await self.stopping.wait()
        log.info("stopping: withdrawing addresses")
        now = self.loop.time()
        for r in self.runners:
            self._apply(r, r.machine.shutdown(now), follow=False)
        for t in [*tasks, ticker]:
            t.cancel()
        self._write_state()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        await self.notifier.drain()
        self.loop.remove_reader(mon.fileno())
        mon.close()
        for s in self.socks.values():
            self.loop.remove_reader(s.fileno())
            s.close()
        for s in self.frame_socks.values():
            s.close()
        self.ipr.close()

    async def _state_ticker(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if self._dirty:
                self._write_state()

    # -- actions --------------------------------------------------------------------------------
    def _apply(self, r: Runner, actions: list[Action], follow: bool = True) -> None:
        for act in actions:
            if isinstance(act, Send):
                self._send(r, act.priority)
            elif isinstance(act, Transition):
                self._transition(r, act)
        if follow and r.group is not None:
            sg, _ = r.group
            for i, acts in sg.follow(self.loop.time(), r.machine, actions).items():
                self._apply(self.by_machine[id(sg.members[i])], acts, follow=False)
        self._schedule(r)

    def _schedule(self, r: Runner) -> None:
        if r.handle is not None:
            r.handle.cancel()
            r.handle = None
        when = r.machine.deadline()
        if when is not None:
            r.handle = self.loop.call_at(when, self._tick, r)

    def _tick(self, r: Runner) -> None:
        r.handle = None
        self._apply(r, r.machine.tick(self.loop.time()))

    def _send(self, r: Runner, priority: int) -> None:
        inst = r.inst
        for dst in r.dsts:
            # An instance's adverts differ only in priority: build each packet once.
            packet = r.packets.get((priority, dst))
            if packet is None:
                adv = Advert(inst.version, inst.vrid, priority, inst.interval_cs,
                             tuple(v.address.ip for v in inst.vips), inst.auth_type, inst.auth_pass)
                packet = encode(adv, r.src, dst)
                if inst.family == 4:
                    assert isinstance(r.src, ipaddress.IPv4Address) and isinstance(dst, ipaddress.IPv4Address)
                    packet = ipv4_header(r.src, dst, len(packet)) + packet
                r.packets[(priority, dst)] = packet
            if inst.family == 4:
                ok = netio.send_quietly(r.sock, packet, (str(dst), 0))
            else:
                ok = netio.send_v6(r.sock, packet, r.src, dst, r.link.index)
            r.sent += ok

    def _transition(self, r: Runner, t: Transition) -> None:
        inst = r.inst
        log.info("%s: %s -> %s (priority %d)", inst.name, t.old.value, t.new.value, r.machine.priority)
        if t.new == State.MASTER:
            self._set_vips(r, add=True)
            r.garp = asyncio.create_task(self._garp(r))
        elif t.old == State.MASTER:
            if r.garp is not None:
                r.garp.cancel()
                r.garp = None
            self._set_vips(r, add=False)
        script = {State.MASTER: inst.notify_master, State.BACKUP: inst.notify_backup,
                  State.FAULT: inst.notify_fault, State.STOP: inst.notify_stop}.get(t.new)
        self.notifier.run(script)
        self.notifier.run(inst.notify, "INSTANCE", inst.name, t.new.value, str(r.machine.priority))
        if r.group is not None and t.new != State.STOP:
            _, g = r.group
            gscript = {State.MASTER: g.notify_master, State.BACKUP: g.notify_backup,
                       State.FAULT: g.notify_fault}.get(t.new)
            self.notifier.run(gscript)
            self.notifier.run(g.notify, "GROUP", g.name, t.new.value, "0")
        self._dirty = True

    def _set_vips(self, r: Runner, add: bool) -> None:
        self._spawn(self._vips(r, add))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _vips(self, r: Runner, add: bool) -> None:
        # The lock is FIFO: adds and removals of one instance happen in the order decided.
        async with r.vip_lock:
            for vip in r.inst.vips + r.inst.excluded_vips:
                link = self.links.get(vip.dev or r.inst.interface, r.link)
                try:
                    if add:
                        scope = SCOPES[vip.scope] if vip.scope else None
                        await netio.add_address(self.ipr, link.index, vip.address, vip.label, vip.brd, scope)
                    else:
                        await netio.del_address(self.ipr, link.index, vip.address)
                except (OSError, NetlinkError) as exc:
                    # One address that cannot be set must not keep the others from being set.
                    verb = "add" if add else "remove"
                    log.error("%s: cannot %s %s on %s: %s", r.inst.name, verb, vip.address, link.name, exc)

    async def _garp(self, r: Runner) -> None:
        """keepalived's schedule: a burst at takeover, another after garp_master_delay, then refreshes."""
        g = r.inst.garp
        await self._garp_burst(r, g.master_repeat)
        if g.master_delay > 0:
            await asyncio.sleep(g.master_delay)
            await self._garp_burst(r, g.master_repeat)
        while g.master_refresh > 0:
            await asyncio.sleep(g.master_refresh)
            await self._garp_burst(r, g.master_refresh_repeat)

    async def _garp_burst(self, r: Runner, repeat: int) -> None:
        for n in range(max(1, repeat)):
            for vip in r.inst.vips + r.inst.excluded_vips:
                link = self.links.get(vip.dev or r.inst.interface, r.link)
                try:
                    ip = vip.address.ip
                    if ip.version == 4:
                        netio.send_quietly(self._frame_sock(link, 4), netio.garp_frame(link.mac, ip))
                    else:
                        netio.send_quietly(self._frame_sock(link, 6), netio.na_message(link.mac, ip),
                                           ("ff02::1", 0, 0, link.index))
                except OSError as exc:
                    log.warning("%s: gratuitous ARP/NA on %s: %s", r.inst.name, link.name, exc)
            if n + 1 < repeat:
                await asyncio.sleep(0.01)

    def _frame_sock(self, link: netio.Link, family: int) -> socket.socket:
        """One ARP (packet) or NA (ICMPv6) socket per interface, opened on first use and kept."""
        key = (link.name, family)
        if key not in self.frame_socks:
            self.frame_socks[key] = (
                netio.arp_socket(link.name) if family == 4 else netio.na_socket(link.name, link.index)
            )
        return self.frame_socks[key]

    # -- input ----------------------------------------------------------------------------------
    def _readable(self, s: socket.socket, ifname: str, family: int) -> None:
        for _ in range(64):  # bounded, so one busy socket cannot starve the timers
            try:
                if family == 4:
                    data = s.recv(4096)
                else:
                    payload, src6, dst6, hops = netio.recv_v6(s)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("receive on %s: %s", ifname, exc)
                return
            now = self.loop.time()
            r: Runner | None = None
            try:
                src: IPAddr
                dst: IPAddr
                if family == 4:
                    head, payload = split_ipv4(data)
                    src, dst, ttl = head.src, head.dst, head.ttl
                else:
                    src, dst, ttl = src6, dst6, hops
                if src in self._own(ifname):
                    continue
                adv = decode(payload, family, src, dst)
                r = self.by_key.get((ifname, family, adv.vrid))
                if r is None:
                    raise Dropped("vrid", f"no instance for VRID {adv.vrid}")
                verify(adv, ttl, r.expect)
                if r.peers and src not in r.peers:
                    raise Dropped("peer", f"{src} is not a unicast_peer")
            except Dropped as d:
                counter = r.drops if r is not None else self.unknown
                if counter.drop(d.reason, now):
                    log.warning("%s: dropped VRRP packet from %s: %s", r.inst.name if r else ifname,
                                locals().get("src", "?"), d)
                self._dirty = True
                continue
            r.received += 1
            self._apply(r, r.machine.on_advert(now, adv.priority, adv.interval_cs, int(src)))

    def _own(self, ifname: str) -> set[IPAddr]:
        return self.own.get(ifname, set())

    def _links_changed(self, mon: socket.socket) -> None:
        try:
            while mon.recv(65536):
                pass
        except BlockingIOError:
            pass
        self._spawn(self._refresh_links())

    async def _refresh_links(self) -> None:
        self.links = await netio.alinks(self.ipr)
        for r in self.runners:
            r.link = self.links.get(r.inst.interface, r.link)
        self._reassess()

    def _assess(self, r: Runner, now: float, starting: bool = False) -> list[Action]:
        inst = r.inst
        scripts = []
        for t in inst.track_scripts:
            st = self.scripts[t.name]
            scripts.append((t.weight if t.weight is not None else st.script.weight, st.ok))
        # A tracked interface counts like a script: with a weight it moves the priority, without
        # one its loss is a fault (keepalived's rules).
        down = []
        for t in inst.track_interfaces:
            up = self.links.get(t.name, r.link).up
            scripts.append((t.weight or 0, up))
            if not up:
                down.append(t.name)
        if not inst.dont_track_primary and not r.link.up:
            down.append(inst.interface)
        faults = 0 if inst.dont_track_primary or r.link.up else 1
        prio, fault = effective_priority(inst.priority, scripts, faults)
        if starting:
            r.machine.priority, r.machine.fault = prio, fault
            return []
        acts: list[Action] = []
        if prio != r.machine.priority:
            acts += r.machine.set_priority(now, prio)
        acts += r.machine.set_fault(now, fault)
        if acts:
            why = f", fault ({', '.join(down) or 'script'})" if fault else ""
            log.info("%s: priority %d%s", inst.name, prio, why)
        return acts

    def _reassess(self) -> None:
        now = self.loop.time()
        for r in self.runners:
            acts = self._assess(r, now)
            if acts:
                self._apply(r, acts)
        self._dirty = True

    def _write_state(self) -> None:
        self._dirty = False
        data: dict[str, object] = {
            "instances": {
                r.inst.name: {
                    "state": r.machine.state.value, "priority": r.machine.priority, "sent": r.sent,
                    "received": r.received, "drops": dict(r.drops.counts),
                }
                for r in self.runners
            },
            "unknown_drops": dict(self.unknown.counts),
        }
        try:
            self.state_file.write(data)
        except OSError as exc:
            log.warning("state file: %s", exc)


async def serve(cfg: Config, state_file: str | None = None) -> None:
    ipr = AsyncIPRoute()
    links = await netio.alinks(ipr)
    speaker = Speaker(cfg, ipr, links, state_file)
    await speaker.run()
