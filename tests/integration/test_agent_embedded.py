"""Three agents on one embedded store, in one process, with the real scheduler and real resource
agents (OCF Dummy and Stateful, processes): placement, monitor failure → restart → move, clean
leave, leader takeover, failed fencing, promotion and its handover."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import needs_ocf_agent
from hakeeper.agent import state as st
from hakeeper.agent.daemon import Agent
from hakeeper.coord.memory import MemoryStore
from hakeeper.spec import parse_spec

SPEC = """
cluster: {name: t, stonith-enabled: false, resource-stickiness: 100}
nodes: [{name: n1}, {name: n2}, {name: n3}]
resources:
  primitives:
    - id: dummy
      agent: ocf:heartbeat:Dummy
      operations: [{name: monitor, interval: 1s, timeout: 10s}]
    - id: svc
      agent: process
      params: {command: "sleep 1000"}
      meta: {migration-threshold: 2}
      operations: [{name: monitor, interval: 1s, timeout: 10s}]
  groups:
    - id: grp
      members: [dummy, svc]
"""


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.store = MemoryStore()
        self.keys = st.Keys("t")
        self.tmp = tmp
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, node: str, **options: Any) -> Agent:
        agent = Agent(self.store, node, cluster="t", ttl=2, state_dir=str(self.tmp), **options)
        self.agents[node] = agent
        self.tasks[node] = asyncio.create_task(agent.run())
        return agent

    async def apply(self, text: str) -> None:
        spec = parse_spec(text)
        await self.store.put(self.keys.config, st.dumps({"version": 1, "spec": spec.model_dump(mode="json")}))

    async def settled(self, spec: str, holder: Callable[[], Awaitable[str | None]], **options: Any) -> str:
        """Start the three agents, apply `spec` and wait until `holder()` names a node: that node."""
        for n in ("n1", "n2", "n3"):
            self.start(n, **options)
        await self.apply(spec)
        await self.until(lambda: _some(holder()))
        node = await holder()
        assert node is not None
        return node

    async def where(self) -> dict[str, list[str]]:
        kvs, _ = await self.store.get_prefix(self.keys.status)
        out: dict[str, list[str]] = {}
        for kv in kvs:
            node, rsc = kv.key[len(self.keys.status) :].split("/")
            doc = st.loads(kv.value)
            if doc.get("role") == "Started" and not doc.get("failed"):
                out.setdefault(rsc, []).append(node)
        return out

    async def until(self, cond: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await cond():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; status: {await self.where()}")
            await asyncio.sleep(0.1)

    async def group_on(self) -> str | None:
        w = await self.where()
        d, s = w.get("dummy", []), w.get("svc", [])
        return d[0] if len(d) == 1 and d == s else None

    async def kill(self, node: str) -> None:
        """The agent dies without a word (its lease runs out). Bounded: a task that does not
        finish within 10 s after cancellation is left behind rather than hanging the test."""
        self.tasks[node].cancel()
        await asyncio.wait([self.tasks[node]], timeout=10)

    async def close(self) -> None:
        # Bounded teardown: a shutdown stuck behind an action in flight must not hang the run.
        for node, agent in self.agents.items():
            if not self.tasks[node].done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(agent.shutdown(), 30)
        for t in self.tasks.values():
            t.cancel()
        await asyncio.wait(list(self.tasks.values()), timeout=10)
        await self.store.close()
        # An agent that "died" in a test left its processes running, as a real one would.
        for pidfile in self.tmp.glob("*/*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.killpg(int(pidfile.read_text().split()[0]), signal.SIGKILL)


def run(tmp: Path, body: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        h = Harness(tmp)
        try:
            await asyncio.wait_for(body(h), 200)
        finally:
            await h.close()

    asyncio.run(main())


def svc_pid(tmp: Path, node: str) -> int:
    return int((tmp / node / "svc.pid").read_text().split()[0])


def test_group_placed_restarted_then_moved(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        first = await h.settled(SPEC, h.group_on)
        leader = (await h.store.get(h.keys.leader)).value.decode()  # type: ignore[union-attr]
        assert leader in h.agents
        # First monitor failure: restarted on the same node (fail count 1 < threshold 2).
        os.kill(svc_pid(h.tmp, first), signal.SIGKILL)
        await h.until(lambda: _fail_count(h, first, 1))
        await h.until(lambda: _eq(h.group_on(), first))
        # Second failure reaches migration-threshold: the whole group moves.
        await asyncio.sleep(0.5)
        os.kill(svc_pid(h.tmp, first), signal.SIGKILL)
        await h.until(lambda: _fail_count(h, first, 2))
        await h.until(lambda: _ne_none(h.group_on(), first))
        second = await h.group_on()
        assert second not in (None, first)
        # Exactly one copy: the old node stopped its Dummy.
        kvs, _ = await h.store.get_prefix(h.keys.events)
        assert any(st.loads(kv.value)["kind"] == "monitor-failed" for kv in kvs)

    run(tmp_path, body)


def test_clean_leave_moves_group_and_leader_takeover(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        first = await h.settled(SPEC, h.group_on)
        leader = (await h.store.get(h.keys.leader)).value.decode()  # type: ignore[union-attr]
        # The node running the group leaves cleanly: the group restarts on another node.
        await h.agents[first].shutdown()
        await h.until(lambda: _ne_none(h.group_on(), first))
        if leader != first:
            await h.agents[leader].shutdown()

        # A new leader is elected among the remaining agents and nothing else moves.
        async def new_leader() -> bool:
            kv = await h.store.get(h.keys.leader)
            return kv is not None and kv.value.decode() not in (leader, first)

        await h.until(new_leader)

    run(tmp_path, body)


async def _some(x: Awaitable[Any]) -> bool:
    return await x is not None


async def _eq(x: Awaitable[Any], v: Any) -> bool:
    return await x == v


async def _ne_none(x: Awaitable[Any], v: Any) -> bool:
    got = await x
    return got is not None and got != v


async def _fail_count(h: Harness, node: str, n: int) -> bool:
    doc = st.loads((await h.store.get(h.keys.fail_of(node, "svc")) or _Empty()).value)
    return bool(doc) and doc.get("count", 0) >= n


class _Empty:
    value = b"null"


FENCED_SPEC = SPEC.replace("stonith-enabled: false", "stonith-enabled: true").replace(
    "  groups:",
    """    - id: fencer
      agent: stonith:fence_dummy
      params: {type: fail, power_timeout: "2"}
  groups:""",
)


def test_failed_fencing_keeps_resources_where_they_were(tmp_path: Path) -> None:
    """A node lost while running the group, and a fence device that fails: the leader keeps
    retrying, the group is started nowhere else meanwhile (no two copies), and the events say why."""

    async def body(h: Harness) -> None:
        victim = await h.settled(FENCED_SPEC, h.group_on)
        await h.kill(victim)

        async def fence_failed_twice() -> bool:
            kvs, _ = await h.store.get_prefix(h.keys.events)
            return sum(st.loads(kv.value)["kind"] == "fence-failed" for kv in kvs) >= 2

        # fence_dummy gives up after its power_timeout (2 s); the leader retries every 3 s.
        await h.until(fence_failed_twice, 60)
        where = await h.where()
        # Still reported on the lost node only; never started on another.
        assert where.get("svc") == [victim] and where.get("dummy") == [victim], where

    run(tmp_path, body)


PROMOTABLE_SPEC = """
cluster: {name: t, stonith-enabled: false, resource-stickiness: 100}
nodes: [{name: n1}, {name: n2}, {name: n3}]
resources:
  primitives:
    - id: db
      agent: ocf:pacemaker:Stateful
      operations:
        - {name: monitor, interval: 1s, timeout: 10s, role: Unpromoted}
        - {name: monitor, interval: 1500ms, timeout: 10s, role: Promoted}
    - id: writer
      agent: process
      params: {command: "sleep 1000"}
      operations: [{name: monitor, interval: 1s, timeout: 10s}]
  clones:
    - id: db-clone
      child: db
      meta: {promotable: true}
