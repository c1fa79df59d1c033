"""`hakeeper l3-agent`: one process per network node serving every router scheduled on it.

The schedule is the pure `scheduler.schedule` over the spec's routers and the network nodes, so
every node works out the same answer by itself. The agent builds its routers' namespaces, runs
them all in one `RouterSpeaker`, and writes their states to a state file (JSON, replaced
atomically, at most one advert interval late) that `hakeeper router list-hosting` reads.
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

from hakeeper.coord.store import Store, StoreError, bounded, wait_event
from hakeeper.l3 import dataplane
from hakeeper.l3.hosting import HaState, Report, report_key
from hakeeper.l3.model import RouterSpec
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


async def serve(spec: RouterSpec, opts: AgentOptions, store: Store | None = None) -> None:
    sched = node_schedule(spec, opts.nodes)
    for problem in sched.problems:
        log.error("%s", problem)
    lays = layouts_for(spec, sched, opts.node, opts.netns_prefix, frozenset(opts.physical))
    dataplane.ensure_bridges(opts.physical)
    await withdraw_all(lays)
    started = time.monotonic()
    for lay in lays:
        dataplane.build(lay)
    log.info("%d router(s) built in %.2f s", len(lays), time.monotonic() - started)
    s = spec.settings
    password = s.ha_vrrp_auth_password.get_secret_value() if s.ha_vrrp_auth_password else None
    loop = asyncio.get_running_loop()
    dirty = asyncio.Event()
    speaker = RouterSpeaker(VrrpSettings(s.ha_vrrp_advert_int, password, opts.garp_master_delay),
                            on_change=lambda _rid, _st: dirty.set())
    for lay in lays:
        speaker.add(lay)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    names = {r.id: r.name for r in spec.routers}
    interval = float(s.ha_vrrp_advert_int)

    async def publish(states: dict[str, State]) -> None:
        if opts.state_file:
            write_state(opts.state_file, opts.node, states)
        if store is None:
            return
        report = Report(opts.node, time.time(), interval,
                        {rid: (names[rid], HA_STATE[st]) for rid, st in states.items()})
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

    await publish(speaker.states())

    pub = asyncio.create_task(publisher())
    await stopping.wait()
    pub.cancel()
    await speaker.stop()
    await publish({})
