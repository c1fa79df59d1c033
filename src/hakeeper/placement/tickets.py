"""Ticket constraints: resources that may run (or be promoted) only while a ticket is granted.

Pacemaker 2.1.5's semantics. A granted ticket that is not in standby changes nothing. Otherwise
the constraint acts on every leaf primitive under the resource it names (clone instances, group
members):

* ticket not granted, leaf active somewhere: the loss-policy decides. `stop` bans it from every
  node; `demote` does too, unless the constraint guards only the Promoted role (then only the
  promotion is refused); `fence` (when the leaf's current role passes the role filter) bans it and
  fences every node it is active on; `freeze` (same filter) leaves it unmanaged where it is.
* ticket not granted and leaf inactive, or ticket in standby: banned from every node, unless the
  constraint guards only the Promoted role with a loss-policy other than `stop`.

Separately, a promotable clone named by a constraint for role Promoted whose ticket is not granted
or in standby promotes nothing.
"""

from __future__ import annotations

from hakeeper.placement.build import ban_everywhere, fenceable
from hakeeper.placement.cluster import NEG, CloneE, Cluster, Rsc, leaf_primitives
from hakeeper.spec.model import ClusterSpec, ClusterState, TicketConstraint, TicketState

FENCE_REASON = "deadman ticket was lost"


def apply_tickets(spec: ClusterSpec, cluster: Cluster, state: ClusterState | None) -> None:
    """Apply every ticket constraint to the working model (before unavailable nodes are banned,
    so a node fenced here counts as lost like any other)."""
    if not spec.constraints.ticket:
        return
    tickets = state.tickets if state is not None else {}
    for tc in spec.constraints.ticket:
        ticket = tickets.get(tc.ticket, TicketState())
        if ticket.granted and not ticket.standby:
            continue
        for rid, role in tc.targets():
            entity = cluster.entities.get(rid)
            if entity is None:
                continue
            policy = tc.effective_loss_policy(role, cluster.stonith_enabled)
            for leaf in leaf_primitives(entity):
                _apply_to_leaf(cluster, tc, ticket, leaf, role, policy)
            if isinstance(entity, CloneE) and entity.promotable and role == "Promoted":
                words = f"{_state_words(tc, ticket)}: nothing may be promoted"
                # Replaced, not extended in place: the list may be shared with another clone.
                entity.promotion_locations = entity.promotion_locations + [
                    (node.index, NEG, words) for node in cluster.nodes]


def _state_words(tc: TicketConstraint, ticket: TicketState) -> str:
    what = "is not granted" if not ticket.granted else "is in standby"
    return f"ticket {tc.ticket} {what} (constraint {tc.id})"


def _apply_to_leaf(cluster: Cluster, tc: TicketConstraint, ticket: TicketState, leaf: Rsc,
                   role: str | None, policy: str) -> None:
    words = _state_words(tc, ticket)
    guards_promotion_only = role == "Promoted" and policy != "stop"
    if not ticket.granted and leaf.running_on:
        role_matches = role is None or role == leaf.role
        if policy == "stop" or (policy == "demote" and role != "Promoted"):
            ban_everywhere(leaf, f"{words}, loss-policy {policy}")
        elif policy == "fence" and role_matches:
            ban_everywhere(leaf, f"{words}, loss-policy fence: its nodes are fenced")
            for node in leaf.running_on:
                _fence(cluster, node)
        elif policy == "freeze" and role_matches:
            leaf.managed = False
            leaf.why = f"{words}, loss-policy freeze: left as it is"
    elif not guards_promotion_only:
        ban_everywhere(leaf, words)


def _fence(cluster: Cluster, node: int) -> None:
    if node in cluster.fencing or not fenceable(cluster, node):
        return
    info = cluster.nodes[node]
    info.unclean = True
    info.fence_reason = FENCE_REASON
    cluster.fencing.append(node)
    cluster.fencing.sort()
