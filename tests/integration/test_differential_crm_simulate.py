"""hakeeper against Pacemaker 2.1.5 on seeded random clusters: the same final placement.

Each case generates a cluster (nodes, groups, clones, constraints, failures, lost nodes...), renders
its CIB and compares crm_simulate's decisions with hakeeper's importer + scheduler. A mismatch prints
the seed, both placements and transition summaries, and the CIB (also written to the test's tmp dir).
Reproduce one case with `python3 bench/differential.py --seed N --show`.

HAKEEPER_DIFF_CASES sets the number of cases (default 500: about 50 s on two cores, ~0.1 s a case).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.conftest import needs_binary

from hakeeper.conformance.differential import run_case

CASES = int(os.environ.get("HAKEEPER_DIFF_CASES", "500"))

# Seeds where hakeeper is known to decide differently from crm_simulate, by class. strict=True:
# a seed that starts agreeing fails the run, so the list only ever shrinks.
_LOST_GROUP = ("cloned group instance whose current node cannot run anything: Pacemaker 2.1.5 still "
               "tries that node first and its partial group rollback leaves the members placed "
               "elsewhere, uncounted (reproducing it cost conformance cases)")
_ANTI_MERGE = ("a resource with a -INFINITY anti-colocated dependent: Pacemaker takes nothing from "
               "the dependent's own colocation chain, hakeeper does (not diagnosed further)")
_UNKNOWN = "node choice differs on a cluster with cloned groups (not diagnosed)"
KNOWN_DIVERGENT: dict[int, str] = {
    169: _UNKNOWN,
    328: _LOST_GROUP,
    381: _LOST_GROUP,
    384: _UNKNOWN,
    398: _ANTI_MERGE,
}


def _seeds() -> list[object]:
    return [pytest.param(seed, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DIVERGENT[seed]))
            if seed in KNOWN_DIVERGENT else seed for seed in range(CASES)]


@pytest.fixture(scope="module")
def crm_simulate() -> str:
    return needs_binary("crm_simulate", "pacemaker-cli-utils")


@pytest.mark.parametrize("seed", _seeds())
def test_same_placement_as_crm_simulate(seed: int, crm_simulate: str, tmp_path: Path) -> None:
    result = run_case(seed, binary=crm_simulate)
    if not result.agrees:
        cib = tmp_path / f"seed-{seed}.xml"
        cib.write_bytes(result.cib)
        pytest.fail(f"{result.report()}\n(CIB saved as {cib})", pytrace=False)
