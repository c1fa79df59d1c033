"""CIB XML import: configuration, status, errors, and Pacemaker's own suite as an oracle."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper.conformance import current_status as oracle
from hakeeper.conformance.suite import default_suite_dir
from hakeeper.errors import InputError
from hakeeper.importers.cib import read_cib
from hakeeper.spec.loader import dump_spec, parse_spec

ROOT = Path(__file__).resolve().parents[3]

CIB = """<cib have-quorum="1" dc-uuid="1" validate-with="pacemaker-3.0">
  <configuration>
    <crm_config>
      <cluster_property_set id="opts">
        <nvpair id="o1" name="stonith-enabled" value="true"/>
        <nvpair id="o2" name="no-quorum-policy" value="freeze"/>
        <nvpair id="o3" name="batch-limit" value="30"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="alpha"><instance_attributes id="na"><nvpair id="na1" name="rack" value="r1"/>
      </instance_attributes></node>
      <node id="2" uname="beta"/>
      <node id="3" uname="gamma"/>
      <node id="4" uname="delta"/>
    </nodes>
    <resources>
      <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="vip-p"><nvpair id="vip-ip" name="ip" value="10.0.0.1"/></instance_attributes>
        <operations><op id="vip-mon" name="monitor" interval="10s" timeout="20s"/>
          <op id="vip-stop" name="stop" interval="0" on-fail="block"/></operations>
      </primitive>
      <group id="web">
        <primitive id="fs" class="ocf" provider="heartbeat" type="Filesystem"/>
        <primitive id="httpd" class="systemd" type="httpd"/>
      </group>
      <master id="db-ms">
        <meta_attributes id="db-m"><nvpair id="db-m1" name="master-max" value="1"/></meta_attributes>
        <primitive id="db" class="ocf" provider="pacemaker" type="Stateful"/>
      </master>
    </resources>
    <constraints>
      <rsc_location id="loc1" rsc="vip" node="alpha" score="100"/>
      <rsc_location id="loc2" rsc="web">
        <rule id="r1" score="-INFINITY" boolean-op="or">
          <expression id="e1" attribute="rack" operation="ne" value="r1"/>
          <rule id="r2" score="0"><expression id="e2" attribute="#uname" operation="eq" value="delta"/></rule>
        </rule>
      </rsc_location>
      <rsc_colocation id="col1" rsc="web" with-rsc="vip" score="INFINITY"/>
      <rsc_colocation id="col2" rsc="vip" with-rsc="db-ms" with-rsc-role="Master" score="500"/>
      <rsc_order id="ord1" first="vip" then="web" kind="Mandatory" symmetrical="false"/>
      <rsc_order id="ord2" score="0">
        <resource_set id="s1" sequential="false"><resource_ref id="db-ms"/></resource_set>
        <resource_set id="s2"><resource_ref id="vip"/></resource_set>
      </rsc_order>
    </constraints>
    <rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="100"/>
      <nvpair id="rd2" name="failure-timeout" value="60s"/></meta_attributes></rsc_defaults>
  </configuration>
  <status>
    <node_state id="1" uname="alpha" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1"><instance_attributes id="t1">
        <nvpair id="t1a" name="fail-count-httpd#monitor_10000" value="2"/>
        <nvpair id="t1b" name="last-failure-httpd#monitor_10000" value="1700000000"/>
        <nvpair id="t1c" name="master-db" value="10"/>
      </instance_attributes></transient_attributes>
      <lrm id="1"><lrm_resources>
        <lrm_resource id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
          <lrm_rsc_op id="vip_last_0" operation="start" interval="0" call-id="3" rc-code="0" op-status="0"
            transition-key="1:2:0:x"/>
          <lrm_rsc_op id="vip_monitor_10000" operation="monitor" interval="10000" call-id="4" rc-code="0"
            op-status="0" transition-key="2:2:0:x"/>
        </lrm_resource>
        <lrm_resource id="httpd" class="systemd" type="httpd">
          <lrm_rsc_op id="h1" operation="start" interval="0" call-id="5" rc-code="0" op-status="0"
            transition-key="3:2:0:x"/>
          <lrm_rsc_op id="h2" operation="monitor" interval="10000" call-id="6" rc-code="7" op-status="0"
            transition-key="4:2:0:x"/>
        </lrm_resource>
        <lrm_resource id="db:0" class="ocf" provider="pacemaker" type="Stateful">
          <lrm_rsc_op id="d1" operation="promote" interval="0" call-id="7" rc-code="0" op-status="0"
            transition-key="5:2:0:x"/>
        </lrm_resource>
        <lrm_resource id="old" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="o1" operation="start" interval="0" call-id="8" rc-code="0" op-status="0"
            transition-key="6:2:0:x"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="beta" in_ccm="false" crmd="offline" join="down" expected="member">
      <lrm id="2"><lrm_resources>
        <lrm_resource id="fs" class="ocf" provider="heartbeat" type="Filesystem">
          <lrm_rsc_op id="f1" operation="stop" interval="0" call-id="9" rc-code="1" op-status="4"
            transition-key="7:2:0:x"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="3" uname="gamma" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="3"><lrm_resources>
        <lrm_resource id="db:1" class="ocf" provider="pacemaker" type="Stateful">
          <lrm_rsc_op id="g1" operation="start" interval="0" call-id="-1" rc-code="14" op-status="-1"
            transition-key="8:2:0:x"/>
        </lrm_resource>
        <lrm_resource id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
          <lrm_rsc_op id="g2" operation="monitor" interval="0" call-id="2" rc-code="5" op-status="0"
            transition-key="9:2:7:x"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
  </status>
