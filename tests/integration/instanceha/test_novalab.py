"""The Nova lab against real Nova 34 services (fake driver), in the order an operator meets them,
on one lab started once for the module:

1. seed 002's identity move by hand: compute-1's nova-compute dies (SIGKILL) and a nova-compute
   claiming host compute-1 starts in compute-2's namespace with compute-1's node identity: Nova
   takes it as compute-1 again and the lab's driver boots compute-1's servers there (each one resumed).
2. the manual evacuation path through openstacksdk: compute-1 SIGKILLed, its service forced down,
   each server evacuated (microversion 2.68) -> all ACTIVE on compute-2.
3. seed 002's identity move driven by hakeeper: a crm configuration shaped like Listing 2
   (`p_nova-compute-host1 ocf:openstack:nova-compute params additional_config=...host1.conf`, a
   location preferring one node) is imported with `hakeeper import crm` and applied to agents on
   the controller and both computes. hakeeper runs host1's nova-compute on compute-1 (its state_path
   in a directory both namespaces see, as the seed's CephFS would); three servers are booted on
   host1; compute-1 dies (link down, SIGKILL of every process in it) and is fenced; hakeeper starts
   host1's nova-compute on compute-2 with the same identity, and the servers run again there, still
   ACTIVE on host1. The independent checker (novalab/guests.py: the hypervisor's ledger and Nova's
   view, not hakeeper's records) finds no guest running twice, and no guest starts on compute-2
   before compute-1's fence. It shares this module's lab (one lab start less in CI) and runs last:
   it powers compute-1's namespace off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import needs_binary
from hakeeper.instanceha.halab import HaCluster
from hakeeper.instanceha.novalab import CLOUD, EVACUATE_MICROVERSION, NovaLab
from hakeeper.instanceha.novalab import config as cfg
from hakeeper.instanceha.novalab.guests import LEDGER, GuestWatcher
from hakeeper.instanceha.novalab.services import venv_bin

pytest_plugins = ["novalab_fixtures"]
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1500)]
RID = "p_nova-compute-host1"
TAG = "hkidmove"


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


def listing2_shaped(ha: HaCluster, shared: Path) -> str:
    """Seed 002's compute lines with the lab's paths, plus the fence the lab's nodes need."""
    return f"""\
node controller
node compute-1
node compute-2
primitive fence stonith:netns params template="{ha.gate}"
primitive {RID} ocf:openstack:nova-compute params binary="{venv_bin("nova", "nova-compute")}" \\
    config="{shared}/nova.conf" additional_config="{shared}/nova-compute-host1.conf" user="nova" \\
    op monitor interval="2s" timeout="30s" op start interval="0" timeout="180s" op stop interval="0" timeout="30s"
location lo_host1_prefer_compute-1 {RID} 10000: compute-1
location lo_host1_not_on_controller {RID} -inf: controller
property cluster-name={TAG} stonith-enabled=true no-quorum-policy=stop node-timeout=1500ms
"""


@pytest.fixture(scope="module")
def ha(nova_lab: NovaLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaCluster]:
    """hakeeper over this module's lab: etcd and an agent on the controller, an agent on each
    compute, the namespace fence device (nothing configured yet: the test applies its own)."""
    needs_binary("etcd", "etcd-server")
    cluster = HaCluster(nova_lab, Path(tmp_path_factory.mktemp("identity")), tag=TAG)
    try:
        cluster.workdir.mkdir(parents=True, exist_ok=True)
        cluster.etcd.start()
        for node in cluster.nodes:
            cluster.start_agent(node)
        cluster.wait(lambda: all(cluster.status()["nodes"].get(n) == "online" for n in cluster.nodes), 90,
                     "agents online")
        for node in nova_lab.compute_names:
            cluster.open_gate(node)
        yield cluster
    finally:
        cluster.close()


def running_on(ha: HaCluster) -> list[str]:
    entry = ha.status().get("resources", {}).get(RID) or {}
    return list(entry.get("running_on") or [])


