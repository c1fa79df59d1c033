"""The pure boot decision of a RabbitMQ node under hakeeper: join, boot, force_boot, wait or refuse.

Inputs are what this node's data directory says (RabbitMQ's own `cluster_nodes.config` and
`nodes_running_at_shutdown`, read by `parse_node_list`), what each peer reports (its broker
answering or not, the members of its cluster; its boot report published as a node attribute at
the probe) and whether hakeeper sees the peer online. The output is a decision, never an action.

Rules (the data of a node is never thrown away by a routine step):
  * a node with data boots as it is: RabbitMQ rejoins its cluster by itself. It never joins,
    never resets. If the cluster that runs does not list it (it was forgotten), or its data names
    only nodes outside this cluster, it refuses: an operator decides, nothing is wiped;
  * a node without data joins a running peer (`join_cluster` on an empty node loses nothing); with
    no broker running anywhere and no data anywhere, the first in name order of the nodes being
    started now (their epmd is up) founds the cluster; a peer with data comes first, and this one
    waits for it. Only nodes being started count: hakeeper, like Pacemaker, may start the clone's
    instances in separate transitions, and a start waiting for a start that is not under way
    would hold up the transition forever;
  * a node without data that the running cluster still lists (its disk was replaced) refuses: the
    operator forgets the old incarnation with `rabbitmqctl forget_cluster_node` (hakeeper never
    forgets a node by itself);
  * after a full outage, a node waits for the nodes that were running when it stopped (RabbitMQ
    does that itself) as long as they are online; when one of them is offline for
    `force_boot_after` seconds, the online node with data that stopped last (the fewest nodes
    running at its shutdown, then the name) force-boots, and the others boot and sync from it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from hakeeper.errors import InputError


class Action(enum.Enum):
    BOOT = "boot"  # start rabbitmq-server as it is (a founder, or a member with data)
    JOIN = "join"  # start, then stop_app / join_cluster <target> / start_app (empty node only)
    FORCE_BOOT = "force-boot"  # rabbitmqctl force_boot, then start
    WAIT = "wait"  # not yet: ask again later
    REFUSE = "refuse"  # an operator must decide; nothing is touched


@dataclass(frozen=True)
class Local:
    """This node's data directory."""

    has_data: bool  # a mnesia directory with a schema
    members: frozenset[str] = frozenset()  # cluster_nodes.config: every node of its cluster
    running_at_shutdown: frozenset[str] = frozenset()  # nodes_running_at_shutdown
    joining: bool = False  # a join of ours was interrupted (its standalone data is disposable)


@dataclass(frozen=True)
class Peer:
    online: bool  # its hakeeper agent is a member of the cluster now
    running: bool = False  # its broker answers
    starting: bool = False  # being started (its epmd answers) or running
    members: frozenset[str] = frozenset()  # the members of the cluster it runs (when running)
    # Its boot report (published at its probe); None when it has published none.
    has_data: bool | None = None
    running_at_shutdown: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    target: str | None = None  # JOIN: the node to join
    waiting_for: tuple[str, ...] = field(default=())


def decide(me: str, local: Local, peers: Mapping[str, Peer], waited: float = 0.0,
           force_boot_after: float = 30.0) -> Decision:
    """What node `me` does to start. `peers` are the other configured nodes (RabbitMQ names);
    `waited` is how long this start has been waiting already (seconds)."""
    running = sorted(p for p, s in peers.items() if s.running)
    if local.has_data and not local.joining:
        return _with_data(me, local, peers, running, waited, force_boot_after)
    if running:
        listing_me = [p for p in running if me in peers[p].members]
        if listing_me and not local.joining:
            return Decision(
                Action.REFUSE,
                f"{me} has no data but the running cluster ({listing_me[0]}) still lists it: forget the old "
                f"incarnation with `rabbitmqctl forget_cluster_node {me}` on a running node, then clean up",
            )
        return Decision(Action.JOIN, f"no data here; joining the running cluster through {running[0]}", running[0])
    with_data = sorted(p for p, s in peers.items() if s.online and s.has_data)
    if with_data:
        return Decision(Action.WAIT, f"no data here; waiting for {', '.join(with_data)} (they have data) to boot",
                        waiting_for=tuple(with_data))
    unknown = sorted(p for p, s in peers.items() if s.online and s.has_data is None)
    if unknown:
        return Decision(Action.WAIT, f"waiting for the boot reports of {', '.join(unknown)}",
                        waiting_for=tuple(unknown))
    founder = min([me, *(p for p, s in peers.items() if s.online and (s.starting or s.running))])
    if founder == me:
        return Decision(Action.BOOT, "no broker and no data anywhere: founding the cluster")
    return Decision(Action.WAIT, f"no broker yet; {founder} (starting) founds the cluster", waiting_for=(founder,))


