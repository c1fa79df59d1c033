"""crm shell import: Listing 2 as-is, every supported construct, located errors, round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper.errors import InputError
from hakeeper.importers.crm import parse_crm, read_crm
from hakeeper.spec.loader import dump_spec, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[3]
LISTING2 = ROOT / "tests" / "data" / "openstack-listing2.crm"


def test_listing2_imports_as_is() -> None:
    spec = read_crm(LISTING2)
    r, c = spec.resources, spec.constraints
    assert [n.name for n in spec.nodes] == ["alice", "bob", "charlie"]
    assert (len(r.primitives), len(r.groups), len(r.clones)) == (24, 6, 1)
    assert (len(c.location), len(c.colocation), len(c.order)) == (3, 6, 8)
    assert spec.cluster.stonith_enabled  # no property in the listing: Pacemaker's default
    prims = {p.id: p for p in r.primitives}
    assert str(prims["p_cinder-api"].agent) == "upstart:cinder-api"
    assert str(prims["p_rabbitmq"].agent) == "ocf:rabbitmq:rabbitmq-server"
    assert prims["p_mysql"].params["additional_parameters"] == "--bind-address=0.0.0.0"
    assert [(o.name, o.interval, o.timeout) for o in prims["p_mysql"].operations] == [
        ("monitor", 120.0, 60.0), ("stop", 0.0, 240.0), ("start", 0.0, 240.0)]
    groups = {g.id: g.members for g in r.groups}
    assert groups["g_nova"][0] == "p_nova-api-ec2" and len(groups["g_nova"]) == 8
    assert r.clones[0].child == "p_quantum-agent-plugin-openvswitch"
    loc = c.location[0]
    assert (loc.resource, loc.node, loc.score) == ("p_nova-compute-host1", "alice", 10000)
    col = c.colocation[0]
    assert (col.resource, col.with_resource, col.score) == ("g_basic_services", "p_IP", 1_000_000)
    order = c.order[0]
    assert (order.first, order.then, order.kind) == ("g_keystone", "cl_quantum-agent-plugin-openvswitch",
                                                      "Mandatory")


def test_listing2_round_trip_and_example_in_sync() -> None:
    spec = read_crm(LISTING2)
    assert parse_spec(dump_spec(spec)) == spec
    example = ROOT / "examples" / "openstack-pacemaker.generated.yaml"
    assert load_spec(example) == spec


EVERYTHING = r"""
node alpha \
    attributes rack=r1 standby=off \
    utilization cpu=4
node 2: beta
node gamma:normal
property $id=cib-bootstrap-options \
    stonith-enabled=false no-quorum-policy=ignore batch-limit=20
rsc_defaults rsc-options: resource-stickiness=200 failure-timeout=2min
op_defaults timeout=45s
primitive vip ocf:heartbeat:IPaddr2 \
    params ip="10.0.0.9" cidr_netmask=24 \
    meta target-role=Started \
    op monitor interval=10s \
    op stop interval=0 timeout=30s on-fail=block
