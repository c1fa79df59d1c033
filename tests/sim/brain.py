"""One simulated agent: the node's side (adapter.py: the real `hakeeper.agent.core.node`
decisions, sequenced as daemon.py does) and the real leader,
`hakeeper.agent.core.leader.LeaderCore`, driven as agent/leader.py drives it.

The shell of agent/leader.py hands the core a `LeaderView` on every change in the store and at
least at the core's `deadline()`, carries out its effects in order and feeds each answer back;
it waits for the answer of a transaction or of the scheduler before it looks at the store again.
This does the same inside one brain: the core's effects go out with their tokens negated (the
node side's tokens are positive), answers with a negative token go back to the core, and after
every input, unless the core waits for an answer, the core gets a view of what the node sees now
(the core itself decides whether that view is worth a step: a change, or a second passed).
"""

from __future__ import annotations

import dataclasses

from hakeeper.agent.core import types as t
from hakeeper.agent.core.leader import LeaderCore, LeaderView, suspects_of
from hakeeper.agent.heartbeat import Heartbeats, note_update

from .adapter import NodeAdapter

_ANSWERS = (t.TxnDone, t.Decided, t.FenceDone)
_ASKS = (t.Txn, t.Campaign, t.Decide, t.Fence, t.Cancel)


class SimAgent:
    """`handle(now, input) -> effects` and `deadline()`, as the core's interface says."""

    def __init__(self, node: str, cluster: str, ttl: int) -> None:
        self.node = NodeAdapter(node, cluster, ttl)
        self.leader = LeaderCore(node, cluster)
        self.ttl = ttl
        self.changed = True  # the store changed since the core's last view
        self.heartbeats = Heartbeats(node)  # as the daemon notes them (daemon._note_heartbeats)

    def deadline(self) -> float | None:
        own = self.node.deadline()
        lead = self.leader.deadline()
        return lead if own is None else min(own, lead)

    def handle(self, now: float, inp: t.Input) -> list[t.Effect]:
        answered = isinstance(inp, _ANSWERS) and inp.token < 0
        if answered:
            out = self._lead(now, dataclasses.replace(inp, token=-inp.token))
        else:
            out = self.node.handle(now, inp)
            if isinstance(inp, t.StoreUpdate) and not self._beats_only(now, inp):
                self.changed = True
        # As the shell's loop: a view when the store changed, at the core's deadline, and after
        # an answer (a fence's answer wakes the loop; a step goes on or ends with its answer).
        if not self.leader.busy() and (self.changed or answered or now >= self.leader.deadline()):
            out += self._lead(now, self.view(now))
        return out

    def _beats_only(self, now: float, inp: t.StoreUpdate) -> bool:
        keys = self.node.keys  # as daemon._note_heartbeats
        return note_update(self.heartbeats, keys.heartbeat, keys.members, inp.update, now)

    def view(self, now: float) -> LeaderView:
        """As daemon.leader_view: a copy of the store's values, the lease, whether the store
        answers (not cut off, a refresh within 75% of the TTL), and whose heartbeat stopped."""
        node = self.node
        healthy = not node.quorum_lost and bool(node.lease) and node.healthy(self.ttl * 0.25)
        suspects = suspects_of(node.spec(), node.values, node.keys, self.heartbeats, now, node.node_timeout())
        view = LeaderView(dict(node.values), node.lease, healthy, suspects, self.changed)
        self.changed = False
        return view

    def _lead(self, now: float, inp: LeaderView | t.TxnDone | t.Decided | t.FenceDone) -> list[t.Effect]:
        out: list[t.Effect] = []
        for effect in self.leader.handle(now, inp):
            if isinstance(effect, _ASKS):
                effect = dataclasses.replace(effect, token=-effect.token)
            out.append(effect)
        return out
