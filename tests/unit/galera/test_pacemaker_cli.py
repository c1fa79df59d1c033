"""cibadmin -Q, crm_mon, crm_node and pacemakerd answered from a hakeeper cluster view."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as hs
from lxml import etree

from conftest import needs_binary
from hakeeper.resources.pacemaker_cli import (
    EX_NOSUCH,
    EX_USAGE,
    ClusterView,
    ResourceDef,
    RunningOn,
    cibadmin,
    crm_mon,
    crm_node,
    pacemakerd,
    render_cib,
    render_crm_mon,
    running_on,
    to_text,
)

GALERA = ResourceDef("galera", "ocf:heartbeat:galera", "galera-clone", True, {"wsrep_cluster_address": "gcomm://a,b,c"})


def _view(status: dict[str, dict[str, RunningOn]], online: list[str] | None = None) -> ClusterView:
    return ClusterView(
        nodes=["a", "b", "c"],
        online=online if online is not None else ["a", "b", "c"],
        dc="a",
        resources=[GALERA, ResourceDef("vip", "vip")],
        status=status,
        attrs={"a": {"galera-last-committed": "12", "master-galera": "100"}, "b": {"rmq-node-attr-x": "rabbit@b"}},
    )


def _master_exists(xml: str) -> bool:
    """galera's master_exists, line by line as grep does it."""
    pattern = re.compile(
        r'resource.*id="galera".*role="(Promoted|Master)".*active="true".*orphaned="false".*failed="false"', re.I
    )
    return any(pattern.search(line) for line in xml.splitlines())


def _env(tmp: Path, view: ClusterView) -> dict[str, str]:
    (tmp / "cluster-view.json").write_text(view.to_json())
    return {"HAKEEPER_NODE": "b", "HAKEEPER_CLUSTER_VIEW": str(tmp / "cluster-view.json")}


def test_the_view_survives_json() -> None:
    view = _view({"a": {"galera": RunningOn("Promoted")}, "b": {"galera": RunningOn("Started", failed=True)}})
    assert ClusterView.from_json(view.to_json()) == view


def test_cib_has_nodes_transient_attributes_and_lrm(tmp_path: Path) -> None:
    view = _view({"a": {"galera": RunningOn("Promoted")}}, online=["a", "b"])
    cib = render_cib(view)
    assert [n.get("uname") for n in cib.iterfind("configuration/nodes/node")] == ["a", "b", "c"]
    states = {s.get("uname"): s.get("crmd") for s in cib.iterfind("status/node_state")}
    assert states == {"a": "online", "b": "online", "c": "offline"}
    assert cib.xpath("//node_state[@uname='a']//nvpair[@name='galera-last-committed']/@value") == ["12"]
    assert cib.xpath("//clone[@id='galera-clone']/primitive/@type") == ["galera"]
    assert cib.xpath("//lrm_resource[@id='galera']/lrm_rsc_op/@operation") == ["promote"]
    # rabbitmq-cluster's query: one nvpair per line, the value last
    env = _env(tmp_path, view)
    status, out, _ = cibadmin(["-Q", "--xpath", "//node_state[@crmd='online']//nvpair[@name='rmq-node-attr-x']"], env)
    assert status == 0 and out.strip().endswith('value="rabbit@b"/>') and len(out.splitlines()) == 1
    assert cibadmin(["-Q", "--xpath", "//nvpair[@name='nothing']"], env)[0] == EX_NOSUCH
    assert cibadmin(["-Q", "--xpath", "//[["], env)[0] == EX_USAGE
    assert cibadmin(["-R", "-X", "<cib/>"], env)[0] == EX_USAGE  # writes are the spec's business
    status, out, _ = cibadmin(["-Q"], env)
    assert status == 0 and etree.fromstring(out.encode()).tag == "cib"


def test_master_exists_sees_only_a_healthy_promoted_instance() -> None:
    assert _master_exists(render_crm_mon(_view({"a": {"galera": RunningOn("Promoted")}})))
    assert _master_exists(render_crm_mon(_view({"a": {"galera": RunningOn("Promoted")}}), legacy=True))
    assert not _master_exists(render_crm_mon(_view({"a": {"galera": RunningOn("Started")}})))
    assert not _master_exists(render_crm_mon(_view({"a": {"galera": RunningOn("Promoted", failed=True)}})))
    assert not _master_exists(render_crm_mon(_view({})))