def test_host1_moves_to_the_other_node_with_its_identity_and_servers(ha: HaCluster) -> None:
    lab = ha.lab
    # The "shared storage": one directory both compute namespaces see (the seed used CephFS).
    shared = lab.workdir / "shared"
    state = shared / "host1"
    (state / "lock").mkdir(parents=True)
    (shared / "nova.conf").write_text(cfg.nova_compute_conf(lab.ctl, "not-this-one", str(state)))
    (shared / "nova-compute-host1.conf").write_text("[DEFAULT]\nhost = host1\n")

    crm = ha.workdir / "listing2-host1.crm"
    crm.write_text(listing2_shaped(ha, shared))
    spec_path = ha.workdir / "identity.yaml"
    imported = subprocess.run([sys.executable, "-m", "hakeeper", "import", "crm", str(crm), "-o", str(spec_path)],
                              capture_output=True, text=True, env=ha.env(), check=False, timeout=60)
    assert imported.returncode == 0, imported.stderr
    assert f"{RID}: param user dropped" in imported.stderr
    spec = yaml.safe_load(spec_path.read_text())
    [prim] = [p for p in spec["resources"]["primitives"] if p["id"] == RID]
    assert prim["agent"] == "instanceha:nova-compute" and "user" not in prim["params"]
    # The operator's one addition: how to ask Nova whether host1's service is up (start waits
    # for it, the monitor checks it).
    prim["params"].update({"clouds_yaml": str(lab.clouds_yaml), "cloud": CLOUD})
    spec_path.write_text(yaml.safe_dump(spec))
    ha.hk("config", "apply", "--yes", str(spec_path))

    ha.wait(lambda: running_on(ha) == ["compute-1"], 300, f"{RID} running on compute-1")
    lab.wait_compute("host1", up=True, timeout=120)
    node_id = (state / "compute_id").read_text().strip()
    ids = lab.boot(3, "host1", name="idmove")
    pid_a = int((ha.workdir / "state" / "compute-1" / f"{RID}.pid").read_text().split()[0])

    ledgers = {state / LEDGER: "host1"}
    with GuestWatcher(lambda: ledgers, ha.server_hosts) as watcher:
        killed_at = ha.power_off("compute-1")
        ha.wait(lambda: running_on(ha) == ["compute-2"], 300, f"{RID} running on compute-2", every=0.5)
        pid_b = int((ha.workdir / "state" / "compute-2" / f"{RID}.pid").read_text().split()[0])
        assert pid_b != pid_a

        def resumed() -> bool:
            started = {line.uuid for line in watcher.lines if line.kind == "start" and line.pid == pid_b}
            return set(ids) <= started

        ha.wait(resumed, 300, "host1's servers running again in compute-2's nova-compute", every=0.5)
        lab.wait_servers(ids, "ACTIVE", "host1", timeout=120, extra=lambda s: s.get("OS-EXT-STS:power_state") == 1)
        print(f"identity move: every server running again {time.time() - killed_at:.1f} s after the kill")
    assert watcher.violations() == []
    # Same identity: Nova's one host1 service, the node UUID unchanged, now reported from compute-2.
    assert (state / "compute_id").read_text().strip() == node_id
    lab.wait_compute("host1", up=True, timeout=60)
    # In compute-2's network namespace: compared by inode, as `ip netns identify` may print only
    # the fence gate's name for it (another name of the same namespace).
    assert os.stat(f"/proc/{pid_b}/ns/net").st_ino == os.stat(f"/run/netns/{lab.hosts['compute-2'].ns}").st_ino
    # No guest started on compute-2 before compute-1 was fenced (hakeeper's own event, checked
    # against the hypervisor's ledger).
    fenced = [float(e["at"]) for e in ha.events() if e["kind"] == "fenced"
              and "compute-1" in (e.get("victim"), e.get("host"))]
    assert fenced, "compute-1 was not fenced"
    first_start_b = min(line.at for line in watcher.lines if line.kind == "start" and line.pid == pid_b)
    assert fenced[0] <= first_start_b
    print(f"identity move: fenced {fenced[0] - killed_at:.1f} s after the kill, the first guest running again on "
          f"compute-2 {first_start_b - killed_at:.1f} s after it")
