"""Generated CIBs against the real crm_simulate: accepted, no spurious restarts, and the runner's
placement from the decisions alone (-R) equals the one Pacemaker's simulated execution reaches (-S)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from tests.conftest import needs_binary

from hakeeper.conformance.cibgen import Knobs, generate
from hakeeper.conformance.cibxml import render_cib
from hakeeper.conformance.crmsim import CrmSimulateError, run_crm_simulate

CASES = int(os.environ.get("HAKEEPER_CIBGEN_CASES", "40"))


@pytest.fixture(scope="module")
def crm_simulate() -> str:
    return needs_binary("crm_simulate", "pacemaker-cli-utils")


def _without_status(cib: bytes) -> bytes:
    root = etree.fromstring(cib)
    status = root.find("status")
    assert status is not None
    root.remove(status)
    return bytes(etree.tostring(root))


@pytest.mark.parametrize("seed", range(0, CASES, 4))
def test_crm_verify_accepts_the_configuration(seed: int, tmp_path: Path) -> None:
    binary = needs_binary("crm_verify", "pacemaker-cli-utils")
    path = tmp_path / "cib.xml"
    path.write_bytes(_without_status(render_cib(generate(seed))))
    proc = subprocess.run([binary, "-x", str(path), "-V"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C", "CIB_shadow_dir": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("seed", range(CASES))
def test_decisions_and_simulated_execution_agree(seed: int, crm_simulate: str) -> None:
    spec = generate(seed)
    primitives = [p.id for p in spec.resources.primitives]
    cib = render_cib(spec)
    decided = run_crm_simulate(cib, primitives=primitives, binary=crm_simulate)
    executed = run_crm_simulate(cib, execute=True, primitives=primitives, binary=crm_simulate)
    assert decided.placement == executed.placement
    assert set(decided.placement) == set(primitives)
    # Correct digests: nothing is restarted for a definition change.
    reasons = [el.get("reason", "") for el in etree.fromstring(decided.xml).iter("rsc_action")]
    assert not [r for r in reasons if "definition" in r]


def test_a_steady_cluster_is_left_alone(crm_simulate: str) -> None:
    """Everything running, nothing failed, no constraints: with stickiness Pacemaker moves nothing."""
    knobs = Knobs(nodes=(4, 4), top_level=(12, 12), locations=0, colocations=0, orders=0, running=1.0,
                  failed_monitor=0, failed_start=0, standby=0, offline=0, lost=0, no_quorum=0,
                  target_stopped=0, asymmetric=0)
    for seed in range(5):
        spec = generate(seed, knobs)
        spec.cluster.resource_stickiness = 100
        for p in spec.resources.primitives:
            p.meta.resource_stickiness = None
            p.meta.migration_threshold = None
        for c in spec.resources.clones:
            c.meta.clone_max = None
        result = run_crm_simulate(render_cib(spec), binary=crm_simulate)
        assert [a for a in result.actions if a.action != "start"] == []
        # Only clone instances on nodes without one start; nothing running moves.
        assert spec.state is not None
        for rs in spec.state.resources:
            if rs.role != "Stopped":
                assert rs.node in result.placement[rs.resource]


def test_a_lost_node_is_fenced_and_its_resources_move(crm_simulate: str) -> None:
    knobs = Knobs(nodes=(3, 3), top_level=(6, 6), group_share=0, clone_share=0, locations=0, colocations=0,
                  orders=0, running=1.0, failed_monitor=0, failed_start=0, probes=0, standby=0, offline=0,
                  lost=0, stonith=1.0, no_quorum=0, target_stopped=0, asymmetric=0)
    spec = generate(11, knobs)
    assert spec.state is not None
    for p in spec.resources.primitives:
        p.meta.target_role = None
    victim = spec.state.resources[0].node
    spec.state.nodes[victim].online = False
    spec.state.nodes[victim].unclean = True
    result = run_crm_simulate(render_cib(spec), binary=crm_simulate)
    assert result.fenced == [victim]
    assert all(victim not in nodes for nodes in result.placement.values())


def test_a_run_past_its_timeout_is_stopped(crm_simulate: str) -> None:
    big = Knobs(nodes=(16, 16), top_level=(600, 600), running=1.0, probes=0)
    with pytest.raises(CrmSimulateError, match=r"did not finish in 0\.05 s"):
        run_crm_simulate(render_cib(generate(1, big)), timeout=0.05, binary=crm_simulate)


def test_a_cib_crm_simulate_refuses_is_an_error(crm_simulate: str) -> None:
    cib = render_cib(generate(1)).replace(b"<resources>", b"<resources><bogus/>", 1)
    with pytest.raises(CrmSimulateError):
        run_crm_simulate(cib, binary=crm_simulate)