@settings(max_examples=60, deadline=None)
@given(
    hs.dictionaries(
        hs.sampled_from(["a", "b", "c"]),
        hs.tuples(hs.sampled_from(["Started", "Promoted", "Stopped"]), hs.booleans()),
    )
)
def test_master_exists_iff_a_promoted_instance_is_healthy(roles: dict[str, tuple[str, bool]]) -> None:
    view = _view({n: {"galera": RunningOn(r, f)} for n, (r, f) in roles.items()})  # type: ignore[arg-type]
    expected = any(r == "Promoted" and not f for r, f in roles.values())
    assert _master_exists(render_crm_mon(view)) is expected
    assert _master_exists(render_crm_mon(view, legacy=True)) is expected


def test_a_promote_in_flight_is_no_master_yet() -> None:
    # The agent's claim of a promote leaves a pending report; galera's promote asks master_exists
    # before it decides to bootstrap, and must not find itself.
    pending = running_on({"role": "Promoted", "op": "promote", "pending": True})
    assert pending == RunningOn("Unpromoted")
    assert not _master_exists(render_crm_mon(_view({"a": {"galera": pending}})))
    assert running_on({"role": "Promoted", "op": "promote", "rc": 0}) == RunningOn("Promoted")
    assert running_on({"role": "Unpromoted", "op": "start", "pending": True}) == RunningOn("Unpromoted")
    assert running_on({"role": "Promoted", "op": "monitor", "failed": True}) == RunningOn("Promoted", failed=True)
    assert running_on({"role": "bogus"}) == RunningOn("Started")


def test_the_real_crm_mon_reads_our_cib_as_we_render_it(tmp_path: Path) -> None:
    """Pacemaker's own crm_mon over the rendered CIB (CIB_file) agrees with our crm_mon on every
    online node's role, activity and failure."""
    binary = needs_binary("crm_mon", "pacemaker-cli-utils")
    view = _view(
        {
            "a": {"galera": RunningOn("Promoted"), "vip": RunningOn("Started")},
            "b": {"galera": RunningOn("Started")},
            "c": {"galera": RunningOn("Started", failed=True)},
        }
    )
    (tmp_path / "cib.xml").write_text(to_text(render_cib(view)))
    real = subprocess.run(
        [binary, "-1", "--output-as=xml"],
        env={**os.environ, "CIB_file": str(tmp_path / "cib.xml")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert real.returncode == 0, real.stderr

    def placed(xml: str) -> set[tuple[str, str, str, str, str]]:
        doc = etree.fromstring(xml.encode())
        return {
            (r.get("id"), r.find("node").get("name"), r.get("role"), r.get("active"), r.get("failed"))  # type: ignore[union-attr,misc]
            for r in doc.iter("resource")
            if r.find("node") is not None
        }

    ours = placed(render_crm_mon(view))
    assert ours == placed(real.stdout)
    assert ("galera", "a", "Promoted", "true", "false") in ours
    assert ("galera", "c", "Unpromoted", "true", "true") in ours


def test_crm_node_and_pacemakerd(tmp_path: Path) -> None:
    env = _env(tmp_path, _view({}, online=["a", "b"]))
    assert crm_node(["-n"], env) == (0, "b\n", "")
    assert crm_node(["-p"], env) == (0, "a b\n", "")
    assert crm_node(["-q"], env) == (0, "1\n", "")
    assert crm_node(["-l"], env)[1].splitlines() == ["a a member", "b b member", "c c lost"]
    assert crm_node(["-x"], env)[0] == EX_USAGE
    status, out, _ = pacemakerd(["-$"], env)
    assert status == 0 and out.split()[:2] == ["Pacemaker", "2.1.5"]  # ocf_local_nodename reads $2
    status, out, _ = crm_mon(["-1", "--output-as=xml"], env)
    assert status == 0 and out.startswith("<pacemaker-result")
    assert crm_mon(["-1X"], env)[1].startswith("<crm_mon")
    assert crm_mon(["-r", "--as-xml"], env)[1].startswith("<crm_mon")
    assert "Online: [ a b ]" in crm_mon(["-1"], env)[1]
    assert crm_mon(["-1"], {})[0] != 0  # no view: an error, not an empty cluster
