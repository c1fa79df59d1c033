"""The Nova lab against real Nova 34 services (fake driver), in the order an operator meets them:

1. seed 002's identity move: compute-1's nova-compute dies (SIGKILL) and a nova-compute claiming
   host compute-1 starts in compute-2's namespace with compute-1's node identity: Nova takes it
   as compute-1 again and the lab's driver boots compute-1's servers there (each one resumed).
2. the manual evacuation path through openstacksdk: compute-1 SIGKILLed, its service forced down,
   each server evacuated (microversion 2.68) -> all ACTIVE on compute-2.
"""

from __future__ import annotations

import time

import pytest

from hakeeper.instanceha.novalab import EVACUATE_MICROVERSION, NovaLab

pytest_plugins = ["novalab_fixtures"]
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1500)]


def ensure_compute_1(lab: NovaLab) -> None:
    """compute-1 running (wherever it runs), not forced down."""
    if not lab.computes["compute-1"].daemon.alive():
        lab.start_compute("compute-1")
    conn = lab.connection()
    service = next(iter(conn.compute.services(binary="nova-compute", host="compute-1")))
    if service.is_forced_down:
        conn.compute.update_service_forced_down(service, forced=False)
    lab.wait_compute("compute-1", up=True)


def test_identity_move_brings_servers_back(nova_lab: NovaLab) -> None:
    lab = nova_lab
    ensure_compute_1(lab)
    ids = lab.boot(3, "compute-1", name="moved")
    lab.kill_compute("compute-1")
    moved = lab.start_compute("compute-1", in_namespace="compute-2")
    assert moved.namespace == "compute-2" and moved.state_path != lab.computes["compute-2"].state_path
    lab.wait_compute("compute-1", up=True)

    # ACTIVE, still on host compute-1 (Nova's view), running, and re-created by this process.
    lab.wait_servers(ids, "ACTIVE", "compute-1", timeout=300,
                     extra=lambda s: s.get("OS-EXT-STS:power_state") == 1
                     and s["id"] in lab.resumed_guests("compute-1"))


def test_forced_down_evacuation_through_openstacksdk(nova_lab: NovaLab) -> None:
    lab = nova_lab
    ensure_compute_1(lab)
    ids = lab.boot(3, "compute-1", name="evac")
    conn = lab.connection()
    lab.kill_compute("compute-1")
    started = time.monotonic()
    service = next(iter(conn.compute.services(binary="nova-compute", host="compute-1")))
    conn.compute.update_service_forced_down(service, forced=True)
    for server_id in ids:
        # openstacksdk's evacuate_server would use its highest microversion (>= 2.95 leaves the
        # server SHUTOFF): pin the one that rebuilds it ACTIVE.
        resp = conn.compute.post(f"/servers/{server_id}/action", json={"evacuate": {}},
                                 microversion=EVACUATE_MICROVERSION)
        assert resp.status_code == 200, resp.text
    lab.wait_servers(ids, "ACTIVE", "compute-2", timeout=300)
    print(f"evacuation of {len(ids)} servers: {time.monotonic() - started:.1f} s after the kill")
    for server_id in ids:
        server = conn.compute.get_server(server_id)
        assert server.compute_host == "compute-2" and server.status == "ACTIVE"
