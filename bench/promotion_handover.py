"""Promotion handover: how long a promotable resource (a real OCF agent, ocf:pacemaker:Stateful)
is without a promoted instance when its node goes, with a writer colocated with the promotion.

Three agents on one embedded store in this process (no root, no namespaces), fencing through
fence_dummy (which always succeeds). Each round starts a fresh cluster, waits until one instance
is promoted and the writer runs beside it, then either
  lost      cancels the agent of the promoted node without a word (its heartbeat stops): the
            leader detects it (node-timeout), fences it, promotes another instance, starts the
            writer there;
  shutdown  shuts that agent down cleanly (SIGTERM): the scheduler demotes and stops it there,
            promotes another instance and moves the writer.
and measures until the new promoted instance and the writer are both reported. Medians of
--rounds. Pacemaker cannot run here (no corosync), so there is no ratio.

    python3 bench/promotion_handover.py [--rounds 5] [--node-timeout 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hakeeper.agent import state as st
from hakeeper.agent.daemon import Agent, cancel_all
from hakeeper.coord.memory import MemoryStore
from hakeeper.spec import parse_spec

NODES = ("n1", "n2", "n3")
SPEC = """
cluster: {{name: b, stonith-enabled: true, resource-stickiness: 100, node-timeout: {timeout}s}}
nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]
resources:
  primitives:
    - id: db
      agent: ocf:pacemaker:Stateful
      operations:
        - {{name: monitor, interval: 1s, timeout: 10s, role: Unpromoted}}
        - {{name: monitor, interval: 1s, timeout: 10s, role: Promoted}}
    - id: writer
      agent: process
      params: {{command: "sleep 1000"}}
      operations: [{{name: monitor, interval: 1s, timeout: 10s}}]
    - id: fencer
      agent: stonith:fence_dummy
      params: {{status_file: {status}}}
  clones:
    - {{id: db-clone, child: db, meta: {{promotable: true}}}}
constraints:
  colocation:
    - {{id: writer-with-promoted, resource: writer, with: db-clone, with-role: Promoted, score: INFINITY}}
  order:
    - {{id: promote-then-writer, first: db-clone, first-action: promote, then: writer}}
"""


async def _holder(store: MemoryStore, keys: st.Keys, exclude: str | None) -> str | None:
    """The node with the promoted instance and the writer (ignoring `exclude`'s last reports)."""
    kvs, _ = await store.get_prefix(keys.status)
    promoted, writer = set(), set()
    for kv in kvs:
        node, rsc = kv.key[len(keys.status) :].split("/")
        doc = st.loads(kv.value)
        if node == exclude or doc.get("failed"):
            continue
        if rsc.split(":")[0] == "db" and doc.get("role") == "Promoted":
            promoted.add(node)
        if rsc == "writer" and doc.get("role") == "Started":
            writer.add(node)
    return next(iter(promoted)) if len(promoted) == 1 and promoted == writer else None


async def _until_holder(store: MemoryStore, keys: st.Keys, exclude: str | None, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await _holder(store, keys, exclude)
        if found is not None and found != exclude:
            return found
        await asyncio.sleep(0.01)
    raise TimeoutError("no promoted instance with its writer")


async def one_round(how: str, node_timeout: float) -> float:
    with tempfile.TemporaryDirectory(prefix="hk-bench-") as tmp:
        store = MemoryStore()
        keys = st.Keys("b")
        agents = {n: Agent(store, n, cluster="b", ttl=2, state_dir=tmp) for n in NODES}
        tasks = {n: asyncio.create_task(a.run()) for n, a in agents.items()}
        try:
            spec = parse_spec(SPEC.format(timeout=node_timeout, status=f"{tmp}/fence-status"))
            await store.put(keys.config, st.dumps({"version": 1, "spec": spec.model_dump(mode="json")}))
            first = await _until_holder(store, keys, None)
            await asyncio.sleep(2.0)  # settled: every heartbeat seen a few times
            t0 = time.monotonic()
            if how == "lost":
                await cancel_all([tasks[first]])
                await _until_holder(store, keys, first)
                return time.monotonic() - t0
            leaving = asyncio.ensure_future(agents[first].shutdown())
            await _until_holder(store, keys, first)
            took = time.monotonic() - t0
            await leaving
            return took
        finally:
            for n, a in agents.items():
                if not tasks[n].done():
                    await a.shutdown(drain_timeout=5)
            await cancel_all(list(tasks.values()))
            await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--node-timeout", type=float, default=1.5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for how in ("lost", "shutdown"):
        times = []
        for i in range(args.rounds):
            took = asyncio.run(one_round(how, args.node_timeout))
            times.append(took)
            print(f"{how} round {i + 1}: {took:.2f} s", flush=True)
        print(f"{how}: promoted elsewhere with its writer, median of {args.rounds}: "
              f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})", flush=True)


if __name__ == "__main__":
    main()