</cib>
"""


def _import(text: str) -> object:
    return read_cib(io.BytesIO(text.encode()), file="test.xml")


def test_configuration_is_imported() -> None:
    spec = read_cib(io.BytesIO(CIB.encode()), file="test.xml")
    assert spec.cluster.stonith_enabled and spec.cluster.no_quorum_policy == "freeze"
    assert spec.cluster.other == {"batch-limit": "30"}
    assert spec.cluster.resource_stickiness == 100
    assert [n.name for n in spec.nodes] == ["alpha", "beta", "gamma", "delta"]
    assert spec.nodes[0].attributes == {"rack": "r1"}
    prims = {p.id: p for p in spec.resources.primitives}
    assert set(prims) == {"vip", "fs", "httpd", "db"}
    assert str(prims["httpd"].agent) == "systemd:httpd"
    assert prims["vip"].params == {"ip": "10.0.0.1"}
    assert [(o.name, o.interval, o.on_fail) for o in prims["vip"].operations] == [
        ("monitor", 10.0, None), ("stop", 0.0, "block")]
    assert spec.resources.groups[0].members == ["fs", "httpd"]
    clone = spec.resources.clones[0]
    assert clone.child == "db" and clone.meta.promotable and clone.meta.promoted_max == 1
    # rsc_defaults land on top-level resources only, so members still inherit through their parent.
    assert prims["vip"].meta.failure_timeout == 60.0 and prims["fs"].meta.failure_timeout is None
    assert spec.resources.groups[0].meta.failure_timeout == 60.0
    c = spec.constraints
    assert (c.location[0].node, c.location[0].score) == ("alpha", 100)
    rule = c.location[1].rules[0]
    assert rule.boolean_op == "or" and rule.score == -1_000_000 and len(rule.expressions) == 2
    assert c.colocation[1].with_role == "Promoted"
    assert c.order[0].symmetrical is False
    assert c.order[1].kind == "Optional" and [s.resources for s in c.order[1].sets] == [["db-ms"], ["vip"]]


def test_status_is_imported() -> None:
    spec = read_cib(io.BytesIO(CIB.encode()), file="test.xml")
    state = spec.state
    assert state is not None and state.dc == "alpha" and state.have_quorum
    alpha, beta, gamma, delta = (state.nodes[n] for n in ("alpha", "beta", "gamma", "delta"))
    assert alpha.online and not alpha.unclean and alpha.attributes["master-db"] == "10"
    assert alpha.attributes["rack"] == "r1"  # permanent attributes merged under transient ones
    # Lost while expected up, fencing enabled: unclean.
    assert not beta.online and beta.unclean and beta.expected == "member"
    assert gamma.online
    # Never seen, startup-fencing defaults to true.
    assert not delta.seen and delta.unclean
    by = {(s.resource, s.node): s for s in state.resources}
    assert by[("vip", "alpha")].role == "Started" and not by[("vip", "alpha")].failed
    httpd = by[("httpd", "alpha")]
    assert httpd.failed and httpd.failed_op == "monitor" and httpd.failed_rc == 7 and httpd.on_fail == "restart"
    assert httpd.fail_count == 2 and httpd.last_failure == 1_700_000_000
    assert by[("db:0", "alpha")].role == "Promoted"
    pending = by[("db:1", "gamma")]
    assert pending.pending == "start" and pending.role == "Unpromoted"
    fs = by[("fs", "beta")]
    assert fs.failed_op == "stop" and fs.on_fail == "fence"
    banned = by[("vip", "gamma")]  # the probe found the agent missing there
    assert banned.banned and banned.role == "Stopped" and not banned.failed
    orphan = by[("old", "alpha")]
    assert orphan.orphan and orphan.agent == "ocf:heartbeat:Dummy"


def test_round_trip_through_yaml() -> None:
    spec = read_cib(io.BytesIO(CIB.encode()), file="test.xml")
    assert parse_spec(dump_spec(spec)) == spec


@pytest.mark.parametrize(("text", "line", "words"), [
    ("<config/>", 1, "not a CIB"),
    ("<cib>\n<configuration>\n<resources>\n</configuration></cib>", 4, "not a CIB"),
    ("", 1, "not a CIB"),
])
def test_not_a_cib(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as err:
        _import(text)
    problem = err.value.problems[0]
    assert problem.file == "test.xml" and problem.line == line and words in problem.message


@pytest.mark.parametrize(("fragment", "words"), [
    ('<bundle id="b1"><docker image="x"/></bundle>', "bundle is not supported yet"),
    ('<template id="t1" class="ocf" provider="heartbeat" type="Dummy"/>', "template is not supported yet"),
    ('<primitive id="p" class="ocf" provider="heartbeat" type="Dummy"><operations>'
     '<op id="o" name="monitor" interval="soon"/></operations></primitive>', "duration expected"),
])
def test_unsupported_resources_name_their_line(fragment: str, words: str) -> None:
    text = f"<cib>\n<configuration>\n<resources>\n{fragment}\n</resources></configuration></cib>"
    with pytest.raises(InputError) as err:
        _import(text)
    problem = err.value.problems[0]
    assert problem.line == 4 and words in problem.message


def test_unknown_reference_maps_to_constraint_line() -> None:
    text = ("<cib><configuration><resources/>\n<constraints>\n"
            '<rsc_location id="l" rsc="ghost" node="n" score="1"/>\n</constraints></configuration></cib>')
    with pytest.raises(InputError) as err:
        _import(text)
    problem = err.value.problems[0]
    assert problem.line == 3 and "ghost" in problem.message


def test_ticket_constraint_with_unknown_resource_names_its_line() -> None:
    text = ("<cib><configuration><resources/>\n<constraints>\n"
            '<rsc_ticket id="t" rsc="x" ticket="T"/>\n</constraints></configuration></cib>')
    with pytest.raises(InputError, match="unknown resource 'x'") as err:
        _import(text)
    assert err.value.problems[0].line == 3


TICKETS = """<cib><configuration><resources>
<primitive id="p" class="ocf" provider="pacemaker" type="Dummy"/>
<primitive id="q" class="ocf" provider="pacemaker" type="Stateful"/>
<master id="ms"><primitive id="r" class="ocf" provider="pacemaker" type="Stateful"/></master>
</resources><constraints>
<rsc_ticket id="t1" rsc="p" ticket="A" loss-policy="Freeze"/>
<rsc_ticket id="t2" ticket="B"><resource_set id="s1" role="Master"><resource_ref id="ms"/></resource_set>
<resource_set id="s2"><resource_ref id="q"/></resource_set></rsc_ticket>
<rsc_ticket id="t3" rsc="ms" rsc-role="Promoted" ticket="C"/>
</constraints></configuration>
<status><tickets><ticket_state id="A" granted="true" last-granted="1"/>
<ticket_state id="B" granted="true" standby="true"/><ticket_state id="D" granted="false"/></tickets>
</status></cib>"""


def test_ticket_constraints_and_ticket_states() -> None:
    spec = read_cib(io.BytesIO(TICKETS.encode()), file="test.xml")
    t1, t2, t3 = spec.constraints.ticket
    assert (t1.id, t1.ticket, t1.resource, t1.loss_policy) == ("t1", "A", "p", "freeze")
    assert t2.targets() == [("ms", "Promoted"), ("q", None)]
    assert t2.effective_loss_policy("Promoted", True) == "demote"
    assert t2.effective_loss_policy(None, True) == "stop"
    assert (t3.role, t3.effective_loss_policy(t3.role, True)) == ("Promoted", "demote")
    assert spec.state is not None
    tickets = {name: (t.granted, t.standby) for name, t in spec.state.tickets.items()}
    # C is referenced but has no state: absent, which the scheduler reads as not granted.
    assert tickets == {"A": (True, False), "B": (True, True), "D": (False, False)}
    assert parse_spec(dump_spec(spec)) == spec


def test_ticket_constraint_bad_loss_policy_names_its_line() -> None:
    text = ("<cib><configuration><resources>\n"
            '<primitive id="p" class="ocf" provider="pacemaker" type="Dummy"/></resources>\n'
            '<constraints><rsc_ticket id="t" rsc="p" ticket="T" loss-policy="panic"/>\n'
            "</constraints></configuration></cib>")
    with pytest.raises(InputError) as err:
        _import(text)
    assert err.value.problems[0].line == 3 and "loss" in (err.value.problems[0].field or "")


def test_suite_reproduction_rate_per_tier() -> None:
    """A floor under the measured rates (bench/import_conformance.py), so a regression cannot hide."""
    suite = default_suite_dir()
    if not (suite / "index.tsv").exists():
        pytest.skip(f"Pacemaker's scheduler suite is not at {suite}")
    import csv

    with open(suite / "index.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    same: dict[str, int] = {}
    total: dict[str, int] = {}
    for row in rows:
        total[row["tier"]] = total.get(row["tier"], 0) + 1
        if oracle.compare(row["name"], suite)[0] == "ok":
            same[row["tier"]] = same.get(row["tier"], 0) + 1
    rates = {tier: same.get(tier, 0) / total[tier] for tier in total}
    assert rates["1"] >= 0.98 and rates["2"] >= 0.91 and rates["3"] >= 0.96 and rates["4"] >= 0.78, rates


def test_cli_writes_nothing_on_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<cib><configuration><resources>\n<bundle id='b'/></resources></configuration></cib>")
    out = tmp_path / "out.yaml"
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "hakeeper", "import", "cib", str(bad), "-o", str(out)],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 2 and f"{bad}:2" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    good = tmp_path / "good.xml"
    good.write_text(CIB)
    run = subprocess.run([sys.executable, "-m", "hakeeper", "import", "cib", str(good), "-o", str(out)],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert "db-ms" in out.read_text()


# A sample of Pacemaker's own regression CIBs whose "Current cluster status" the import must match:
# failures, fencing, promotable and unique clones, standby, pending operations, remote nodes.
SUITE_SAMPLE = [
    "797", "bug-1718", "bug-5059", "bug-lf-2160", "bug-lf-2574", "bug-n-385265-2", "clone-interleave-3",
    "cloned_start_two", "colo_unpromoted_w_native", "coloc-many-one", "colocation-priority-group",
    "failed-probe-clone", "group9", "interleave-2", "migrate-fail-5", "migrate-fail-7", "migration-ping-pong",
    "monitor-onfail-stop", "novell-252693-3", "ocf_degraded_promoted-remap-ocf_ok",
    "one-or-more-unrunnable-instances", "order-sets", "promoted-ordering", "promoted-role", "rec-node-4",
    "rec-rsc-1", "remote-move", "remote-startup-probes", "simple4", "suicide-needed-inquorate",
    "systemhealthp1", "unmanaged-stop-1", "rec-node-3",
    # live migration, failure-timeout expiry, resource-wide roles, guest and remote nodes, P10S intervals
    "migrate-partial-2", "migrate-fail-7", "partial-live-migration-multiple-active", "failcount-block",
    "stopped-monitor-02", "bug-rh-880249", "expire-non-blocked-failure", "stop-unexpected", "whitebox-start",
    "whitebox-move", "remote-recover", "remote-fence-unclean", "remote-stale-node-entry",
    "suicide-not-needed-never-quorate", "anon-instance-pending", "promoted-failed-demote", "unmanaged-promoted",
    "probe-3", "clone-anon-probe-1", "failcount", "multiple-active-block-group", "rec-rsc-8",
]


@pytest.mark.parametrize("name", SUITE_SAMPLE)
def test_pacemaker_suite_current_status(name: str) -> None:
    suite = default_suite_dir()
    if not (suite / "xml" / f"{name}.xml").exists():
        pytest.skip(f"Pacemaker's scheduler suite is not at {suite}")
    verdict, detail = oracle.compare(name, suite)
    assert verdict == "ok", detail
    spec = read_cib(suite / "xml" / f"{name}.xml", now=1e10)
    assert parse_spec(dump_spec(spec)) == spec  # state included


def test_defaults_with_resource_and_operation_rules() -> None:
    text = """<cib><configuration><crm_config/><nodes/>
    <resources>
      <primitive id="d" class="ocf" provider="pacemaker" type="Dummy">
        <operations><op id="d-m" name="monitor" interval="10s"/><op id="d-s" name="start" interval="0"/>
        </operations></primitive>
      <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
        <meta_attributes id="ip-m"><nvpair id="ip-m1" name="target-role" value="Started"/></meta_attributes>
        <operations><op id="ip-m" name="monitor" interval="10s"/></operations></primitive>
      <group id="g"><meta_attributes id="g-m"><nvpair id="g-m1" name="is-managed" value="true"/></meta_attributes>
        <primitive id="d2" class="ocf" provider="pacemaker" type="Dummy"/></group>
    </resources><constraints/>
    <rsc_defaults>
      <meta_attributes id="unmanaged"><rule id="r1" score="INFINITY">
        <rsc_expression id="e1" class="ocf" provider="pacemaker" type="Dummy"/></rule>
        <nvpair id="n1" name="is-managed" value="false"/></meta_attributes>
      <meta_attributes id="stopped"><rule id="r2" score="INFINITY">
        <rsc_expression id="e2" type="IPaddr2"/></rule>
        <nvpair id="n2" name="target-role" value="Stopped"/></meta_attributes>
    </rsc_defaults>
    <op_defaults>
      <meta_attributes id="mon"><rule id="r3" score="INFINITY" boolean-op="and">
        <rsc_expression id="e3" class="ocf" provider="pacemaker"/><op_expression id="e4" name="monitor" interval="10s"/>
        </rule><nvpair id="n3" name="timeout" value="8s"/></meta_attributes>
      <meta_attributes id="all"><nvpair id="n4" name="timeout" value="30s"/></meta_attributes>
    </op_defaults>
    </configuration></cib>"""
    spec = read_cib(io.BytesIO(text.encode()), file="defaults.xml")
    prims = {p.id: p for p in spec.resources.primitives}
    assert prims["d"].meta.is_managed is False
    assert prims["d2"].meta.is_managed is None  # its group says is-managed=true: the default does not apply
    assert prims["ip"].meta.target_role == "Started"  # its own meta wins over the default
    assert prims["ip"].meta.is_managed is None
    assert [(o.name, o.timeout) for o in prims["d"].operations] == [("monitor", 8.0), ("start", 30.0)]
    assert [(o.name, o.timeout) for o in prims["ip"].operations] == [("monitor", 30.0)]
    assert spec.cluster.other == {"op-defaults.timeout": "30s"}


class _OneWay(io.RawIOBase):
    """A stream that cannot seek (a pipe): the import reads it once and keeps the bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_status_read_from_a_stream_that_cannot_seek() -> None:
    piped = read_cib(io.BufferedReader(_OneWay(CIB.encode())), file="pipe.xml")
    assert piped == read_cib(io.BytesIO(CIB.encode()), file="test.xml")
    assert piped.state is not None and piped.state.resources


def test_bad_xml_inside_the_status_is_located() -> None:
    head = CIB.split("<status>", 1)[0]
    broken = head + "<status>\n<node_state id='1' uname='alpha'>\n<lrm><lrm_resources>\n<lrm_resource id='x'>" \
        + "</lrm_resources></lrm></node_state>\n</status></cib>"
    with pytest.raises(InputError, match="not a CIB") as err:
        _import(broken)
    assert err.value.problems[0].line == head.count("\n") + 4
