"""One VRRP speaker for every router of a network node (Neutron runs a keepalived per router).

Each router is a `RouterRun`: the pure `vrrp.machine.Machine` (VRRPv2, priority 50, nopreempt, as
Neutron configures keepalived), a raw VRRP socket, a netlink socket and ARP sockets, all opened
inside the router's namespace (`netns.inside`), then served by this one asyncio loop. The master's
addresses and default route come and go with the state (keepalived's `virtual_ipaddress`,
`virtual_ipaddress_excluded`, `virtual_routes`); gratuitous ARPs follow each takeover, and again
after `garp_master_delay` (Neutron: 60 s). Every state change is reported to `on_change`, which
the agent publishes (state file, store).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hakeeper.l3 import netns
from hakeeper.l3.dataplane import Layout
from hakeeper.vrrp import netio
from hakeeper.vrrp.machine import Action, Machine, Params, Send, State, Transition
from hakeeper.vrrp.packet import (
    AUTH_NONE,
    AUTH_PASS,
    VRRP_GROUP_V4,
    Advert,
    DropCounter,
    Dropped,
    Expect,
    decode,
    encode,
    ipv4_header,
    pad_password,
    split_ipv4,
    verify,
)

log = logging.getLogger("hakeeper.l3")
NEUTRON_PRIORITY = 50  # every replica the same: the first up stays master (nopreempt)
GROUP = ipaddress.IPv4Address(VRRP_GROUP_V4)
SO_ATTACH_FILTER = 26


def vrid_filter(vrid: int) -> bytes:
    """A classic BPF program for a raw IPv4 VRRP socket that passes only adverts for `vrid`.

    Every router of a project shares its HA network, so without it each router's socket would wake
    this process for every other router's advert: N routers on one network cost N*N/advert_int
    wakeups a second (what makes 1000 keepalived processes unusable at 254 per HA network). The
    kernel drops them instead; the VRID sits at offset 1 of the VRRP header, after the IP header."""
    prog = [
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf): the IP header's length
        (0x50, 0, 0, 1),  # ldb [x+1]: the VRID
        (0x15, 0, 1, vrid),  # jeq #vrid
        (0x06, 0, 0, 0xFFFF),  # ret: the whole packet
        (0x06, 0, 0, 0),  # ret 0: dropped
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


def attach_vrid_filter(sock: socket.socket, vrid: int) -> None:
    import ctypes

    code = ctypes.create_string_buffer(vrid_filter(vrid))
    fprog = struct.pack("HL", len(code.raw) // 8, ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


@dataclass(frozen=True)
class VrrpSettings:
    advert_int: int = 2
    password: str | None = None
    garp_master_delay: float = 60.0
    garp_repeat: int = 5


@dataclass
class RouterRun:
    lay: Layout
    machine: Machine
    expect: Expect
    sock: socket.socket
    ipr: AsyncIPRoute
    index: dict[str, int]  # interface name -> ifindex, inside the namespace
    arp: dict[str, socket.socket]
    packets: dict[int, bytes] = field(default_factory=dict)
    drops: DropCounter = field(default_factory=DropCounter)
    handle: asyncio.TimerHandle | None = None
    garp: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sent: int = 0
    received: int = 0
    takeovers: int = 0
    adopted: bool = False  # master when the agent restarted: addresses already in place


class RouterSpeaker:
    def __init__(self, vrrp: VrrpSettings, on_change: Callable[[str, State], None] | None = None) -> None:
        self.vrrp = vrrp
        self.on_change = on_change
        self.loop = asyncio.get_running_loop()
        self.runs: dict[str, RouterRun] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    # -- routers come and go without touching the others ----------------------------------------
    def add(self, lay: Layout, adopt: bool = False) -> None:
        """Open the router's sockets inside its namespace and start its VRRP instance: BACKUP, or
        with `adopt` (the namespace holds the primary VIP: this node was master when its agent
        restarted) MASTER at once, keeping the addresses, so a restart is not a failover. If the
        other node took over meanwhile, the tie-break of the two masters' adverts settles it
        within one interval and the loser withdraws its addresses."""
        v = self.vrrp
        auth = AUTH_PASS if v.password is not None else AUTH_NONE
        with netns.inside(lay.namespace):
            index = {p.name: socket.if_nametoindex(p.name) for p in lay.ports}
            sock = netio.vrrp_socket_v4(lay.ha.name, index[lay.ha.name], multicast=True)
            attach_vrid_filter(sock, lay.vrid)
            ipr = AsyncIPRoute()
            _ = ipr.socket  # created now, so it lives in this namespace
            arp = {p.name: netio.arp_socket(p.name) for p in lay.ports if p.addresses}
        params = Params(2, NEUTRON_PRIORITY, v.advert_int * 100, int(lay.ha_address.ip), preempt=False)
        expect = Expect(2, lay.vrid, auth, pad_password(v.password or ""), v.advert_int * 100)
        run = RouterRun(lay, Machine(params), expect, sock, ipr, index, arp)
        self.runs[lay.router_id] = run
        self.loop.add_reader(sock.fileno(), self._readable, run)
        now = self.loop.time()
        actions = run.machine.start(now)
        if adopt:
            run.adopted = True
            actions += run.machine.force(now, State.MASTER)
        self._apply(run, actions)

    def update(self, lay: Layout) -> None:
        """The router's spec changed (an interface, the gateway, a floating IP): its VRRP instance
        goes on untouched, no re-election; a master adds and removes the changed addresses."""
        run = self.runs[lay.router_id]
        old = run.lay
        names = {p.name for p in lay.ports}
        with netns.inside(lay.namespace):
            index = {p.name: socket.if_nametoindex(p.name) for p in lay.ports}
            for name in [n for n in run.arp if n not in names or index[n] != run.index.get(n)]:
                run.arp.pop(name).close()  # gone, or a new interface of the same name
            for p in lay.ports:
                if p.addresses and p.name not in run.arp:
                    run.arp[p.name] = netio.arp_socket(p.name)
        run.lay = lay
        if run.machine.state == State.MASTER:
            gone = [a for a in old.master_addresses()
                    if a not in lay.master_addresses() and a[0] in names and index[a[0]] == run.index.get(a[0])]
            run.index = index
            self._spawn(self._change_addresses(run, gone))
        else:
            run.index = index

    def remove(self, router_id: str) -> None:
        run = self.runs.pop(router_id, None)
        if run is None:
            return
        self._apply(run, run.machine.shutdown(self.loop.time()))
        self._close(run)

    def _close(self, run: RouterRun) -> None:
        if run.handle is not None:
            run.handle.cancel()
        self.loop.remove_reader(run.sock.fileno())
        run.sock.close()
        for s in run.arp.values():
            s.close()

    def detach(self) -> None:
        """Leave every router as it is (addresses, namespaces) and stop serving them: the next agent
        adopts them (a restart of the agent is not a failover)."""
        for run in self.runs.values():
            self._close(run)
            run.ipr.close()
        self.runs.clear()

    async def stop(self) -> None:
        """Priority 0 from every master, addresses withdrawn: the backups take over after Skew_Time."""
        now = self.loop.time()
        for run in self.runs.values():
            self._apply(run, run.machine.shutdown(now))
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)
        for run in self.runs.values():
            self._close(run)
            run.ipr.close()
        self.runs.clear()

    def states(self) -> dict[str, State]:
        return {rid: run.machine.state for rid, run in self.runs.items()}

    # -- the machine's actions ------------------------------------------------------------------
    def _apply(self, run: RouterRun, actions: list[Action]) -> None:
        for act in actions:
            if isinstance(act, Send):
                self._send(run, act.priority)
            elif isinstance(act, Transition):
                self._transition(run, act)
        if run.handle is not None:
            run.handle.cancel()
            run.handle = None
        when = run.machine.deadline()
        if when is not None and run.lay.router_id in self.runs:
            run.handle = self.loop.call_at(when, self._tick, run)

    def _tick(self, run: RouterRun) -> None:
        run.handle = None
        self._apply(run, run.machine.tick(self.loop.time()))

    def _send(self, run: RouterRun, priority: int) -> None:
        packet = run.packets.get(priority)
        if packet is None:
            e = run.expect
            adv = Advert(2, run.lay.vrid, priority, e.interval_cs, (run.lay.vip.ip,), e.auth_type, e.password)
            payload = encode(adv)
            packet = ipv4_header(run.lay.ha_address.ip, GROUP, len(payload)) + payload
            run.packets[priority] = packet
        run.sent += netio.send_quietly(run.sock, packet, (VRRP_GROUP_V4, 0))

    def _transition(self, run: RouterRun, t: Transition) -> None:
        if run.adopted and t.new == State.MASTER:
            log.info("router %s: master (adopted from the previous agent)", run.lay.router_id)
            run.adopted = False
        else:
            log.info("router %s: %s -> %s", run.lay.router_id, t.old.value, t.new.value)
            if t.new == State.MASTER:
                run.takeovers += 1
        if t.new == State.MASTER:
            self._spawn(self._addresses(run, add=True))
            run.garp = self.loop.create_task(self._garp(run))
        elif t.old == State.MASTER:
            if run.garp is not None:
                run.garp.cancel()
                run.garp = None
            self._spawn(self._addresses(run, add=False))
        if self.on_change is not None:
            self.on_change(run.lay.router_id, t.new)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _addresses(self, run: RouterRun, add: bool) -> None:
        # FIFO lock: an add and a removal decided in that order happen in that order.
        async with run.lock:
            for dev, addr in run.lay.master_addresses():
                try:
                    if add:
                        await netio.add_address(run.ipr, run.index[dev], addr)
                    else:
                        await netio.del_address(run.ipr, run.index[dev], addr)
                except (OSError, NetlinkError) as exc:
                    log.error("router %s: %s %s on %s: %s", run.lay.router_id, "add" if add else "remove",
                              addr, dev, exc)
            ext, up = run.lay.external, run.lay.upstream
            if add and ext is not None and up is not None:
                try:
                    await run.ipr.route("replace", dst="0.0.0.0/0", gateway=str(up), oif=run.index[ext.name])
                except (OSError, NetlinkError) as exc:
                    log.error("router %s: default route via %s: %s", run.lay.router_id, up, exc)

    async def _change_addresses(self, run: RouterRun, gone: list[tuple[str, ipaddress.IPv4Interface]]) -> None:
        async with run.lock:
            for dev, addr in gone:
                with contextlib.suppress(OSError, NetlinkError):
                    await netio.del_address(run.ipr, run.index[dev], addr)
        if run.machine.state == State.MASTER:
            await self._addresses(run, add=True)  # the ones already there stay (EEXIST)
            await self._garp_burst(run)

    async def _garp(self, run: RouterRun) -> None:
        await self._garp_burst(run)
        if self.vrrp.garp_master_delay > 0:
            await asyncio.sleep(self.vrrp.garp_master_delay)
            await self._garp_burst(run)

    async def _garp_burst(self, run: RouterRun) -> None:
        ports = {p.name: p for p in run.lay.ports}
        for n in range(self.vrrp.garp_repeat):
            for dev, addr in run.lay.master_addresses():
                s = run.arp.get(dev)
                mac = ports[dev].mac
                if s is None or mac is None:
                    continue
                netio.send_quietly(s, netio.garp_frame(bytes.fromhex(mac.replace(":", "")), addr.ip))
            if n + 1 < self.vrrp.garp_repeat:
                await asyncio.sleep(0.05)

    # -- input ----------------------------------------------------------------------------------
    def _readable(self, run: RouterRun) -> None:
        for _ in range(64):  # bounded, so one busy socket cannot starve the timers
            try:
                data = run.sock.recv(4096)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("router %s: receive: %s", run.lay.router_id, exc)
                return
            now = self.loop.time()
            try:
                head, payload = split_ipv4(data)
                if head.src == run.lay.ha_address.ip:
                    continue
                adv = decode(payload, 4, head.src, head.dst)
                if adv.vrid != run.lay.vrid:
                    # Another router on the same HA network (only before the VRID filter was on):
                    # normal traffic, counted, never logged.
                    run.drops.counts["vrid"] = run.drops.counts.get("vrid", 0) + 1
                    continue
                verify(adv, head.ttl, run.expect)
            except Dropped as d:
                if run.drops.drop(d.reason, now):
                    log.warning("router %s: dropped VRRP packet: %s", run.lay.router_id, d)
                continue
            run.received += 1
            self._apply(run, run.machine.on_advert(now, adv.priority, adv.interval_cs, int(head.src)))


async def withdraw_all(layouts: list[Layout]) -> None:
    """Remove every master-only address of these routers (a node that starts must be a backup)."""
    for lay in layouts:
        if not netns.exists(lay.namespace):
            continue
        with netns.inside(lay.namespace):
            ipr = AsyncIPRoute()
            _ = ipr.socket
            index = {p.name: socket.if_nametoindex(p.name) for p in lay.ports}
        try:
            for dev, addr in lay.master_addresses():
                with contextlib.suppress(OSError, NetlinkError):
                    await netio.del_address(ipr, index[dev], addr)
        finally:
            ipr.close()
