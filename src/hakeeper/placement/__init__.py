"""The placement engine: where every resource runs and which actions take it there.

`schedule(spec, state)` is pure and deterministic; it follows Pacemaker 2.1.5's semantics.
"""

from hakeeper.placement.engine import schedule, schedule_cib
from hakeeper.placement.plan import Action, Contribution, Plan

__all__ = ["Action", "Contribution", "Plan", "schedule", "schedule_cib"]
