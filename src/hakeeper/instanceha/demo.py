"""`hakeeper demo instances`: instance HA against real Nova, live (root).

Real Nova 34 with its fake virt driver (the novalab: MariaDB, RabbitMQ, Placement, Glance, Neutron,
nova-api, conductor, scheduler, a nova-compute per compute host) in network namespaces, and a
hakeeper agent on the controller and on each of two computes (instanceha/halab.py). Instances are
booted on compute-1; a line every 2 s says, for each compute, the cluster's word for it, its
nova-compute as Nova sees it and the instances Nova places there, and the recovery under way.
Then compute-1's plug is pulled (link down, every process in it SIGKILLed): hakeeper fences it,
forces its nova-compute down and evacuates its instances, and compute-2 fills up. At the end an
independent check that reads neither hakeeper's records nor its events: Nova lists each instance
ACTIVE on the other host, Nova's migration records count exactly one evacuation per instance, and
the hypervisors' guest ledgers (novalab/guests.py) show no guest running on two hosts at once.

`run_scenario` is the demo without its setup, so a test can run it on a cluster it already has.
"""

from __future__ import annotations

import time
from base64 import b64decode, b64encode
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hakeeper.agent import operator as op
from hakeeper.agent import state as st
from hakeeper.instanceha import view
from hakeeper.instanceha.halab import HaCluster
from hakeeper.instanceha.novalab.guests import GuestWatcher
from hakeeper.instanceha.novalab.lab import NovaLab
from hakeeper.instanceha.novalab.services import http_json, missing_install
from hakeeper.netlab.livedemo import Closable, Say, first_within, run_lab_demo, seconds, ticker

TAG = "ihademo"
NEEDED = ("etcd", "mariadbd", "mariadb-install-db", "/usr/lib/rabbitmq/bin/rabbitmq-server")
INSTANCES = 8


@dataclass(frozen=True)
class Outcome:
    """What the demo measured (seconds after the plug was pulled; None where it did not get that
    far) and what the independent check found."""

    instances: int
    fenced_s: float | None
    forced_down_s: float | None
    active_s: float | None  # every instance ACTIVE on the other host
    misplaced: int  # not listed ACTIVE on the survivor (or missing)
    not_once: int  # Nova's migration records: evacuated zero times or more than once
    guest_violations: int  # a guest seen on two hosts, or moved before its old host was dead

    @property
    def ok(self) -> bool:
        measured = None not in (self.fenced_s, self.forced_down_s, self.active_s)
        return measured and self.instances > 0 and not (self.misplaced or self.not_once or self.guest_violations)

    def result_line(self) -> str:
        return (f"RESULT instances={self.instances} fenced_s={seconds(self.fenced_s)} "
                f"forced_down_s={seconds(self.forced_down_s)} all_active_s={seconds(self.active_s)} "
                f"misplaced={self.misplaced} not_exactly_once={self.not_once} "
                f"guest_violations={self.guest_violations}")


def instances_on(servers: list[dict[str, Any]], host: str) -> str:
    here = Counter(str(s.get("status")) for s in servers if s.get("OS-EXT-SRV-ATTR:host") == host)
    return ", ".join(f"{n} {status}" for status, n in sorted(here.items())) or "0"


def recovery_progress(recoveries: list[dict[str, Any]], after: float) -> str:
    mine = [r for r in recoveries if float(r["fenced_at"]) >= after]
    if not mine:
        return "none"
    rec = mine[-1]
    states = Counter(str(i["state"]) for i in rec["instances"])
    detail = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    return f"{rec['node']} {rec['phase']}" + (f" ({detail})" if detail else "")


