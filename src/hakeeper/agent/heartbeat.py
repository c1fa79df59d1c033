"""Fast failure detection: heartbeats the leader watches (pure; time is passed in).

Lease expiry alone detects a dead node only after the full TTL, and longer when the dead node
hosted etcd's raft leader (the new raft leader grants every lease its full TTL again). So each
agent also rewrites a small heartbeat key (bound to its lease) every `interval`, and the leader
notes, on its own monotonic clock, when each node's heartbeat arrived through its watch. A node
whose heartbeat has not arrived for `node_timeout` is suspected failed, but only while the store
demonstrably works: the leader's own heartbeat must have come round `rounds` times since, so a
store that stalls (a raft election, a slow member) never makes every node look dead at once.

A suspect is treated as lost (fenced first when it reported resources); lease expiry stays the
backstop. The agent uses suspicion only when stonith is enabled: without fencing, a node that is
slow rather than dead would still run its resources while they start elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_NODE_TIMEOUT = 1.5
ROUNDS = 3


def interval_for(ttl: float, node_timeout: float) -> float:
    """How often an agent writes its heartbeat: TTL/4, and at least four beats per node-timeout."""
    return max(0.05, min(ttl / 4, node_timeout / 4))


def write_deadline(node_timeout: float) -> float:
    """How long one heartbeat write waits on one store endpoint before the client tries the next.

    A dead etcd member holds a request for the client's whole timeout (2 s by default), longer
    than node-timeout: the node's beats stop although the node is well, and the leader fences it.
    A third of node-timeout leaves time to reach another member and land a beat inside it."""
    return max(0.1, node_timeout / 3)


@dataclass
class Heartbeats:
    """What the leader has seen of everyone's heartbeats (`at` on the leader's monotonic clock)."""

    me: str
    own: int = 0  # how many of my own heartbeats came back through the watch
    seen: dict[str, tuple[float, int]] = field(default_factory=dict)  # node -> (at, own count then)

    def saw(self, node: str, now: float) -> None:
        if node == self.me:
            self.own += 1
        self.seen[node] = (now, self.own)

    def forget(self, node: str) -> None:
        """The node's member key went away (its lease ended): the next incarnation starts afresh."""
        self.seen.pop(node, None)

    def reset(self, nodes: Iterable[str], now: float) -> None:
        """After a resynchronisation the watch missed an unknown stretch: give everyone a full timeout."""
        self.seen = {n: (now, self.own) for n in nodes}

    def suspects(self, members: Iterable[str], now: float, node_timeout: float, rounds: int = ROUNDS) -> set[str]:
        """Members (other than me) whose heartbeat has been silent for node_timeout while mine came
        round at least `rounds` times. A member never seen is not suspected (lease expiry covers it)."""
        if node_timeout <= 0:
            return set()
        out = set()
        for node in members:
            if node == self.me or node not in self.seen:
                continue
            at, own_then = self.seen[node]
            if now - at > node_timeout and self.own - own_then >= rounds:
                out.add(node)
        return out
