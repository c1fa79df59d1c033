"""The MySQL VIP's pure parts: clustercheck's decision, the haproxy configuration (checked by the
real `haproxy -c` where installed), the live status table and the node addresses it probes; and
the clustercheck service itself answering over HTTP for a node whose database is not there."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from hakeeper.errors import InputError
from hakeeper.galera import clustercheck, live
from hakeeper.galera.clustercheck import WsrepView, judge
from hakeeper.galera.front import Front, haproxy_config

U = "6b3a3c55-1e59-11ef-9d2b-6b0c3f1c2a10"
SYNCED = WsrepView(4, "Synced", "Primary", True, 3, U, 812, "g1", False)


def test_a_synced_writable_node_in_the_primary_component_is_healthy() -> None:
    assert judge(SYNCED) == clustercheck.Health(200, "synced")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cluster_status": "non-Primary"}, "not in the primary component (non-Primary)"),
        ({"ready": False}, "wsrep not ready"),
        ({"read_only": True}, "read-only"),
        ({"local_state": 1, "state_comment": "Joining"}, "not synced (Joining)"),
        ({"local_state": 3, "state_comment": "Joined"}, "not synced (Joined)"),
        ({"local_state": 2, "state_comment": "Donor/Desynced"}, "donor/desynced while another node can serve"),
    ],
)
def test_a_node_that_cannot_take_writes_is_refused(change: dict[str, object], reason: str) -> None:
    assert judge(replace(SYNCED, **change)) == clustercheck.Health(503, reason)  # type: ignore[arg-type]


def test_no_database_is_refused() -> None:
    assert judge(None).code == 503


def test_a_donor_serves_when_it_is_the_only_node_that_can_or_donors_are_writable() -> None:
    donor = replace(SYNCED, local_state=2, state_comment="Donor/Desynced")
    assert judge(replace(donor, cluster_size=2)).code == 200  # the other member is its joiner
    assert judge(donor).code == 503
    assert judge(donor, available_when_donor=True).code == 200
    # ... but never outside the primary component, nor read-only.
    assert judge(replace(donor, cluster_size=2, cluster_status="non-Primary")).code == 503
    assert judge(replace(donor, read_only=True), available_when_donor=True).code == 503


@given(
    state=hs.integers(-1, 6), status=hs.sampled_from(["Primary", "non-Primary", "Disconnected", ""]),
    ready=hs.booleans(), read_only=hs.booleans(), size=hs.integers(0, 9), donor_ok=hs.booleans(),
)
def test_healthy_only_in_the_primary_component_ready_writable_and_synced_or_a_permitted_donor(
    state: int, status: str, ready: bool, read_only: bool, size: int, donor_ok: bool
) -> None:
    view = WsrepView(state, "", status, ready, size, U, 1, "g1", read_only)
    healthy = judge(view, donor_ok).code == 200
    permitted_donor = state == 2 and (donor_ok or size <= 2)
    assert healthy == (status == "Primary" and ready and not read_only and (state == 4 or permitted_donor))


def test_the_view_reads_show_status() -> None:
    status = {
        "wsrep_local_state": "4", "wsrep_local_state_comment": "Synced", "wsrep_cluster_status": "Primary",
        "wsrep_ready": "ON", "wsrep_cluster_size": "3", "wsrep_cluster_state_uuid": U,
        "wsrep_last_committed": "812", "wsrep_node_name": "g1",
    }
    assert WsrepView.from_status(status, read_only=False) == SYNCED
    assert WsrepView.from_status({}, read_only=False).local_state == -1


def test_haproxy_sends_everything_to_one_writer_and_checks_clustercheck(tmp_path: Path) -> None:
    text = haproxy_config(Front("10.95.3.100", {"g1": "10.95.3.1", "g2": "10.95.3.2", "g3": "10.95.3.3"}))
    servers = [line.split() for line in text.splitlines() if line.strip().startswith("server ")]
    assert [s[1] for s in servers] == ["g1", "g2", "g3"]
    assert ["backup" in s for s in servers] == [False, True, True]  # one writer
    assert "allbackups" not in text  # only the first healthy backup takes clients
    assert "bind 10.95.3.100:3306" in text and "option httpchk GET /" in text and "stick on dst" in text
    assert "port 9200" in text and "on-marked-down shutdown-sessions" in text
    if shutil.which("haproxy"):
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_config(Front("127.0.0.1", {"g1": "127.0.0.1", "g2": "127.0.0.2"}, port=1)))
        out = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_a_front_with_a_bad_address_is_refused_naming_it() -> None:
    with pytest.raises(InputError, match="g2: not an IPv4 address"):
        Front("10.95.3.100", {"g1": "10.95.3.1", "g2": "ten"})
    with pytest.raises(InputError, match="nodes: needs at least one"):
        Front("10.95.3.100", {})


def test_addresses_come_from_the_host_map_else_from_the_cluster_address() -> None:
    nodes = ["g1", "g2", "g3"]
    mapped = {"cluster_host_map": "g1:10.0.0.1;g2:10.0.0.2;g3:10.0.0.3", "wsrep_cluster_address": "gcomm://a,b,c"}
    assert live.node_addresses(mapped, nodes) == {"g1": "10.0.0.1", "g2": "10.0.0.2", "g3": "10.0.0.3"}
    listed = {"wsrep_cluster_address": "gcomm://10.0.0.1:4567,10.0.0.2,10.0.0.3"}
    assert live.node_addresses(listed, nodes) == {"g1": "10.0.0.1", "g2": "10.0.0.2", "g3": "10.0.0.3"}
    named = {"wsrep_cluster_address": "gcomm://g1,g3"}
    assert live.node_addresses(named, nodes) == {"g1": "g1", "g3": "g3"}


def _probe(node: str, view: WsrepView | None) -> live.Probe:
    health = judge(view)
    return live.Probe(node, "10.0.0.1", health.code, health.reason, view)


def test_the_live_table_shows_state_position_history_size_and_the_vip_writer() -> None:
    probes = [
        _probe("g1", SYNCED),
        _probe("g2", replace(SYNCED, node_name="g2", local_state=2, state_comment="Donor/Desynced")),
        live.Probe("g3", "10.0.0.3", None, "connection refused", None),
    ]
    text = live.render_live(probes, "10.0.0.100", "g1", None)
    g1, g2, g3 = (next(line for line in text.splitlines() if line.strip().startswith(n)) for n in ("g1", "g2", "g3"))
    assert "Synced" in g1 and "Primary" in g1 and " 812 " in g1 and U in g1 and "200 synced" in g1
    assert g1.endswith("<- VIP writer") and "VIP writer" not in g2
    assert "Donor/Desynced" in g2 and "503 donor/desynced" in g2
    assert "no answer (connection refused)" in g3
    assert text.splitlines()[-1] == "  VIP 10.0.0.100 writes to: g1"
    assert "WARNING" not in text


def test_the_live_table_warns_of_two_histories_and_a_vip_nobody_answers() -> None:
    other = replace(SYNCED, node_name="g2", cluster_uuid="00000000-1111-2222-3333-444444444444")
    text = live.render_live([_probe("g1", SYNCED), _probe("g2", other)], "10.0.0.100", None, "cannot connect: refused")
    assert "2 different cluster histories" in text
    assert text.splitlines()[-1] == "  VIP 10.0.0.100 writes to: nobody (cannot connect: refused)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_service_answers_503_with_its_reason_when_the_database_is_not_there(tmp_path: Path) -> None:
    port = _free_port()
    ready = threading.Event()
    threading.Thread(
        target=clustercheck.serve, args=("127.0.0.1", port, str(tmp_path / "no.sock"), False, ready), daemon=True
    ).start()
    assert ready.wait(10)
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    assert plain.value.code == 503 and plain.value.read() == b"database not reachable\n"
    probe = live.probe_one("g1", "127.0.0.1", port, 10)
    assert (probe.code, probe.reason, probe.wsrep) == (503, "database not reachable", None)
    with pytest.raises(urllib.error.HTTPError) as status:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10)
    assert json.loads(status.value.read()) == {"code": 503, "reason": "database not reachable", "wsrep": None}
    # Nobody listening: no answer, with the reason.
    assert live.probe_one("g2", "127.0.0.1", _free_port(), 2).code is None


def test_status_with_a_vip_needs_a_readable_client_file(tmp_path: Path) -> None:
    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hakeeper", "galera", "status", *args],
                              capture_output=True, text=True, timeout=60)

    no_file = status("--vip", "10.0.0.100")
    assert no_file.returncode == 2 and no_file.stderr.startswith("error: --defaults-file: --vip needs"), no_file.stderr
    missing = status("--vip", "10.0.0.100", "--defaults-file", str(tmp_path / "none.cnf"))
    assert missing.returncode == 2 and f"{tmp_path / 'none.cnf'}: cannot read" in missing.stderr, missing.stderr
    assert "Traceback" not in no_file.stderr + missing.stderr