def store_values(ha: HaCluster) -> dict[str, bytes]:
    """The cluster's keys, read in one call of etcd's JSON gateway: a `hakeeper status` process
    a line took 5-10 s at load 30, too slow for a line every 2 s."""
    prefix = f"/hakeeper/{ha.tag}/"
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # every key that starts with the prefix
    body = {"key": b64encode(prefix.encode()).decode(), "range_end": b64encode(end.encode()).decode()}
    doc = http_json("POST", f"http://{ha.endpoint}/v3/kv/range", body, timeout=5)
    kvs = doc.get("kvs", []) if isinstance(doc, dict) else []
    return {b64decode(kv["key"]).decode(): b64decode(kv.get("value", "")) for kv in kvs}


def state_line(ha: HaCluster, since: float) -> str:
    """Each compute: the cluster's word, its nova-compute in Nova, the instances Nova places on
    it; then the recovery begun since `since`. Whatever does not answer is said, never fatal."""
    keys = st.Keys(ha.tag)
    try:
        values = store_values(ha)
        nodes = op.status_view(values, keys, time.time())["nodes"]
        recovery = recovery_progress([r.as_json() for r in view.recoveries(values, keys)], since)
    except Exception:  # the store may be busy electing a leader
        nodes, recovery = {}, "?"
    try:
        servers = ha.servers()
    except Exception:  # Nova's API busy: the line says so
        servers = []
    try:
        doc = ha.lab.nova("GET", "/os-services?binary=nova-compute")
        services = {str(s["host"]): s for s in doc.get("services", [])} if isinstance(doc, dict) else {}
    except Exception:
        services = {}
    parts = []
    for host in ha.lab.compute_names:
        svc = services.get(host)
        nova = "?" if svc is None else f"{svc.get('state')}{', forced down' if svc.get('forced_down') else ''}"
        parts.append(f"{host} {nodes.get(host, '?')}, nova-compute {nova}: {instances_on(servers, host)}")
    return " | ".join(parts) + f" | recovery: {recovery}"


def _recovery(ha: HaCluster, victim: str, dead_at: float) -> dict[str, Any] | None:
    """The recovery of `victim` begun after `dead_at`, read from the store in-process (a
    `hakeeper recovery list` process took seconds at load, and the story lagged behind)."""
    try:
        recs = view.recoveries(store_values(ha), st.Keys(ha.tag))
    except Exception:  # the store busy: asked again at the next poll
        return None
    mine = [r.as_json() for r in recs if r.node == victim and r.fenced_at >= dead_at]
    return mine[-1] if mine else None


def _since(ha: HaCluster, victim: str, dead_at: float, field: str) -> float | None:
    rec = _recovery(ha, victim, dead_at)
    at = float(rec.get(field) or 0.0) if rec else 0.0
    return at - dead_at if at else None


def _recovery_over(ha: HaCluster, victim: str, dead_at: float) -> float | None:
    rec = _recovery(ha, victim, dead_at) or {}
    return float(rec.get("finished_at") or time.time()) if rec.get("phase") in ("done", "failed") else None


