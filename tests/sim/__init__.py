"""A deterministic simulation of whole hakeeper clusters under faults (issue 10, parts 2 and 3).

Everything runs on one simulated clock from one seeded random.Random: no asyncio, no wall clock, no
threads. The same seed gives the same trace. See docs/simulation.md for the model, what runs real
hakeeper code (the leader: the real LeaderCore) and what is an adapter (the node side), and the
invariants checked after every step.
"""
