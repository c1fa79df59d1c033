"""Fast failure detection: heartbeats the leader watches (pure; time is passed in).

Lease expiry alone detects a dead node only after the full TTL, and longer when the dead node
hosted etcd's raft leader (the new raft leader grants every lease its full TTL again). So each
agent also rewrites a small heartbeat key (bound to its lease) every `interval`, and the leader
notes, on its own monotonic clock, when each node's heartbeat arrived through its watch. A node
whose heartbeat has not arrived for `node_timeout` is suspected failed, but only while the store
demonstrably works: the leader's own heartbeat must have come round `rounds` times since, so a
store that stalls (a raft election, a slow member) never makes every node look dead at once.
And a stall restarts everyone's clock: when the leader's own beats stopped for more than half of
`node_timeout`, a node's silence is counted from the end of that stall, not from its last beat.
After an election every agent whose member timed out tries the next endpoint, which may be the
partitioned member that caused the election (a soak run: k1 walked from its own member to two
stalled or cut-off ones, landed its next beat 1.5 s after the store came back and was fenced
although nothing was wrong with it); a full node_timeout from the stall's end covers two such tries.

A suspect is treated as lost (fenced first when it reported resources); lease expiry stays the
backstop. The agent uses suspicion only when stonith is enabled: without fencing, a node that is
slow rather than dead would still run its resources while they start elsewhere.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from hakeeper.coord.watch import Changes, Snapshot

DEFAULT_NODE_TIMEOUT = 1.5
ROUNDS = 3
# How many of my own beats' arrival times are kept to find the last stall: 16 node-timeouts at
# the usual four beats per node-timeout.
OWN_HISTORY = 64


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
    own_arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=OWN_HISTORY))

    def saw(self, node: str, now: float) -> None:
        if node == self.me:
            self.own += 1
            self.own_arrivals.append(now)
        self.seen[node] = (now, self.own)

    def last_stall_end(self, longer_than: float) -> float:
        """When the last gap between my own beats longer than `longer_than` ended (-inf: none
        in the history)."""
        times = list(self.own_arrivals)
        return next((end for before, end in zip(reversed(times[:-1]), reversed(times[1:]), strict=True)
                     if end - before > longer_than), float("-inf"))

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
        stall_end = self.last_stall_end(node_timeout / 2)  # once per call, not per member
        for node in members:
            if node == self.me or node not in self.seen:
                continue
            at, own_then = self.seen[node]
            since = max(at, stall_end)
            if now - since > node_timeout and self.own - own_then >= rounds:
                out.add(node)
        return out


def note_update(heartbeats: Heartbeats, beats: str, members: str, update: Snapshot | Changes, now: float) -> bool:
    """Record when heartbeats arrive in a watch update (keys under `beats`; a member key under
    `members` deleted: that node's incarnation ended). True if the update held nothing else, so
    nobody needs waking for it (the leader looks at heartbeats on its own tick)."""
    if isinstance(update, Snapshot):
        heartbeats.reset([k[len(beats) :] for k in update.values if k.startswith(beats)], now)
        return False
    only = True
    for e in update.events:
        if e.key.startswith(beats):
            if e.kind == "put":
                heartbeats.saw(e.key[len(beats) :], now)
            continue
        only = False
        if e.kind == "delete" and e.key.startswith(members):
            heartbeats.forget(e.key[len(members) :])
    return only
