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
import ipaddress
import logging
import math
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hakeeper.l3 import gwcheck, gwping, netns, nlbatch
from hakeeper.l3.dataplane import Layout
from hakeeper.l3.events import Cause, Change
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
# Gratuitous ARPs are broadcast: the node's bridge floods each to every port of its network, and
# every router namespace there receives a copy (the external network holds every router's qg-),
# so a round for N routers costs the sender O(N*N) (measured: 0.23 s for 284 routers, seconds at
# 1000). A round is sent in slices of this length, so the routers' timers, their sockets and the
# state report go on in between instead of waiting behind it.
GARP_SLICE = 0.005
GARP_GAP = 0.05  # from the start of one round to the next
# Routers' timers fire on a grid of slots, each timer at the first slot at or after its deadline:
# the routers due within one slot share one wakeup of the loop (a master's adverts went out one
# wakeup each: 500 a second at 1000 routers and advert_int 2), and a backup's adverts arrive in
# the same bursts. A slot delays an advert or a Master_Down by at most this, against an advert
# interval of seconds.
TIMER_SLOT = 0.02


def timer_slot(deadline: float) -> float:
    """The first slot at or after `deadline`: the same float for every deadline in one slot."""
    # A deadline on a slot (give or take the float's rounding) is that slot, not the next one; and
    # never a time before the deadline: a timer that fired early would find nothing due and be
    # armed again for the same instant.
    slot = math.ceil(deadline / TIMER_SLOT - 1e-6) * TIMER_SLOT
    return max(slot, deadline)


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


def packet_socket() -> socket.socket:
    """One AF_PACKET socket per router namespace, for its gratuitous ARPs on any of its ports (sent
    with `sendto` naming the port). Protocol 0: it receives nothing. One, not one per port: the
    kernel closes each packet socket with an RCU grace period (measured here: 13.7 ms per close),
    which an agent pays when it stops and the kernel when it reaps a killed agent (three per router
    made a killed 300-router agent take 8.9 s to be reaped)."""
    return socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)


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
    health_check_interval: float = 0.0  # Neutron's ha_vrrp_health_check_interval: 0, no gateway check


@dataclass(frozen=True)
class Heard:
    """The last advert that passed every check. A master sends the same bytes each interval, so
    an advert equal to it in everything checked (the VRRP packet, the IP source and destination,
    TTL 255) is taken without decoding and checking it again: at idle that is nearly every
    advert a backup receives (decode and checks cost ~40 us of Python each)."""

    packet: bytes  # as received, IP header included
    ip_header: int  # the IP header's length
    priority: int
    interval_cs: int
    src: int

    def same(self, data: bytes) -> bool:
        h = self.ip_header
        p = self.packet
        return (len(data) == len(p) and data[0] == p[0] and data[2:4] == p[2:4] and data[8] == 255
                and data[12:20] == p[12:20] and data[h:] == p[h:])


@dataclass
class RouterRun:
    lay: Layout
    machine: Machine
    expect: Expect
    sock: socket.socket
    nl: socket.socket  # raw rtnetlink, inside the namespace: the prepared requests go there
    index: dict[str, int]  # interface name -> ifindex, inside the namespace
    arp: socket.socket  # AF_PACKET inside the namespace: the gratuitous ARPs of every port
    requests: nlbatch.Requests = field(default_factory=lambda: nlbatch.Requests(b"", b""))
    garp_frames: list[tuple[str, bytes]] = field(default_factory=list)  # (port, frame)
    packets: dict[int, bytes] = field(default_factory=dict)
    drops: DropCounter = field(default_factory=DropCounter)
    slot: float | None = None  # the timer slot the router is due in (RouterSpeaker.slots)
    garp_later: asyncio.TimerHandle | None = None  # the second burst, garp_master_delay after a takeover
    heard: Heard | None = None
    icmp: socket.socket | None = None  # the gateway check's pings (gwping), with a health check interval
    gateway: gwcheck.GatewayCheck = field(default_factory=gwcheck.GatewayCheck)
    ping_seq: int = 0
    ping_out: bool = False  # the last ping is still without an answer
    gw_release: asyncio.TimerHandle | None = None
    carrier_down: bool = False  # ha- without carrier (track_interface)
    sent: int = 0
    received: int = 0
    takeovers: int = 0


