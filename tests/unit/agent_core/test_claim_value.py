"""A claim and a new plan never both succeed, also when a node's next incarnation claims the same
action of the same plan again (found by the simulation: seeds 4233 and 4405 ran the VIP on two
nodes). The leader's publish compares `claims` by value; that value must change with every claim
the leader could have read before."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as stt

from hakeeper.agent import plan as pl
from hakeeper.agent import state as st
from hakeeper.agent.core import types as t
from hakeeper.agent.core.leader import LeaderCore, LeaderView
from hakeeper.coord.store import KeyValue, Put
from hakeeper.placement import schedule
from hakeeper.spec import parse_spec

K = st.Keys("c")
SPEC = parse_spec("""
cluster: {name: c}
nodes: [{name: a}, {name: b}]
resources:
  primitives:
    - {id: r, agent: process, params: {command: sleep 1}}
constraints:
  location:
    - {id: r-prefers-a, resource: r, node: a, score: 50}
""")


def holds_all(compares: tuple[object, ...], store: Mapping[str, bytes]) -> bool:
    """The publish's guards against the store's values (versions do not matter here)."""
    def kv(key: str) -> KeyValue | None:
        return None if key not in store else KeyValue(key, store[key], 1, 1, 1)

    return all(c.holds(kv(c.key)) for c in compares)  # type: ignore[attr-defined]


def publish_over(values: dict[str, bytes], now: float) -> t.Txn | None:
    """The leader b's publish, if its step on `values` makes one."""
    core = LeaderCore("b", "c")
    effects = core.handle(now, LeaderView(values, 7, True))
    campaign = next(e for e in effects if isinstance(e, t.Campaign))
    effects = core.handle(now, t.TxnDone(campaign.token, True))
    decide = next(e for e in effects if isinstance(e, t.Decide))
    effects = core.handle(now, t.Decided(decide.token, schedule(decide.spec, decide.state), 0.01))
    return next((e for e in effects if isinstance(e, t.Txn) and e.why == "publish"), None)


def test_a_reclaim_by_the_next_incarnation_refuses_a_publish_made_before_it() -> None:
    # Plan epoch 1: start r on a. a's first incarnation (lease 10) claimed it and was lost with
    # it, fenced (reports withdrawn), rebooted; its next incarnation (lease 11) has probed.
    members = {K.member(n): st.dumps({"probed": True}) for n in "ab"}
    plan = pl.PlanDoc.of(schedule(*st.scheduler_input(SPEC, members, K, 0.0)), 1, "b", 0.0)
    start = next(a for a in plan.actions if a.task == "start")
    assert start.node == "a"
    config = st.dumps({"version": 1, "spec": SPEC.model_dump(mode="json")})
    read = {
        **members,
        K.config: config,
        K.plan: pl.encode(plan),
        K.claims: st.claim_value("a", 1, start.id, 10),
        K.leader: b"b",
    }
    # The leader's view is a little older than the second claim, and sees other work (a is
    # in standby now, say): it publishes, guarded by the claims value it read.
    read[K.nodes + "a"] = st.dumps({"standby": True})
    publish = publish_over(read, 20.0)
    assert publish is not None
    # Meanwhile a's next incarnation claims the same action of the same plan.
    after = dict(read)
    after[K.claims] = st.claim_value("a", 1, start.id, 11)
    after[K.running_of("a")] = st.dumps({"epoch": 1, "id": start.id})
    assert holds_all(publish.compares, read)  # without the claim the publish goes through
    assert not holds_all(publish.compares, after)  # after it, it is refused: never both
    # Node, epoch and action alone (the value before the fix) would have let both succeed.
    assert st.claim_value("a", 1, start.id, 10) != st.claim_value("a", 1, start.id, 11)
    assert isinstance(publish.ops[0], Put)


@given(
    stt.tuples(stt.sampled_from("ab"), stt.integers(1, 50), stt.integers(0, 20), stt.integers(1, 2**63)),
    stt.tuples(stt.sampled_from("ab"), stt.integers(1, 50), stt.integers(0, 20), stt.integers(1, 2**63)),
)
def test_claims_of_different_incarnations_or_actions_never_look_alike(
    x: tuple[str, int, int, int], y: tuple[str, int, int, int]
) -> None:
    assert (st.claim_value(*x) == st.claim_value(*y)) == (x == y)
