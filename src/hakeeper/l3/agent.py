"""`hakeeper l3-agent`: one process per network node serving every router scheduled on it.

With `--spec`, the schedule is the pure `scheduler.schedule` over the spec's routers and the
network nodes, so every node works out the same answer by itself. Without it the routers and
their schedule come from the store (`routerstore`) and the agent follows their changes live.
The agent builds its routers' namespaces, runs them all in one `RouterSpeaker`, and reports
their states to the store (what `hakeeper router list-hosting` reads) at every change and at least
every half advert interval, and to a state file (JSON, replaced atomically) at every change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hakeeper.coord.store import Store, StoreError, bounded, wait_event
from hakeeper.errors import InputError
from hakeeper.l3 import dataplane, hafilter, netns
from hakeeper.l3.controller import watch_members
from hakeeper.l3.dhcp import DEFAULT_DIR as DHCP_DIR
from hakeeper.l3.dhcp import DhcpServices
from hakeeper.l3.events import Change, EventLog
from hakeeper.l3.hosting import HaState, Report, report_key
from hakeeper.l3.metrics import L3Metrics
from hakeeper.l3.model import RouterSpec
from hakeeper.l3.routerstore import Stored, decode, routers_key
from hakeeper.l3.scheduler import RouterWant, Schedule, schedule
from hakeeper.l3.speaker import RouterSpeaker, VrrpSettings, withdraw_all
from hakeeper.vrrp.machine import State

log = logging.getLogger("hakeeper.l3")

# Neutron's words for VRRP states (`neutron l3-agent-list-hosting-router`'s ha_state).
HA_STATE: dict[State, HaState] = {State.MASTER: "active", State.BACKUP: "standby", State.FAULT: "fault",
                                   State.INIT: "standby", State.STOP: "unknown"}


@dataclass(frozen=True)
class AgentOptions:
    node: str
    nodes: tuple[str, ...]
    physical: dict[str, str]
    netns_prefix: str = ""
    state_file: str | None = None
    garp_master_delay: float = 60.0
    cluster: str = "hakeeper"
    pid_file: str | None = None
    node_lost_after: float = 20.0  # a node whose report has not moved this long is lost (controller.py)
    events_file: str | None = None  # JSON lines, one per event (events.py)
    metrics: str | None = None  # HOST:PORT for Prometheus
    dhcp_dir: str = DHCP_DIR  # dnsmasq's files of this node's DHCP servers (dhcp.py)


def _agent_alive(pid: int) -> bool:
    try:
        return b"l3-agent" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def handover(pid_file: str | None) -> bool:
    """Take over from a running agent of this node (the one in `pid_file`): everything slow
    (starting Python, reading the store) is done by now, so it is told to stop for a restart
    (SIGHUP: it leaves its routers as they are) only now, and its masters are adopted a moment
    later, well within the backups' Master_Down_Interval. Then this agent's pid goes in. True
    if a running agent handed over (only then are masters adopted: a namespace holding the VIP
    after a crash may be stale, the other node having taken over)."""
    if pid_file is None:
        return False
    took_over = False
    try:
        pid = int(Path(pid_file).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = 0
    if pid and pid != os.getpid() and _agent_alive(pid):
        log.info("taking over from the running agent (pid %d)", pid)
        os.kill(pid, signal.SIGHUP)
        for _ in range(1500):
            if not _agent_alive(pid):
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError(f"the running agent (pid {pid}) did not stop within 15 s")
        took_over = True
    directory = os.path.dirname(os.path.abspath(pid_file))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hakeeper-l3-pid.")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(tmp, pid_file)
    return took_over


def node_schedule(spec: RouterSpec, nodes: tuple[str, ...]) -> Schedule:
    s = spec.settings
    wants = [RouterWant(r.id, r.project) for r in spec.routers if r.admin_state_up]
    hosts = s.l3_ha_net_cidr.num_addresses - 2
    return schedule(wants, nodes, s.replicas(len(nodes)), ha_hosts=hosts)


def layouts_for(spec: RouterSpec, sched: Schedule, node: str, prefix: str,
                mapped: frozenset[str] = frozenset()) -> list[dataplane.Layout]:
    out = []
    for r in spec.routers:
        p = sched.routers.get(r.id)
        if p is not None and node in p.nodes:
            out.append(dataplane.layout(r, p, node, spec.settings, prefix, mapped))
    return out


def write_state(path: str, node: str, states: dict[str, State]) -> None:
    data = {"node": node, "time": time.time(), "pid": os.getpid(),
            "routers": {rid: HA_STATE[st] for rid, st in sorted(states.items())}}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hakeeper-l3.")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


class RouterAgent:
    """The routers of this node as the spec and schedule say, applied as differences: a router
    added is built and started, one deleted is stopped and its namespace removed, one changed is
    changed in place; the others are not touched (no re-election). The `ip`/`nft` commands that
    build and change namespaces run on a worker thread: the event loop keeps every other
    router's adverts on time meanwhile (a loop blocked for Master_Down_Interval is a failover)."""

    def __init__(self, opts: AgentOptions, speaker: RouterSpeaker) -> None:
        self.opts = opts
        self.speaker = speaker
        self.applied: dict[str, dataplane.Layout] = {}
        self.names: dict[str, str] = {}
        self.unmapped: set[str] = set()
        self.filtered: list[hafilter.HaPort] | None = None  # the ha- ports in the node's advert filter

    async def filter_ha_ports(self) -> None:
        """The node's path for adverts (`hafilter`) for the routers applied now: each router's
        ha- port gets only its own router's adverts. Reloaded only when a port comes, goes or
        changes VRID; without it (nft refused) every advert still reaches its router, just at a
        higher cost, so a failure is a warning."""
        lays = list(self.applied.values())
        ports = await asyncio.to_thread(hafilter.ports_of, lays, self.opts.physical)
        if ports == self.filtered:
            return
        try:
            await asyncio.to_thread(hafilter.load, ports)
        except (OSError, RuntimeError) as exc:
            log.warning("HA advert filter not loaded (each advert reaches every router namespace of its HA "
                        "network): %s", exc)
            return
        self.filtered = ports

    def wanted(self, spec: RouterSpec, sched: Schedule) -> dict[str, dataplane.Layout]:
        lays = layouts_for(spec, sched, self.opts.node, self.opts.netns_prefix, frozenset(self.opts.physical))
        out = {}
        for lay in lays:
            unmapped = sorted({p.network for p in lay.ports} - set(self.opts.physical))
            if unmapped:
                if lay.router_id not in self.unmapped:
                    log.error("router %s: this node has no --physical interface for %s", lay.router_id,
                              ", ".join(unmapped))
                self.unmapped.add(lay.router_id)
                continue
            out[lay.router_id] = lay
        return out

    async def start(self, spec: RouterSpec, sched: Schedule, adopt_masters: bool) -> None:
        """First application: reuse the namespaces the previous agent left, build the rest, remove
        router namespaces of routers no longer here. With `adopt_masters` (the previous agent
        handed over just now) its masters stay masters: a restart is not a failover. Otherwise
        every router starts as a backup, its master addresses withdrawn (a node that returns after
        a crash must not bring back a second master)."""
        want = self.wanted(spec, sched)
        self.names = {r.id: r.name for r in spec.routers}
        # The advert filter a previous agent left may send VRIDs to ports rebuilt below: empty
        # until this agent's routers are in place (every advert is flooded meanwhile, as without it).
        await self.filter_ha_ports()
        mine = {lay.namespace for lay in want.values()}
        for ns in netns.names(f"{self.opts.netns_prefix}qrouter-"):
            if ns not in mine:
                netns.delete(ns)
        started = time.monotonic()
        found = {}
        for rid, lay in want.items():
            complete, holds_vip = await dataplane.inspect(lay)
            found[rid] = (complete, holds_vip and adopt_masters)
        # Masters first and at once, in this process: their next advert must reach the backups
        # before Master_Down_Interval runs out since the previous agent's last one.
        for rid, (complete, holds_vip) in found.items():
            if complete and holds_vip:
                self.speaker.add(want[rid], adopt=True)
                self.applied[rid] = want[rid]
        # From nothing, all at once (no master address anywhere in them).
        await asyncio.to_thread(dataplane.build_many, [want[rid] for rid, (c, _) in found.items() if not c])
        for rid, (complete, holds_vip) in found.items():
            lay = want[rid]
            if complete and not holds_vip:
                await withdraw_all([lay])  # a backup holds none of the master's addresses
            if not (complete and holds_vip):
                self.speaker.add(lay)
                # Serve the routers added so far before adding the next: adding hundreds takes
                # longer than Master_Down_Interval on a loaded machine, and a router whose
                # master's adverts wait unread in its socket meanwhile would take over from a
                # live master (seen at 300 routers: the new node made itself master of them).
                await asyncio.sleep(0)
            self.applied[rid] = lay
        await self.filter_ha_ports()
        for rid, (complete, _) in found.items():
            if complete:
                await asyncio.to_thread(dataplane.refresh, want[rid])  # the NAT table as the spec says now
        adopted = sum(1 for c, _ in found.values() if c)
        log.info("%d router(s) adopted (%d master), %d built in %.2f s", adopted,
                 sum(1 for c, h in found.values() if c and h), len(found) - adopted, time.monotonic() - started)

    async def apply(self, spec: RouterSpec, sched: Schedule) -> None:
        want = self.wanted(spec, sched)
        self.names.update({r.id: r.name for r in spec.routers})
        for rid in [r for r in self.applied if r not in want]:
            log.info("router %s: removed from this node", rid)
            self.speaker.remove(rid)
            await asyncio.to_thread(dataplane.destroy, self.applied.pop(rid))
        for rid, lay in want.items():
            old = self.applied.get(rid)
            if old is None:
                log.info("router %s: added to this node", rid)
                await asyncio.to_thread(dataplane.build, lay)
                self.speaker.add(lay)
            elif old != lay:
                if (old.vrid, old.ha_address, old.namespace) != (lay.vrid, lay.ha_address, lay.namespace):
                    self.speaker.remove(rid)  # a new identity on the HA network: a new instance
                    await asyncio.to_thread(dataplane.destroy, old)
                    # The advert filter forgets the old port before the new one exists: with the
                    # VRID still sent to the old port, the new backup would hear nothing.
                    del self.applied[rid]
                    await self.filter_ha_ports()
                    await asyncio.to_thread(dataplane.build, lay)
                    self.speaker.add(lay)
                else:
                    log.info("router %s: changed in place", rid)
                    await asyncio.to_thread(dataplane.update, old, lay)
                    self.speaker.update(lay)
            self.applied[rid] = lay
        await self.filter_ha_ports()