primitive web lsb:apache2 op monitor interval=20s
primitive svc systemd:memcached
primitive svc2 service:ntp
primitive up upstart:nova-api
primitive fence stonith:fence_xvm params pcmk_host_list="alpha beta"
primitive db ocf:pacemaker:Stateful op monitor interval=11s role=Master op monitor interval=12s role=Slave
primitive db2 ocf:pacemaker:Stateful
group g web svc meta ordered=true
clone cl svc2 meta interleave=true
ms ms-db db meta master-max=1 notify=true
clone pc db2 meta promotable=true promoted-max=2
location l1 vip 100: alpha
location l2 g rule $role=Started -inf: not_defined rack or rack ne r1
location l3 ms-db rule $role=Master 50: #uname eq alpha rule -inf: pingd lt integer:1
location l4 /^vi/ -inf: gamma
location l5 up rule pingd: defined pingd
colocation c1 inf: g vip
colocation c2 500: vip:Started ms-db:Master
colocation c3 -inf: ( web svc ) [ up fence ]
colocation c4 inf: up fence vip node-attribute=rack
order o1 Mandatory: vip g:start
order o2 0: ms-db:promote vip:start symmetrical=false
order o3 Serialize: up fence
order o4 inf: up ( svc2 fence ) [ web ]
order o5 up:stop fence:stop vip:stop
"""


def test_every_construct() -> None:
    spec = parse_crm(EVERYTHING, "all.crm")
    assert parse_spec(dump_spec(spec)) == spec
    nodes = {n.name: n for n in spec.nodes}
    assert set(nodes) == {"alpha", "beta", "gamma"}
    assert nodes["alpha"].attributes == {"rack": "r1", "standby": "off"} and nodes["alpha"].utilization == {"cpu": 4}
    o = spec.cluster
    assert not o.stonith_enabled and o.no_quorum_policy == "ignore" and o.resource_stickiness == 200
    assert o.other == {"batch-limit": "20", "op-defaults.timeout": "45s"}
    prims = {p.id: p for p in spec.resources.primitives}
    assert {k: str(p.agent) for k, p in prims.items() if k in ("web", "svc", "svc2", "up", "fence")} == {
        "web": "lsb:apache2", "svc": "systemd:memcached", "svc2": "service:ntp", "up": "upstart:nova-api",
        "fence": "stonith:fence_xvm"}
    assert prims["vip"].params == {"ip": "10.0.0.9", "cidr_netmask": "24"}
    assert prims["vip"].operations[0].timeout == 45.0  # op_defaults
    assert prims["vip"].operations[1].on_fail == "block"
    assert [op.role for op in prims["db"].operations] == ["Promoted", "Unpromoted"]
    assert prims["fence"].params == {"pcmk_host_list": "alpha beta"}
    assert prims["vip"].meta.failure_timeout == 120.0  # rsc_defaults on a top-level resource
    assert prims["web"].meta.failure_timeout is None  # ...but members inherit through their group
    clones = {c.id: c for c in spec.resources.clones}
    assert clones["ms-db"].meta.promotable and clones["ms-db"].meta.promoted_max == 1
    assert clones["pc"].meta.promotable and clones["pc"].meta.promoted_max == 2
    assert clones["cl"].meta.interleave
    loc = {x.id: x for x in spec.constraints.location}
    rule = loc["l2"].rules[0]
    assert rule.role == "Started" and rule.boolean_op == "or" and rule.score == -1_000_000
    assert [(e.attribute, e.operation, e.value) for e in rule.expressions] == [
        ("rack", "not_defined", None), ("rack", "ne", "r1")]
    assert len(loc["l3"].rules) == 2 and loc["l3"].rules[0].role == "Promoted"
    assert loc["l3"].rules[1].expressions[0].type == "integer"
    assert loc["l4"].resource_pattern == "^vi"
    assert loc["l5"].rules[0].score_attribute == "pingd" and loc["l5"].rules[0].score is None
    col = {x.id: x for x in spec.constraints.colocation}
    assert (col["c2"].resource_role, col["c2"].with_role, col["c2"].score) == ("Started", "Promoted", 500)
    assert [(s.resources, s.sequential, s.require_all) for s in col["c3"].sets] == [
        (["web", "svc"], False, True), (["up", "fence"], False, False)]
    assert [s.resources for s in col["c4"].sets] == [["up", "fence", "vip"]] and col["c4"].node_attribute == "rack"
    order = {x.id: x for x in spec.constraints.order}
    assert (order["o1"].kind, order["o1"].then_action) == ("Mandatory", "start")
    assert (order["o2"].kind, order["o2"].first_action, order["o2"].symmetrical) == ("Optional", "promote", False)
    assert order["o3"].kind == "Serialize"
    assert [(s.resources, s.sequential) for s in order["o4"].sets] == [
        (["up"], True), (["svc2", "fence"], False), (["web"], False)]
    assert [s.action for s in order["o5"].sets] == ["stop"]


def _error(text: str) -> InputError:
    with pytest.raises(InputError) as err:
        parse_crm(text, "bad.crm")
    return err.value


BASE = "node a\nprimitive p ocf:heartbeat:Dummy\nprimitive q ocf:heartbeat:Dummy\n"


@pytest.mark.parametrize(("line4", "words"), [
    ("rsc_template t ocf:heartbeat:Dummy", "resource template"),
    ("rsc_ticket t T p", "rsc_ticket ID TICKET:"),
    ("rsc_ticket t T: p loss-policy=panic", "Input should be"),
    ("rsc_ticket t T: p:Leader", "unknown role"),
    ("tag t p q", "tag"),
    ("primitive r @tmpl", "template"),
    ("location l p rule 10: date gt someday", "date expected"),
    ("location l p rule 10: date between 2020-01-01 2021-01-01", "cannot read the date expression"),
    ("location l p rule 10: date in start=2020-01-01 fortnights=2", "not permitted"),
    ("location l p rule 10: a eq 1 and b eq 2 or c eq 3", "mixing"),
    ("primitive r ocf:heartbeat:Dummy op monitor interval=10s frobnicate=1", "frobnicate"),
    ("primitive r ocf:heartbeat:Dummy bogus x=1", "bogus"),
    ("frobnicate everything", "unknown crm statement"),
    ("location l p abc: a", "bad score"),
    ("colocation c lots: p q", "bad score"),
    ("order o many: p q", "bad score"),
    ("primitive r nagios:check_disk", "unknown agent class"),
    ("colocation c inf: ( p q", "missing"),
    ("primitive r ocf:heartbeat:Dummy op monitor interval=soon", "duration"),
])
def test_unsupported_or_bad_names_its_line(line4: str, words: str) -> None:
    err = _error(BASE + line4 + "\n")
    problem = err.problems[0]
    assert problem.file == "bad.crm" and problem.line == 4, problem
    assert words in problem.message


def test_continuation_lines_keep_the_first_line() -> None:
    err = _error(BASE + "\nprimitive r ocf:heartbeat:Dummy \\\n    op monitor \\\n    interval=later\n")
    assert err.problems[0].line == 5


@pytest.mark.parametrize(("line4", "words"), [
    ("location l ghost 10: a", "unknown resource 'ghost'"),
    ("colocation c inf: p ghost", "unknown resource 'ghost'"),
    ("order o inf: ghost p", "unknown resource 'ghost'"),
    ("rsc_ticket t T: p ghost", "unknown resource 'ghost'"),
    ("group g p ghost", "'ghost' is unknown"),
    ("clone c ghost", "not a primitive or group"),
    ("primitive p ocf:heartbeat:Dummy", "duplicate id 'p'"),
    ("location q p 10: a", "duplicate id 'q'"),
])
def test_reference_problems_name_the_defining_line(line4: str, words: str) -> None:
    err = _error(BASE + line4 + "\n")
    assert err.problems[0].line == 4 and words in err.problems[0].message, err


def test_order_cycle_names_a_constraint_line() -> None:
    err = _error(BASE + "order o1 inf: p q\n\norder o2 inf: q p\n")
    problem = err.problems[0]
    assert "cycle" in problem.message and problem.line in (4, 6)


def test_cli_import_crm(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    out = tmp_path / "spec.yaml"
    run = subprocess.run([sys.executable, "-m", "hakeeper", "import", "crm", str(LISTING2), "-o", str(out)],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert load_spec(out) == read_crm(LISTING2)
    bad = tmp_path / "bad.crm"
    bad.write_text("node a\nprimitive p ocf:heartbeat:Dummy\ntag t p\n")
    out.unlink()
    run = subprocess.run([sys.executable, "-m", "hakeeper", "import", "crm", str(bad), "-o", str(out)],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 2 and f"{bad}:3" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


def test_sets_split_where_the_role_or_action_changes() -> None:
    text = BASE + ("primitive r ocf:heartbeat:Dummy\nprimitive s ocf:heartbeat:Dummy\n"
                   "colocation c inf: p:Promoted q r ( s )\norder o inf: p q:stop r:stop [ s ]\n")
    spec = parse_crm(text, "sets.crm")
    col = spec.constraints.colocation[0]
    assert [(s.resources, s.role, s.sequential) for s in col.sets] == [
        (["p"], "Promoted", True), (["q", "r"], None, True), (["s"], None, False)]
    order = spec.constraints.order[0]
    assert [(s.resources, s.action, s.require_all) for s in order.sets] == [
        (["p"], None, True), (["q", "r"], "stop", True), (["s"], None, False)]


def test_date_expressions() -> None:
    spec = parse_crm(BASE + "location l p rule -inf: date lt 2020-01-01 or date gt \"2021-01-01 12:00 +02:00\"\n"
                     "location m q rule 100: date in start=2005-001 months=2 and date spec hours=9-16 weekdays=1-5\n",
                     "dates.crm")
    first, second = (loc.rules[0].expressions for loc in spec.constraints.location)
    assert [e.model_dump(by_alias=True, exclude_none=True) for e in first] == [
        {"operation": "lt", "end": "2020-01-01"}, {"operation": "gt", "start": "2021-01-01 12:00 +02:00"}]
    assert [e.model_dump(by_alias=True, exclude_none=True) for e in second] == [
        {"operation": "in_range", "start": "2005-001", "duration": {"months": 2}},
        {"operation": "date_spec", "date-spec": {"hours": "9-16", "weekdays": "1-5"}}]


def test_ticket_constraints() -> None:
    spec = parse_crm(BASE + "ms m q\nrsc_ticket t1 T: p loss-policy=Fence\n"
                     "rsc_ticket t2 U: p m:Master\nrsc_ticket t3 V: m:Promoted\n")
    t1, t2, t3 = spec.constraints.ticket
    assert (t1.ticket, t1.resource, t1.role, t1.loss_policy) == ("T", "p", None, "fence")
    assert t2.resource is None and t2.targets() == [("p", None), ("m", "Promoted")]
    assert (t3.resource, t3.role, t3.effective_loss_policy(t3.role, True)) == ("m", "Promoted", "demote")


def test_crmsh_short_agent_forms() -> None:
    """`crm configure show` prints an ocf:heartbeat agent by its type alone; crmsh reads a bare
    name (and `ocf:TYPE`) as heartbeat's agent. Every class-qualified form is kept as written."""
    text = ("node a\n"
            'primitive p_IP IPaddr2 params ip="10.0.0.9" cidr_netmask=24 op monitor interval=10s\n'
            "primitive d ocf:Dummy\n"
            "primitive s ocf:pacemaker:Stateful\n"
            "primitive l lsb:apache2\nprimitive v service:ntp\nprimitive y systemd:memcached\n"
            "primitive f stonith:fence_xvm\nprimitive u upstart:nova-api\n"
            "primitive w process params command=/bin/true\nprimitive x vip params ip=10.0.0.8 nic=eth0\n")
    spec = parse_crm(text, "short.crm")
    agents = {p.id: str(p.agent) for p in spec.resources.primitives}
    assert agents == {"p_IP": "ocf:heartbeat:IPaddr2", "d": "ocf:heartbeat:Dummy", "s": "ocf:pacemaker:Stateful",
                      "l": "lsb:apache2", "v": "service:ntp", "y": "systemd:memcached", "f": "stonith:fence_xvm",
                      "u": "upstart:nova-api", "w": "process", "x": "vip"}
    assert spec.resources.primitives[0].params == {"ip": "10.0.0.9", "cidr_netmask": "24"}
    assert parse_spec(dump_spec(spec)) == spec


def test_long_group_imports() -> None:
    """Group members are taken by index (they were popped from the front, quadratic in their number)."""
    members = [f"m{i}" for i in range(3000)]
    text = "node a\n" + "".join(f"primitive {m} ocf:heartbeat:Dummy\n" for m in members)
    spec = parse_crm(text + f"group g {' '.join(members)} meta ordered=true\n", "group.crm")
    assert spec.resources.groups[0].members == members and spec.resources.groups[0].meta.ordered


def test_quoted_rule_values_are_values() -> None:
    """A quoted `)` or `and` in a rule is the value compared with, not syntax (config show --crm
    writes such values quoted)."""
    spec = parse_crm(BASE + 'location l p rule 10: #uname eq ")"\nlocation m q rule 5: kind eq "and"\n', "q.crm")
    first, second = (loc.rules[0] for loc in spec.constraints.location)
    assert [(e.attribute, e.operation, e.value) for e in first.expressions] == [("#uname", "eq", ")")]
    assert [(e.attribute, e.operation, e.value) for e in second.expressions] == [("kind", "eq", "and")]
    assert second.boolean_op == "and" and len(second.expressions) == 1