def run_scenario(ha: HaCluster, say: Say, *, victim: str = "compute-1", survivor: str = "compute-2",
                 boot: int = INSTANCES, tick: float = 2.0, timeout: float = 900) -> Outcome:
    """On a running cluster (HaCluster.start; `survivor` up and enabled in Nova, the evacuator
    without reserved hosts): boot `boot` instances on `victim`, pull its plug, watch the fence,
    the force-down and the evacuation, then check every instance that was on `victim`."""
    began = time.time()
    with ticker(say, lambda: state_line(ha, began), tick):
        booting = time.monotonic()
        ha.boot(boot, victim, name="demo")
        ids = sorted(i for i, host in ha.server_hosts().items() if host == victim)
        say(f"{boot} instances booted on {victim} in {time.monotonic() - booting:.1f}s (one create call); "
            f"{len(ids)} instances there in all")
        earlier = ha.evacuations(ids)
        time.sleep(tick)  # a line of the calm before the fault
        with ha.guest_watcher() as watcher:
            say(f"pulling {victim}'s plug: its link goes down and every process in it is SIGKILLed "
                "(nova-compute, hakeeper's agent)")
            dead_at = ha.power_off(victim)
            fenced = first_within(lambda: _since(ha, victim, dead_at, "fenced_at"), 120, every=0.2)
            say(f"{victim} fenced {seconds(fenced)}s after the kill: its heartbeat went silent and the "
                "leader's fence device confirmed it; only now may anything be evacuated")
            forced = first_within(lambda: _since(ha, victim, dead_at, "forced_down_at"), 120, every=0.2)
            say(f"{victim}'s nova-compute forced down in Nova {seconds(forced)}s after the kill: Nova "
                "accepts evacuations at once instead of after service_down_time")
            say(f"evacuating {len(ids)} instances to {survivor} (Nova's evacuate, a few calls in flight)")
            try:
                ha.wait_active(ids, survivor, timeout)
                active: float | None = time.time() - dead_at
                say(f"every instance ACTIVE on {survivor} {active:.2f}s after the kill")
            except TimeoutError as exc:
                active = None
                say(f"not every instance ACTIVE on {survivor}: {exc}")
            over = first_within(lambda: _recovery_over(ha, victim, dead_at), 60, every=0.5)
            say(f"the recovery of {victim} is recorded {'over' if over is not None else 'not over after 60s'}")
            time.sleep(tick)
    return check(ha, ids, earlier, survivor, watcher, (fenced, forced, active), say)


def check(ha: HaCluster, ids: list[str], earlier: dict[str, int], survivor: str, watcher: GuestWatcher,
          times: tuple[float | None, float | None, float | None], say: Say) -> Outcome:
    """The independent check: Nova's listing, Nova's migration records, the guest ledgers."""
    listed = {str(s["id"]): s for s in ha.servers()}
    misplaced = [i for i in ids if listed.get(i, {}).get("status") != "ACTIVE"
                 or listed.get(i, {}).get("OS-EXT-SRV-ATTR:host") != survivor]
    counts = ha.evacuations(ids)
    not_once = [i for i in ids if counts[i] - earlier.get(i, 0) != 1]
    violations = watcher.violations()
    say(f"independent check: {len(ids) - len(misplaced)} of {len(ids)} instances listed ACTIVE on {survivor}; "
        f"Nova's migration records: {len(ids) - len(not_once)} evacuated exactly once"
        + (f" (not once: {', '.join(not_once)})" if not_once else "")
        + f"; guest ledgers: {len(violations)} guest(s) on two hosts or moved before the fence")
    for line in violations[:10]:
        say("  " + line)
    fenced, forced, active = times
    return Outcome(len(ids), fenced, forced, active, len(misplaced), len(not_once), len(violations))


def run_demo(*, workdir: str | None = None, say: Say = print) -> int:
    why = missing_install()
    if why is not None:
        say(f"hakeeper demo instances: {why}")
        return 1

    def body(base: str, timed: Say, labs: list[Closable]) -> Outcome:
        timed("starting real Nova in network namespaces (MariaDB, RabbitMQ, Placement, Glance, Neutron, "
              "nova-api, conductor, scheduler; a nova-compute with the fake driver on compute-1 and "
              "compute-2): a minute or two on a quiet machine, much longer under load")
        lab = NovaLab(computes=2, workdir=str(Path(base, "nova")))
        labs.append(lab)
        lab.start()
        timed(f"Nova is up ({lab.timings['cold_start']:.0f}s); starting etcd and a hakeeper agent on the "
              "controller and on each compute, the fence device and the evacuator")
        ha = HaCluster(lab, Path(base, "cluster"), tag=TAG, parallel=4)
        labs.insert(0, ha)  # closed before the lab: its agents run in the lab's namespaces
        ha.start()
        timed(f"the cluster is up; the evacuator runs on {ha.evacuator_node()}")
        return run_scenario(ha, timed)

    return run_lab_demo("instances", list(NEEDED), body, workdir=workdir, say=say)
