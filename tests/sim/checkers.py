"""The invariants checked after every step of a run, and at its end.

Safety, after every event:
  * a primitive (not cloned) is active on at most one node, and a promotable clone has at most
    promoted-max promoted instances, in the world's truth (a fenced node runs nothing: fencing
    powered it off);
  * with stonith enabled, nothing a lost node ran (its lease expired while it still reported
    active resources) starts or is promoted elsewhere before that node's fence is confirmed in
    the store (or it came back and probed);
  * no acknowledged configuration change is lost: the config key's version in the store counts
    every write the operator was told succeeded.
Liveness, at the end (quorum, every node up, no fault for the settle time): there is a leader, the
scheduler run on the store's state has nothing left to do, and every report matches the truth.
"""

from __future__ import annotations

from hakeeper.agent import state as st
from hakeeper.coord.store import Event
from hakeeper.placement import schedule
from hakeeper.spec import ClusterSpec

from .cluster import Cluster


class Violation(AssertionError):
    """An invariant failed: the run's seed and trace go with it."""


class Checker:
    def __init__(self, sim: Cluster, spec: ClusterSpec, stonith: bool) -> None:
        self.sim = sim
        self.stonith = stonith
        self.acked_config_writes = 0
        cloned = {c.child for c in spec.resources.clones}
        self.singletons = [p.id for p in spec.resources.primitives if p.id not in cloned and p.agent.cls != "stonith"]
        self.singleton_set = frozenset(self.singletons)
        self.promotable = {
            c.child: (c.meta.promoted_max if c.meta.promoted_max is not None else 1)
            for c in spec.resources.clones
            if c.meta.promotable
        }
        self.lost: dict[str, dict[str, str]] = {}  # node -> {rsc: role} it reported when lost
        self.lost_in_flight: set[str] = set()  # nodes whose lease expired during an action

    def fail(self, what: str) -> None:
        raise Violation(what)

    def after_step(self) -> None:
        # One pass over the truth (a handful of entries): this runs after every event.
        seen: set[str] = set()
        promoted: dict[str, int] = {}
        for here in self.sim.truth.active.values():
            for rsc, role in here.items():
                if rsc in seen and rsc in self.singleton_set:
                    self._twice(rsc)
                seen.add(rsc)
                if role == "Promoted":
                    promoted[rsc] = promoted.get(rsc, 0) + 1
        for rsc, count in promoted.items():
            if count > self.promotable.get(rsc, count):
                where = sorted(n for n, r in self.sim.truth.where(rsc).items() if r == "Promoted")
                self.fail(f"{rsc} promoted on {count} nodes (promoted-max {self.promotable[rsc]}): {', '.join(where)}")
        kv = self.sim.store.data.get(self.sim.keys.config)
        if (kv.version if kv else 0) < self.acked_config_writes:
            self.fail(f"config at version {kv.version if kv else 0} but {self.acked_config_writes} writes acknowledged")

    def _twice(self, rsc: str) -> None:
        where = self.sim.truth.where(rsc)
        self.fail(f"{rsc} active on {len(where)} nodes: {', '.join(sorted(where))}{self._why(rsc, where)}")

    def _why(self, rsc: str, where: dict[str, str]) -> str:
        """What the world knows about how it came to run twice (to tell known bugs apart)."""
        notes = []
        for node in sorted(where):
            if node in self.lost_in_flight:
                notes.append(f"{node} was lost with an action in flight it never reported")
            member = (
                st.loads(self.sim.store.data[key].value)
                if (key := self.sim.keys.member(node)) in self.sim.store.data
                else None
            )
            if isinstance(member, dict) and not member.get("probed", True):
                notes.append(f"{node} has registered again and not probed yet")
            if (node, rsc) in self.sim.monitor_dropped:
                notes.append(f"{node}'s agent dropped it from what it runs after a failed monitor, yet it ran")
        return f" ({'; '.join(notes)})" if notes else ""

    def before_start(self, node: str, rsc: str, op: str) -> None:
        if not self.stonith:
            return
        for victim, ran in sorted(self.lost.items()):
            role = ran.get(rsc)
            if victim == node or role is None:
                continue
            if (op == "start" and rsc in self.singletons) or (op == "promote" and role == "Promoted"):
                back = self.sim.keys.member(victim) in self.sim.store.data
                self.fail(
                    f"{op} {rsc} on {node} while {victim}, lost with it {role}, is not fenced yet"
                    + (f" ({victim} has registered again and not probed yet)" if back else "")
                )

    def committed(self, events: list[Event], expired: bool) -> None:
        keys = self.sim.keys
        for e in events:
            if e.key.startswith(keys.members):
                node = e.key[len(keys.members) :]
                if e.kind == "delete" and expired:
                    if any(x.key == keys.running_of(node) for x in events):
                        self.lost_in_flight.add(node)
                    ran = {
                        rsc: str(doc.get("role"))
                        for (n, rsc), doc in st.statuses(self._values(), keys).items()
                        if n == node and st.active(doc)
                    }
                    if ran:
                        self.lost[node] = ran
                elif e.kind == "put" and (st.loads(e.value) or {}).get("probed"):
                    self.lost.pop(node, None)
            elif e.kind == "put" and e.key.startswith(keys.fence):
                self.lost.pop(e.key[len(keys.fence) :], None)

    def _values(self) -> dict[str, bytes]:
        return {k: kv.value for k, kv in self.sim.store.data.items() if k.startswith(self.sim.keys.prefix)}

    def settled(self) -> None:
        """Liveness: called after the settle time with no faults."""
        values, keys = self._values(), self.sim.keys
        if keys.leader not in values:
            self.fail("no leader after the settle time")
        found = st.config_of(values, keys)
        assert found is not None
        spec, state = st.scheduler_input(found[1], values, keys, self.sim.clock.now)
        work = sorted(a.key for a in schedule(spec, state).actions if not a.pseudo)
        if work:
            stale = [
                k[len(keys.running) :]
                for k, v in values.items()
                if k.startswith(keys.running)
                and isinstance(doc := st.loads(v), dict)
                and doc.get("id") in st.done_marks(values, keys, int(doc.get("epoch", 0)))
            ]
            why = f" (running/{', running/'.join(stale)} left for an action that is done)" if stale else ""
            self.fail(f"not settled: the scheduler still has work: {'; '.join(work)}{why}")
        reported = {
            (n, rsc): str(doc.get("role")) for (n, rsc), doc in st.statuses(values, keys).items() if st.active(doc)
        }
        truth = {(n, rsc): role for n, here in self.sim.truth.active.items() for rsc, role in here.items()}
        if reported != truth:
            self.fail(f"reports {sorted(reported.items())} differ from the truth {sorted(truth.items())}")