class RouterSpeaker:
    def __init__(self, vrrp: VrrpSettings, on_change: Callable[[Change], None] | None = None) -> None:
        self.vrrp = vrrp
        self.on_change = on_change
        self.loop = asyncio.get_running_loop()
        self.runs: dict[str, RouterRun] = {}
        # Gratuitous ARP bursts of every router that took over, sent in rounds: one timer for all.
        self.garp_due: dict[str, int] = {}  # router -> rounds still to send
        self.garp_round: deque[str] = deque()  # the routers the current round has still to serve
        self.garp_round_began = 0.0
        self.garp_handle: asyncio.TimerHandle | asyncio.Handle | None = None
        # The routers' timers: one loop timer per slot, serving every router due in it (a timer
        # per router cost each master a TimerHandle, a heap entry and a callback per advert).
        self.slots: dict[float, list[RouterRun]] = {}
        # The gateway checks of every master: one round per health check interval for all routers.
        self.health_handle: asyncio.TimerHandle | None = None

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
            nl = nlbatch.open_socket(links=True)  # also hears ha-'s carrier (track_interface)
            arp = packet_socket()
            icmp = gwping.icmp_socket() if v.health_check_interval > 0 and lay.upstream is not None else None
        params = Params(2, NEUTRON_PRIORITY, v.advert_int * 100, int(lay.ha_address.ip), preempt=False)
        expect = Expect(2, lay.vrid, auth, pad_password(v.password or ""), v.advert_int * 100)
        run = RouterRun(lay, Machine(params), expect, sock, nl, index, arp, icmp=icmp)
        _prepare(run)
        self.runs[lay.router_id] = run
        self.loop.add_reader(sock.fileno(), self._readable, run)
        self.loop.add_reader(nl.fileno(), self._netlink_input, run)
        if icmp is not None:
            self.loop.add_reader(icmp.fileno(), self._icmp_input, run)
            if self.health_handle is None:
                self.health_handle = self.loop.call_later(v.health_check_interval, self._health_round)
        now = self.loop.time()
        actions = run.machine.start(now)
        if adopt:
            actions += run.machine.force(now, State.MASTER)
            self._apply(run, actions, "adopted", "master when the previous agent handed over")
        else:
            self._apply(run, actions, "started")
        self._ask_carrier(run)

    def update(self, lay: Layout) -> None:
        """The router's spec changed (an interface, the gateway, a floating IP): its VRRP instance
        goes on untouched, no re-election; a master adds and removes the changed addresses."""
        run = self.runs[lay.router_id]
        old = run.lay
        names = {p.name for p in lay.ports}
        with netns.inside(lay.namespace):
            index = {p.name: socket.if_nametoindex(p.name) for p in lay.ports}
        run.lay = lay
        gone = [(index[dev], a) for dev, a in old.master_addresses()
                if (dev, a) not in lay.master_addresses() and dev in names and index[dev] == run.index.get(dev)]
        run.index = index
        _prepare(run)
        if run.machine.state == State.MASTER:
            # The removed addresses go, the whole set is (re)added (those already there stay).
            self._netlink(run, nlbatch.removal(gone) + run.requests.add)
            self._garp(run)

    def remove(self, router_id: str) -> None:
        run = self.runs.pop(router_id, None)
        if run is None:
            return
        self._apply(run, run.machine.shutdown(self.loop.time()), "removed")
        self._close(run)

    def _close(self, run: RouterRun) -> None:
        run.slot = None
        if run.garp_later is not None:
            run.garp_later.cancel()
        self.garp_due.pop(run.lay.router_id, None)
        self._unwatch(run)
        run.sock.close()
        run.nl.close()
        if run.icmp is not None:
            run.icmp.close()
        # A packet socket's close waits for an RCU grace period (~14 ms): off the loop, so removing
        # routers does not hold up the others' adverts.
        self.loop.run_in_executor(None, run.arp.close)

    def detach(self) -> None:
        """Leave every router as it is (addresses, namespaces) and stop serving them: the next agent
        adopts them (a restart of the agent is not a failover). The sockets are left for the
        process's exit to close: closing them here would hold the next agent back (it waits for
        this one to be gone) by a grace period per packet socket, past the backups' Master_Down
        interval at a few hundred routers."""
        for run in self.runs.values():
            run.slot = None
            if run.garp_later is not None:
                run.garp_later.cancel()
            self._unwatch(run)
        self.garp_due.clear()
        self.runs.clear()
        self._stop_health()

    def _stop_health(self) -> None:
        if self.health_handle is not None:
            self.health_handle.cancel()
            self.health_handle = None

    def _unwatch(self, run: RouterRun) -> None:
        self.loop.remove_reader(run.sock.fileno())
        self.loop.remove_reader(run.nl.fileno())
        if run.icmp is not None:
            self.loop.remove_reader(run.icmp.fileno())
        if run.gw_release is not None:
            run.gw_release.cancel()
            run.gw_release = None

    async def stop(self) -> None:
        """Priority 0 from every master, addresses withdrawn: the backups take over after Skew_Time."""
        now = self.loop.time()
        for run in self.runs.values():
            self._apply(run, run.machine.shutdown(now), "stopping")
        await asyncio.sleep(0)  # the kernel has applied the withdrawals (sent synchronously)
        for run in self.runs.values():
            self._netlink_input(run)
            self._close(run)
        self.runs.clear()
        self._stop_health()

    def states(self) -> dict[str, State]:
        return {rid: run.machine.state for rid, run in self.runs.items()}

    # -- the machine's actions ------------------------------------------------------------------
    def _apply(self, run: RouterRun, actions: list[Action], cause: Cause = "timer", detail: str = "") -> None:
        for act in actions:
            if isinstance(act, Send):
                self._send(run, act.priority)
            elif isinstance(act, Transition):
                self._transition(run, Change(run.lay.router_id, act.old, act.new, cause, detail))
        deadline = run.machine.deadline()
        when = None if deadline is None else timer_slot(deadline)
        if when is not None and run.slot is not None and run.slot <= when:
            # The slot armed earlier comes first, finds nothing due yet and arms the router again
            # for the deadline then: a backup's every advert (each pushes Master_Down out) then
            # costs nothing here, one wakeup per Master_Down_Interval instead of a timer moved
            # per advert (500 a second at 1000 routers).
            return
        run.slot = None  # out of a later slot it was in (skipped there)
        if when is not None and run.lay.router_id in self.runs:
            run.slot = when
            due = self.slots.get(when)
            if due is None:
                self.slots[when] = [run]
                self.loop.call_at(when, self._slot_due, when)
            else:
                due.append(run)

    def _slot_due(self, slot: float) -> None:
        for run in self.slots.pop(slot, ()):
            if run.slot == slot and self.runs.get(run.lay.router_id) is run:
                self._tick(run, slot)

    def _tick(self, run: RouterRun, slot: float) -> None:
        """The router's timer, at its slot: every router due in one slot is served in one wakeup of
        the loop. The machine is given the slot's time when the loop is on time, so a master's
        adverts stay on the slot grid (2 s apart exactly) instead of slipping by its latency."""
        run.slot = None
        now = self.loop.time()
        at = slot if now - slot < TIMER_SLOT else now
        if run.machine.state == State.BACKUP:
            self._apply(run, run.machine.tick(at), "master-down", "no advert for Master_Down_Interval")
        else:
            self._apply(run, run.machine.tick(at))

    def _send(self, run: RouterRun, priority: int) -> None:
        packet = run.packets.get(priority)
        if packet is None:
            e = run.expect
            adv = Advert(2, run.lay.vrid, priority, e.interval_cs, (run.lay.vip.ip,), e.auth_type, e.password)
            payload = encode(adv)
            packet = ipv4_header(run.lay.ha_address.ip, GROUP, len(payload)) + payload
            run.packets[priority] = packet
        run.sent += netio.send_quietly(run.sock, packet, (VRRP_GROUP_V4, 0))

    def _transition(self, run: RouterRun, t: Change) -> None:
        if t.new == State.MASTER and t.cause != "adopted":
            run.takeovers += 1
        if self.on_change is None:
            log.info("router %s: %s -> %s (%s)", run.lay.router_id, t.old.value, t.new.value, t.cause)
        if t.new == State.MASTER:
            self._netlink(run, run.requests.add)
            if self.on_change is not None:
                # Reported before the gratuitous ARPs are even scheduled: the agent's report of
                # this batch of transitions runs before the first GARP slice.
                self.on_change(t)
            self._garp(run)
            if self.vrrp.garp_master_delay > 0:
                run.garp_later = self.loop.call_later(self.vrrp.garp_master_delay, self._garp, run)
        elif t.old == State.MASTER:
            run.gateway = gwcheck.not_master(run.gateway)
            run.ping_out = False
            if run.garp_later is not None:
                run.garp_later.cancel()
                run.garp_later = None
            self.garp_due.pop(run.lay.router_id, None)
            self._netlink(run, run.requests.remove)
        if self.on_change is not None and t.new != State.MASTER:
            self.on_change(t)

    def _netlink(self, run: RouterRun, requests: bytes) -> None:
        """The prepared address and route requests, applied by the kernel before `send` returns."""
        try:
            run.nl.send(requests)
        except OSError as exc:
            log.error("router %s: address changes: %s", run.lay.router_id, exc)

    def _netlink_input(self, run: RouterRun) -> None:
        """Failed address requests (logged) and link changes in the router's namespace."""
        try:
            failed, links = nlbatch.read(run.nl)
        except OSError as exc:  # ENOBUFS: more messages than the socket holds; some were lost
            log.error("router %s: address changes failed or link changes lost: %s", run.lay.router_id, exc)
            if run.lay.router_id in self.runs:
                self._ask_carrier(run)
            return
        for seq, _kind, err in failed:
            log.error("router %s: %s: %s", run.lay.router_id, run.requests.what.get(seq, f"request {seq}"),
                      os.strerror(err))
        up = links.get(run.index[run.lay.ha.name])
        if up is not None and run.lay.router_id in self.runs:
            self._carrier(run, up)

    def _ask_carrier(self, run: RouterRun) -> None:
        """ha-'s state now: the kernel's answer comes in as a link change (`_netlink_input`)."""
        try:
            nlbatch.ask_link(run.nl, run.index[run.lay.ha.name])
        except OSError as exc:
            log.error("router %s: asking for %s's carrier: %s", run.lay.router_id, run.lay.ha.name, exc)

    def _carrier(self, run: RouterRun, up: bool) -> None:
        """keepalived's `track_interface` on ha- (as Neutron configures it): without carrier on
        ha- the router is FAULT (a master steps down and withdraws its addresses: it can neither
        send nor hear adverts); with carrier back it is a backup again, and with nopreempt it
        stays one while the other node is master."""
        if up != run.carrier_down:
            return  # no change
        run.carrier_down = not up
        ha = run.lay.ha.name
        self._fault(run, "link-up" if up else "link-down", f"{ha} {'has carrier' if up else 'lost carrier'}")

    def _fault(self, run: RouterRun, cause: Cause, detail: str) -> None:
        """FAULT while ha- has no carrier or the gateway check holds the router down; else not."""
        fault = run.carrier_down or run.gateway.failed_until is not None
        self._apply(run, run.machine.set_fault(self.loop.time(), fault), cause, detail)

    # -- the gateway check (Neutron's ha_vrrp_health_check_interval) ----------------------------
    def _health_round(self) -> None:
        """Every master with a gateway: the last ping's outcome (no answer by now is a miss), then
        the next ping."""
        interval = self.vrrp.health_check_interval
        self.health_handle = self.loop.call_later(interval, self._health_round)
        for run in list(self.runs.values()):
            up = run.lay.upstream
            if run.icmp is None or up is None or run.machine.state != State.MASTER:
                continue
            if run.ping_out:
                self._gateway_outcome(run, False)
                if run.machine.state != State.MASTER:
                    continue
            run.ping_seq = (run.ping_seq + 1) & 0xFFFF
            run.ping_out = True
            gwping.send_echo(run.icmp, up, run.ping_seq)

    def _icmp_input(self, run: RouterRun) -> None:
        assert run.icmp is not None
        up = run.lay.upstream
        for _ in range(16):
            try:
                packet = run.icmp.recv(2048)
            except (BlockingIOError, OSError):
                return
            if up is not None and run.ping_out and gwping.reply_seq(packet, up) == run.ping_seq:
                self._gateway_outcome(run, True)

    def _gateway_outcome(self, run: RouterRun, ok: bool) -> None:
        """The outstanding ping answered, or (at the next round) not."""
        run.ping_out = False
        was = run.gateway
        run.gateway = gwcheck.answered(was, ok, self.loop.time(), gwcheck.hold_time(self.vrrp.advert_int))
        until = run.gateway.failed_until
        if until is not None and was.failed_until is None:
            detail = f"gateway {run.lay.upstream} did not answer {gwcheck.FALL} pings in a row"
            self._fault(run, "gateway-lost", detail)
            run.gw_release = self.loop.call_at(until, self._gateway_release, run)

    def _gateway_release(self, run: RouterRun) -> None:
        run.gw_release = None
        run.gateway = gwcheck.released(run.gateway, self.loop.time())
        if run.lay.router_id in self.runs:
            self._fault(run, "gateway-retry", "the gateway check's hold is over: electable again")

    def _garp(self, run: RouterRun) -> None:
        """A burst of `garp_repeat` rounds, 50 ms apart, for this router's master addresses."""
        rid = run.lay.router_id
        if rid not in self.runs:
            return
        self.garp_due[rid] = self.vrrp.garp_repeat
        if self.garp_round:
            self.garp_round.append(rid)  # a round is under way: this router joins it
        elif self.garp_handle is None:
            self.garp_handle = self.loop.call_soon(self._garp_slice)

    def _garp_slice(self) -> None:
        """Part of a round: routers in turn until GARP_SLICE has passed, then the loop's other work,
        then the rest; the next round begins GARP_GAP after this one began."""
        self.garp_handle = None
        if not self.garp_round:
            self.garp_round.extend(self.garp_due)
            self.garp_round_began = self.loop.time()
        until = time.monotonic() + GARP_SLICE
        while self.garp_round and time.monotonic() < until:
            rid = self.garp_round.popleft()
            left = self.garp_due.get(rid)
            if left is None:
                continue  # its burst is over, or the router was removed
            run = self.runs.get(rid)
            if run is None or run.machine.state != State.MASTER:
                del self.garp_due[rid]
                continue
            for dev, frame in run.garp_frames:
                netio.send_quietly(run.arp, frame, (dev, netio.ETH_P_ARP))
            if left > 1:
                self.garp_due[rid] = left - 1
            else:
                del self.garp_due[rid]
        if self.garp_round:
            self.garp_handle = self.loop.call_soon(self._garp_slice)
        elif self.garp_due:
            self.garp_handle = self.loop.call_at(self.garp_round_began + GARP_GAP, self._garp_slice)

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
            heard = run.heard
            if heard is None or not heard.same(data):
                try:
                    heard = self._check(run, data)
                except Dropped as d:
                    if run.drops.drop(d.reason, now):
                        log.warning("router %s: dropped VRRP packet: %s", run.lay.router_id, d)
                    continue
                if heard is None:
                    continue
                run.heard = heard
            run.received += 1
            actions = run.machine.on_advert(now, heard.priority, heard.interval_cs, heard.src)
            if actions:
                self._apply(run, actions, "priority-0" if heard.priority == 0 else "advert",
                            f"advert from {ipaddress.IPv4Address(heard.src)} priority {heard.priority}")
            else:
                self._apply(run, actions)

    @staticmethod
    def _check(run: RouterRun, data: bytes) -> Heard | None:
        """Every check of a received advert; None for this router's own, or another router's."""
        head, payload = split_ipv4(data)
        if head.src == run.lay.ha_address.ip:
            return None
        adv = decode(payload, 4, head.src, head.dst)
        if adv.vrid != run.lay.vrid:
            # Another router on the same HA network (only before the VRID filter was on):
            # normal traffic, counted, never logged.
            run.drops.counts["vrid"] = run.drops.counts.get("vrid", 0) + 1
            return None
        verify(adv, head.ttl, run.expect)
        return Heard(data, (data[0] & 0x0F) * 4, adv.priority, adv.interval_cs, int(head.src))