def _with_data(me: str, local: Local, peers: Mapping[str, Peer], running: list[str], waited: float,
               force_boot_after: float) -> Decision:
    others = local.members - {me}
    if others and not others & set(peers):
        return Decision(
            Action.REFUSE,
            f"the data directory belongs to another cluster (of {', '.join(sorted(others))}); "
            "nothing was touched",
        )
    if running:
        mine = [p for p in running if me in peers[p].members]
        if mine:
            return Decision(Action.BOOT, f"rejoining the running cluster ({mine[0]}) with its own data")
        return Decision(
            Action.REFUSE,
            f"{running[0]} runs a cluster that does not list {me} (it was forgotten, or this node's data is "
            "from another cluster); nothing was touched: reset this node by hand if its data may go",
        )
    needed = sorted((local.running_at_shutdown - {me}) & set(peers))
    if not needed:
        return Decision(Action.BOOT, "it stopped last: it boots first")
    offline = [p for p in needed if not peers[p].online]
    if not offline:
        return Decision(Action.BOOT, f"booting; RabbitMQ waits for {', '.join(needed)} (online, starting)",
                        waiting_for=tuple(needed))
    if waited < force_boot_after:
        return Decision(Action.WAIT, f"{', '.join(offline)} (running when it stopped) offline; waiting",
                        waiting_for=tuple(offline))
    candidates = {me: local.running_at_shutdown}
    for p, s in peers.items():
        if s.online and s.has_data:
            candidates[p] = s.running_at_shutdown
    if any(s.online and s.has_data is None for s in peers.values()):
        return Decision(Action.WAIT, "an online peer has not reported its data yet")
    chosen = min(candidates, key=lambda n: (len(candidates[n] - {n}), n))
    if chosen == me:
        return Decision(
            Action.FORCE_BOOT,
            f"{', '.join(offline)} offline for {force_boot_after:g}s; {me} stopped last among the online nodes",
        )
    return Decision(Action.BOOT, f"{chosen} force-boots (it stopped last among the online nodes); syncing from it",
                    waiting_for=(chosen,))


_ATOM = re.compile(r"'((?:[^'\\]|\\.)*)'|([a-z][A-Za-z0-9_@.\-]*)")


def parse_node_list(text: str, path: str, field_name: str) -> list[list[str]]:
    """The node lists of one of RabbitMQ's Erlang term files: `[a@h,b@h].` gives [[...]],
    `{[a@h,b@h],[a@h]}.` gives both lists. Anything else is an InputError naming the file."""
    body = text.strip()
    if not body.endswith("."):
        raise InputError.at("not an Erlang term (no final '.')", file=path, field=field_name)
    lists: list[list[str]] = []
    for inner in re.findall(r"\[([^\[\]]*)\]", body[:-1]):
        names: list[str] = []
        for item in (x.strip() for x in inner.split(",")):
            if not item:
                continue
            m = _ATOM.fullmatch(item)
            if m is None or "@" not in (m.group(1) or m.group(2) or ""):
                raise InputError.at(f"not a node name: {item[:40]!r}", file=path, field=field_name)
            names.append(m.group(1) if m.group(1) is not None else m.group(2))
        lists.append(names)
    if not lists:
        raise InputError.at("no node list found", file=path, field=field_name)
    return lists