async def _follow(store: Store, cluster: str, since: int, interval: float) -> Stored | None:
    """The stored routers once their revision is past `since` (polled: one small read a second)."""
    try:
        kv = await bounded(store.get(routers_key(cluster)), interval)
    except (StoreError, TimeoutError, OSError) as exc:
        log.warning("cannot read the routers from the store: %s", exc)
        return None
    if kv is None or kv.mod_revision <= since:
        return None
    try:
        return decode(kv.value, kv.mod_revision)
    except (InputError, ValueError, KeyError) as exc:
        log.error("the routers in the store are unreadable, keeping the current ones: %s", exc)
        return None


async def serve(spec: RouterSpec | None, opts: AgentOptions, store: Store | None = None) -> None:
    """Serve the routers of `spec` (scheduled here over opts.nodes), or with `spec` None the
    routers in the store, following their changes."""
    stored: Stored | None = None
    if spec is None:
        assert store is not None
        while stored is None:
            stored = await _follow(store, opts.cluster, 0, 2.0)
            if stored is None:
                log.info("waiting for routers in the store (hakeeper router init)")
                await asyncio.sleep(1.0)
        spec, sched = stored.spec, stored.schedule
    else:
        sched = node_schedule(spec, opts.nodes)
    for problem in sched.problems:
        log.error("%s", problem)
    dataplane.ensure_bridges(opts.physical)
    s = spec.settings
    password = s.ha_vrrp_auth_password.get_secret_value() if s.ha_vrrp_auth_password else None
    loop = asyncio.get_running_loop()
    dirty = asyncio.Event()
    events = EventLog(opts.node, opts.events_file)
    metrics: L3Metrics | None = None
    report_due = False
    serving = False  # while the agent starts, its hundreds of first transitions wait for one report

    written: dict[str, State] | None = None  # what the state file holds

    def publish_here(states: dict[str, State]) -> None:
        """The state file (and metrics): written in the loop, a few milliseconds, and only when a
        state changed (rewriting 1000 routers' file every second was a visible part of an idle
        node's system time; liveness is the store's report, not this file)."""
        nonlocal written
        events.flush()
        if metrics is not None:
            metrics.states(states)
        if opts.state_file and states != written:
            write_state(opts.state_file, opts.node, states)
            written = states

    def changed(c: Change) -> None:
        nonlocal report_due
        events.transition(c)
        if metrics is not None:
            metrics.change(c)
        if not serving:
            dirty.set()
        elif not report_due:
            # Reported with the batch of transitions it belongs to: a mass takeover is one batch
            # of timer callbacks, and this runs right after it, before any of their gratuitous
            # ARPs go out (the speaker reports a takeover before it schedules them).
            report_due = True
            loop.call_soon(report_now)

    def report_now() -> None:
        nonlocal report_due
        report_due = False
        publish_here(speaker.states())
        dirty.set()  # the store's report follows from the publisher

    speaker = RouterSpeaker(
        VrrpSettings(s.ha_vrrp_advert_int, password, opts.garp_master_delay,
                     health_check_interval=float(s.ha_vrrp_health_check_interval)),
        on_change=changed)
    if opts.metrics:
        metrics = L3Metrics(speaker)
        metrics.serve(opts.metrics)
    agent = RouterAgent(opts, speaker)
    await agent.start(spec, sched, await handover(opts.pid_file))
    serving = True
    # DHCP for the project networks: placed from the routers document (its nodes and down set)
    # by every agent alike, so a lost node's networks move with the controller's `down`.
    dhcp = DhcpServices(opts.node, opts.netns_prefix, list(opts.physical), opts.dhcp_dir)
    if stored is not None:
        await dhcp.run("apply", spec, stored.nodes, stored.down)
    else:
        await dhcp.run("apply", spec, opts.nodes, ())
    stopping = asyncio.Event()
    detach = False

    def stop(keep: bool) -> None:
        nonlocal detach
        detach = keep
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, False)
    # SIGHUP: stop for a restart, leaving every router as it is for the next agent to adopt.
    loop.add_signal_handler(signal.SIGHUP, stop, True)
    interval = float(s.ha_vrrp_advert_int)

    async def publish(states: dict[str, State]) -> None:
        publish_here(states)
        if store is None:
            return
        report = Report(opts.node, time.time(), interval,
                        {rid: (agent.names.get(rid, rid), HA_STATE[st]) for rid, st in states.items()})
        try:
            await bounded(store.put(report_key(opts.cluster, opts.node), report.encode()), interval / 2)
        except (StoreError, TimeoutError, OSError) as exc:
            log.warning("cannot report to the store: %s", exc)

    async def publisher() -> None:
        # At every change, and at least every half advert interval: a report older than one
        # interval means this agent is gone (see hosting.py).
        while True:
            await wait_event(dirty, interval / 2)
            dirty.clear()
            await publish(speaker.states())
            await asyncio.sleep(0.05)  # a burst of 1000 transitions is one write

    async def follower(since: int) -> None:
        nonlocal stored
        assert store is not None
        while True:
            await asyncio.sleep(0.5)
            new = await _follow(store, opts.cluster, since, interval)
            if new is None:
                continue
            since = new.revision
            stored = new
            if new.spec.settings != s:
                log.warning("L3 HA settings changed in the store: they apply when the agent restarts")
            try:
                await agent.apply(new.spec, new.schedule)
            except (OSError, RuntimeError) as exc:
                log.error("applying router changes: %s", exc)
            await dhcp.run("apply", new.spec, new.nodes, new.down)
            dirty.set()

    await publish(speaker.states())
    tasks = [asyncio.create_task(publisher()), asyncio.create_task(dhcp.supervise_forever(interval))]
    if stored is not None:
        assert store is not None
        tasks.append(asyncio.create_task(follower(stored.revision)))

        def current() -> Stored:
            assert stored is not None
            return stored

        tasks.append(asyncio.create_task(watch_members(store, opts.cluster, opts.node, current,
                                                       opts.node_lost_after, interval, events, metrics)))
    await stopping.wait()
    for t in tasks:
        t.cancel()
    if detach:
        log.info("stopping for a restart: %d router(s) left as they are", len(speaker.runs))
        speaker.detach()
        events.close()
        return
    await speaker.stop()
    try:
        await asyncio.to_thread(hafilter.unload)  # after the last advert (priority 0) went out
    except (OSError, RuntimeError) as exc:
        log.error("removing the node's advert filter: %s", exc)
    await dhcp.run("stop")  # the network's other DHCP servers answer meanwhile
    await publish({})
    events.close()