def _prepare(run: RouterRun) -> None:
    """The router's takeover and release requests and its gratuitous ARP frames, made once (a
    takeover of every router at the same moment is then a send per router)."""
    lay, index = run.lay, run.index
    ext, up = lay.external, lay.upstream
    route = (up, index[ext.name]) if ext is not None and up is not None else None
    run.requests = nlbatch.prepare([(index[dev], a) for dev, a in lay.master_addresses()], route,
                                   {i: n for n, i in index.items()})
    macs = {p.name: p.mac for p in lay.ports}
    run.garp_frames = [(dev, netio.garp_frame(bytes.fromhex(mac.replace(":", "")), a.ip))
                       for dev, a in lay.master_addresses() if (mac := macs.get(dev)) is not None]


async def withdraw_all(layouts: list[Layout]) -> None:
    """Remove every master-only address of these routers (a node that starts must be a backup)."""
    for lay in layouts:
        if not netns.exists(lay.namespace):
            continue
        with netns.inside(lay.namespace):
            nl = nlbatch.open_socket()
            index = {p.name: socket.if_nametoindex(p.name) for p in lay.ports}
        try:
            nl.send(nlbatch.removal([(index[dev], a) for dev, a in lay.master_addresses()]))
            for seq, _kind, err in nlbatch.failures(nl):
                log.error("router %s: withdrawing address %d: %s", lay.router_id, seq, os.strerror(err))
        finally:
            nl.close()
