"""A short fault soak in CI (issue 14): the real five-node cluster over TLS and RBAC, a fixed seed
and a dozen faults, the independent observer's checks. The long run is `bench/soak.py`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import needs_binary, needs_root

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak import Fault

# The bounds are generous and the timeout long: a shared 2-core machine at load 40 takes 25 s a
# fault (about 8 s when quiet); the safety checks are exact whatever the load.
pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.timeout(900)]

SCHEDULES = Path(__file__).parent / "schedules"


def run_soak(tmp_path: Path, plan: list[Fault]) -> None:
    from soak import Soak
    from soak_observer import Bounds

    # Recovery is bounded generously (a shared 2-core machine); the safety checks are exact.
    soak = Soak(str(tmp_path), 44, Bounds(recovery=120.0, vrrp=1.5, grace=3.0))
    try:
        report = soak.run(plan)
    finally:
        soak.close()
    print("\n".join(report.lines()))
    assert sum(report.faults.values()) == len(plan)
    assert report.violations == [], "\n".join(report.lines())
    assert len(report.recoveries) == len(plan)
    assert report.requests > 100


@pytest.fixture
def prerequisites() -> None:
    needs_root()
    for binary, package in (("etcd", "etcd-server"), ("etcdctl", "etcd-client"), ("haproxy", "haproxy"),
                            ("keepalived", "keepalived"), ("nft", "nftables")):
        needs_binary(binary, package)
    needs_binary("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents")


def test_short_soak_with_a_fixed_seed(prerequisites: None, tmp_path: Path) -> None:
    from soak import KINDS, schedule

    plan = schedule(500, 10, [f"k{i}" for i in range(1, 6)])
    plan_kinds = {f.kind for f in plan}
    assert len(plan_kinds) >= 9, plan_kinds  # the seed covers most kinds of fault
    assert plan_kinds <= set(KINDS)
    run_soak(tmp_path, plan)


def regression_schedules() -> list[Path]:
    return sorted(SCHEDULES.glob("*.json")) if SCHEDULES.is_dir() else []


@pytest.mark.parametrize("path", regression_schedules(), ids=lambda p: p.stem)
def test_regression_schedule(prerequisites: None, tmp_path: Path, path: Path) -> None:
    run_soak(tmp_path, [Fault(**f) for f in json.loads(path.read_text())])