constraints:
  colocation:
    - {id: writer-with-promoted, resource: writer, with: db-clone, with-role: Promoted, score: INFINITY}
  order:
    - {id: promote-then-writer, first: db-clone, first-action: promote, then: writer}
"""


async def _roles(h: Harness) -> dict[str, str]:
    """{node: role} of the db clone's instances, from the agents' reports."""
    kvs, _ = await h.store.get_prefix(h.keys.status)
    out = {}
    for kv in kvs:
        node, rsc = kv.key[len(h.keys.status) :].split("/")
        doc = st.loads(kv.value)
        if rsc.split(":")[0] == "db" and not doc.get("failed"):
            out[node] = doc.get("role")
    return out


async def _promoted_with_writer(h: Harness, exclude: str | None = None) -> str | None:
    """The node holding the single promoted instance and the writer, with every other live node
    (all but `exclude`) running an unpromoted instance; None while that is not the state. What a
    lost node last reported (`exclude`, without fencing) is left out."""
    roles = {n: r for n, r in (await _roles(h)).items() if n != exclude}
    promoted = [n for n, r in roles.items() if r == "Promoted"]
    others = [n for n in ("n1", "n2", "n3") if n != exclude and n not in promoted]
    if len(promoted) != 1 or any(roles.get(n) != "Unpromoted" for n in others):
        return None
    if [n for n in (await h.where()).get("writer", []) if n != exclude] != promoted:
        return None
    return promoted[0]


async def _promoted_cluster(h: Harness) -> str:
    """Three agents running PROMOTABLE_SPEC, settled; returns the node holding the promotion."""
    return await h.settled(PROMOTABLE_SPEC, lambda: _promoted_with_writer(h))


def test_promotable_agent_promotes_one_and_moves_promotion_on_standby(tmp_path: Path) -> None:
    """A real promotable OCF agent (Stateful) sets its promotion scores with crm_attribute; the
    leader promotes one instance and the writer follows it. Standby of that node: demote and stop
    there, promote another, the writer moves after the promotion."""
    needs_ocf_agent("pacemaker/Stateful", "pacemaker-resource-agents")

    async def body(h: Harness) -> None:
        first = await _promoted_cluster(h)
        # The scores came from the agent through the crm_attribute shim (Stateful: 10 and 5).
        scores = {n: (await h.store.get(h.keys.attr_of(n, "master-db"))) for n in ("n1", "n2", "n3")}
        assert {n: kv.value for n, kv in scores.items() if kv} == {
            n: st.dumps("10" if n == first else "5") for n in ("n1", "n2", "n3")
        }, scores

        await h.store.put(h.keys.node(first), st.dumps({"standby": True}))
        await h.until(lambda: _ne_none(_promoted_with_writer(h, exclude=first), first))
        second = await _promoted_with_writer(h, exclude=first)
        assert second not in (None, first)
        assert first not in await _roles(h)  # demoted and stopped on the standby node
        kvs, _ = await h.store.get_prefix(h.keys.events)
        kinds = [(st.loads(kv.value)["kind"], st.loads(kv.value)["node"]) for kv in kvs]
        assert ("demote", first) in kinds and ("promote", second) in kinds, kinds

    run(tmp_path, body)


def test_promotion_moves_when_the_promoted_node_is_lost(tmp_path: Path) -> None:
    """The agent on the promoted node dies (no fencing configured): once its lease has expired,
    another instance is promoted and the writer follows."""
    needs_ocf_agent("pacemaker/Stateful", "pacemaker-resource-agents")

    async def body(h: Harness) -> None:
        first = await _promoted_cluster(h)
        await h.kill(first)
        await h.until(lambda: _ne_none(_promoted_with_writer(h, exclude=first), first))

    run(tmp_path, body)


def test_clean_shutdown_of_the_promoted_node_hands_promotion_over(tmp_path: Path) -> None:
    """The agent on the promoted node shuts down (SIGTERM): the leader demotes and stops its
    instance there (Stateful refuses to stop a promoted instance, so a plain local stop would
    fail), promotes another, and the writer follows; nothing fails on the way."""
    needs_ocf_agent("pacemaker/Stateful", "pacemaker-resource-agents")

    async def body(h: Harness) -> None:
        first = await _promoted_cluster(h)
        await asyncio.wait_for(h.agents[first].shutdown(), 60)
        await h.until(lambda: _ne_none(_promoted_with_writer(h, exclude=first), first))
        assert first not in await _roles(h)
        kvs, _ = await h.store.get_prefix(h.keys.events)
        events = [st.loads(kv.value) for kv in kvs]
        assert ("demote", first) in [(e["kind"], e["node"]) for e in events]
        assert not [e for e in events if e["kind"].endswith("-failed")], "\n".join(
            f"{e['at']:.3f} {e['node']} {e['kind']} {e['message']}" for e in events
        )

    run(tmp_path, body)


def test_a_stop_without_the_leader_demotes_what_it_finds_promoted(tmp_path: Path) -> None:
    """The local stop (no quorum, the end of a shutdown) on a node whose agent does not know that
    its instance is promoted, as when the store went away while a promote was in flight: Stateful
    refuses the stop (rc 8), so the agent demotes and stops again rather than leave it running."""
    needs_ocf_agent("pacemaker/Stateful", "pacemaker-resource-agents")

    async def body(h: Harness) -> None:
        first = await _promoted_cluster(h)
        agent = h.agents[first]
        agent.local_promoted.clear()  # the promote's result had not come back
        spec = agent.spec()
        assert spec is not None
        assert await agent._stop_locally(spec, "no quorum") == []
        assert not agent.local_running

    run(tmp_path, body)


def test_a_stall_of_the_process_is_not_a_lost_store(tmp_path: Path) -> None:
    """The whole process (three agents and the store) does not run for 1.8 s as the promoted
    node starts to shut down, as on a loaded machine. The silence is the agents' own: their leases
    live on, so none of them stops its resources for no quorum, and the handover is the leader's
    (demote there, promote elsewhere), as without the stall. Before core/quorum.py every agent
    stopped everything at once and the test above failed under load."""
    needs_ocf_agent("pacemaker/Stateful", "pacemaker-resource-agents")

    async def body(h: Harness) -> None:
        first = await _promoted_cluster(h)
        asyncio.get_running_loop().call_soon(time.sleep, 1.8)  # blocks the event loop: a stall
        await asyncio.wait_for(h.agents[first].shutdown(), 60)
        await h.until(lambda: _ne_none(_promoted_with_writer(h, exclude=first), first))
        kvs, _ = await h.store.get_prefix(h.keys.events)
        events = [st.loads(kv.value) for kv in kvs]
        assert ("demote", first) in [(e["kind"], e["node"]) for e in events]
        stops = {
            n: a.metrics.registry.get_sample_value("hakeeper_agent_quorum_stops_total") for n, a in h.agents.items()
        }
        assert stops == {"n1": 0, "n2": 0, "n3": 0}, stops

    run(tmp_path, body)


def test_the_node_timeout_cluster_option_overrides_the_agents_flag(tmp_path: Path) -> None:
    """Agents started with --node-timeout 0 (lease expiry only), a configuration saying
    node-timeout 500ms: the lost node is detected by its silent heartbeat, not its lease."""
    spec = FENCED_SPEC.replace("stonith-enabled: true,", "stonith-enabled: true, node-timeout: 500ms,").replace(
        "params: {type: fail, power_timeout: \"2\"}", f"params: {{status_file: {tmp_path}/fence-status}}"
    )
    assert "node-timeout: 500ms" in spec and "status_file" in spec

    async def body(h: Harness) -> None:
        victim = await h.settled(spec, h.group_on, node_timeout=0)
        await h.kill(victim)
        await h.until(lambda: _ne_none(h.group_on(), victim))
        kvs, _ = await h.store.get_prefix(h.keys.events)
        plans = [st.loads(kv.value) for kv in kvs if st.loads(kv.value)["kind"] == "plan"]
        fenced = [p for p in plans if victim in p.get("fence", [])]
        assert fenced and victim in fenced[0]["suspects"], plans

    run(tmp_path, body)
