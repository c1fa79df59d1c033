"""Re-protection while the cluster runs: the l3-agent that is the controller (membership.py) marks
lost network nodes `down` in the routers document; the placement that goes with it gives every
router that lost a replica one on another node. The agents follow the document as for any other
change (agent.py): the new node builds the router and starts it as a BACKUP, and the surviving
master, whose own layout does not change, is not touched (no re-election).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from hakeeper.coord.store import KeyValue, Store, StoreError, bounded
from hakeeper.errors import InputError
from hakeeper.l3 import routerstore
from hakeeper.l3.alarms import DualActiveWatch
from hakeeper.l3.events import EventLog
from hakeeper.l3.hosting import Report, report_key, summary
from hakeeper.l3.membership import Liveness, controller
from hakeeper.l3.metrics import L3Metrics
from hakeeper.l3.routerstore import Stored

log = logging.getLogger("hakeeper.l3")


async def read_reports(store: Store, cluster: str, timeout: float) -> dict[str, KeyValue]:
    """node -> its latest report."""
    prefix = report_key(cluster)
    kvs, _ = await bounded(store.get_prefix(prefix), timeout)
    return {kv.key[len(prefix):]: kv for kv in kvs}


def watch_dual_active(watch: DualActiveWatch, reports: dict[str, KeyValue], events: EventLog,
                      metrics: L3Metrics | None) -> None:
    decoded = []
    for kv in reports.values():
        try:
            decoded.append(Report.decode(kv.value))
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    active = {r.id: r.active for r in summary(decoded, time.time())}
    for alarm in watch.observe(active, time.monotonic()):
        detail = (f"masters on {', '.join(alarm.nodes)} for {alarm.lasted:.1f} s (VRRP bound {watch.bound:.3f} s)"
                  if alarm.kind == "dual-active" else "one master again")
        events.emit(alarm.kind, alarm.router, detail=detail)
        if metrics is not None and alarm.kind == "dual-active":
            metrics.alarms.inc()
    if metrics is not None:
        metrics.dual_active.set(watch.count())


async def watch_members(store: Store, cluster: str, node: str, current: Callable[[], Stored],
                        lost_after: float, interval: float, events: EventLog, metrics: L3Metrics | None) -> None:
    """Runs in every agent; only the controller writes, and only the controller watches for two
    masters of one router (one alarm per episode for the cluster). Polls the reports a few times
    per `lost_after` (the reports are rewritten every half advert interval anyway)."""
    loop = asyncio.get_running_loop()
    live = Liveness(lost_after)
    dual = DualActiveWatch(3 * interval + (256 - 50) / 256)  # VRRPv2's Master_Down_Interval at priority 50
    period = max(0.5, min(interval, lost_after / 4))
    while True:
        await asyncio.sleep(period)
        try:
            reports = await read_reports(store, cluster, interval)
        except (StoreError, TimeoutError, OSError) as exc:
            log.warning("cannot read the agents' reports: %s", exc)
            continue
        now = loop.time()
        revisions = {n: kv.mod_revision for n, kv in reports.items()}
        live.observe(revisions, now)
        stored = current()
        down = live.down(stored.nodes, stored.down, now)
        if controller(stored.nodes, down, revisions) != node:
            continue
        watch_dual_active(dual, reports, events, metrics)
        if down == stored.down:
            continue
        lost = sorted(set(down) - set(stored.down))
        back = sorted(set(stored.down) - set(down))
        try:
            new = await routerstore.update(store, cluster, down=down)
        except (StoreError, TimeoutError, OSError, RuntimeError, InputError) as exc:
            log.warning("cannot write the network nodes lost (%s) and back (%s): %s", lost, back, exc)
            continue
        moved = sum(1 for rid, p in stored.schedule.routers.items()
                    if rid in new.schedule.routers and new.schedule.routers[rid].nodes != p.nodes)
        for n in lost:
            events.emit("node-lost", detail=f"network node {n}: no report for {lost_after:.0f} s; "
                        f"{moved} router(s) re-placed (revision {new.revision})")
        for n in back:
            events.emit("node-back", detail=f"network node {n} reports again (revision {new.revision})")
