"""The quorum rule, pure: when a node's agent counts itself cut off from the store.

The rule: no lease refresh for 75% of the TTL means the store is gone, and the agent stops what
runs here (no-quorum-policy) so that the stop is over before the lease can expire and another
node starts the resources.

A refresh can also be missing because this process did not run: a paused VM, a machine so
starved that the event loop got no CPU for a second or two. Then the silence is the agent's own,
not the store's, and the lease may well be alive. Stopping everything for it turned one stall of
the process into a full outage (all three agents of an in-process cluster stopped at once). So
after a stall, the lease keeper gets `margin` seconds of running time to refresh before the
silence counts: a refresh that comes back proves the lease lived through the stall (an expired
lease is never renewed), and the agent goes on. If the lease changed meanwhile (it expired and
the keeper was granted a new one), the old incarnation is gone and the stop goes ahead at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# A check this late (asked every 50 ms) means the process itself did not run meanwhile.
STALL = 0.5

Verdict = Literal["healthy", "wait", "lost"]


@dataclass
class QuorumWatch:
    """Fed every check of the lease (`check`); remembers when this process last resumed after a
    stall, and the lease it held then."""

    margin: float  # seconds of grace after a stall (the quorum rule's 25% of the TTL)
    last_check: float = float("-inf")
    last_lease: int = 0  # the lease at the last check
    resumed: float = float("-inf")
    lease_at_resume: int = 0  # the lease held before the stall

    def check(self, now: float, healthy: bool, lease: int, last_refresh: float) -> Verdict:
        if now - self.last_check > STALL and self.last_check > float("-inf"):
            self.resumed, self.lease_at_resume = now, self.last_lease
        self.last_check, self.last_lease = now, lease
        if healthy:
            return "healthy"
        grace = (
            now - self.resumed < self.margin  # the keeper has had less than that to run since
            and last_refresh < self.resumed  # and has not refreshed since (it would be healthy)
            and lease != 0
            and lease == self.lease_at_resume  # the same lease: it did not expire meanwhile
        )
        return "wait" if grace else "lost"
