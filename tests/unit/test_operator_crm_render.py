"""`hakeeper config show --crm`: the spec in crm shell syntax, read back by hakeeper's own crm
importer into the same spec (property), quoting that survives the lexer, and what crm shell
syntax cannot hold written as a comment instead of being dropped silently."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as s

from hakeeper.importers.crm import parse_crm
from hakeeper.spec import parse_spec
from hakeeper.spec.crm_render import render_crm
from hakeeper.spec.model import (
    ClusterOptions,
    ClusterSpec,
    Colocation,
    Constraints,
    Expression,
    Location,
    Node,
    Operation,
    Order,
    Primitive,
    Resources,
    Rule,
    TicketConstraint,
)
from hakeeper.spec.values import INFINITY

NAMES = s.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True).filter(
    lambda n: n not in {"op", "params", "meta", "utilization", "attributes", "and", "or", "rule",
                        "description", "defined", "not_defined", "date"}
)
# Values an operator writes: spaces, quotes, backslashes, '=' and '#' included (no line breaks).
VALUES = s.text(s.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12)
SCORES = s.sampled_from([INFINITY, -INFINITY, 0, 5, -100, 2000])
ROLES = s.sampled_from([None, "Started", "Promoted", "Unpromoted"])
DURATIONS = s.sampled_from([0.0, 1.0, 10.0, 0.5, 90.0])
AGENTS = s.sampled_from(["ocf:heartbeat:Dummy", "process", "vip", "systemd:nginx", "ocf:pacemaker:Stateful",
                         "stonith:fence_ipmilan", "lsb:ssh"])


@s.composite
def specs(draw: Any) -> ClusterSpec:
    nodes = draw(s.lists(NAMES, min_size=1, max_size=3, unique=True))
    ids = draw(s.lists(NAMES.filter(lambda n: n not in nodes), min_size=3, max_size=6, unique=True))
    prims = []
    for rid in ids[:-2]:
        ops = [
            Operation(name=draw(s.sampled_from(["monitor", "start", "stop"])), interval=draw(DURATIONS),
                      timeout=draw(DURATIONS), role=draw(ROLES), enabled=draw(s.booleans()),
                      on_fail=draw(s.sampled_from([None, "restart", "block"])))
            for _ in range(draw(s.integers(0, 2)))
        ]
        meta: dict[str, Any] = draw(s.fixed_dictionaries({}, optional={
            "resource-stickiness": SCORES, "migration-threshold": s.integers(1, 5),
            "target-role": s.sampled_from(["Started", "Stopped"]), "failure-timeout": s.sampled_from(["30s", "2min"]),
            "is-managed": s.booleans()}))
        prims.append(Primitive.model_validate({
            "id": rid, "agent": draw(AGENTS), "operations": ops, "meta": meta,
            "params": draw(s.dictionaries(NAMES, VALUES, max_size=3)),
            "utilization": draw(s.dictionaries(NAMES, s.integers(0, 64), max_size=2)),
        }))
    group_id, clone_id = ids[-2], ids[-1]
    members = [p.id for p in prims[: draw(s.integers(1, len(prims)))]]
    groups = [{"id": group_id, "members": members}]
    cloned = draw(s.sampled_from([group_id, *(p.id for p in prims if p.id not in members)]))
    clone_meta = s.fixed_dictionaries(
        {}, optional={"promotable": s.booleans(), "clone-max": s.integers(1, 3), "interleave": s.booleans()}
    )
    clones = [{"id": clone_id, "child": cloned, "meta": draw(clone_meta)}]
    anyone = s.sampled_from([group_id, clone_id, *(p.id for p in prims if p.id not in members and p.id != cloned)])
    locations = [
        Location(id="loc-node", resource=draw(anyone), node=draw(s.sampled_from(nodes)), score=draw(SCORES),
                 role=draw(ROLES), resource_discovery=draw(s.sampled_from(["always", "never", "exclusive"]))),
        Location(id="loc-rule", resource=draw(anyone), rules=[Rule(
            score=draw(SCORES), role=draw(ROLES), boolean_op=draw(s.sampled_from(["and", "or"])),
            expressions=[Expression(attribute=draw(s.sampled_from(["#uname", "pingd", "site"])),
                                    operation=draw(s.sampled_from(["eq", "ne", "gt", "lte"])),
                                    value=draw(VALUES),
                                    type=draw(s.sampled_from(["string", "integer", "version"])))
                         for _ in range(draw(s.integers(1, 3)))])]),
    ]
    colocations = [Colocation.model_validate({
        "id": "col", "resource": group_id, "with": clone_id, "score": draw(SCORES),
        "resource-role": draw(ROLES), "with-role": draw(ROLES)})]
    orders = [Order(id="ord", first=clone_id, then=group_id,
                    first_action=draw(s.sampled_from(["start", "promote", "stop"])),
                    then_action=draw(s.sampled_from([None, "start", "stop"])),
                    kind=draw(s.sampled_from(["Mandatory", "Optional", "Serialize"])),
                    symmetrical=draw(s.sampled_from([None, True, False])))]
    tickets = [TicketConstraint(id="tkt", ticket=draw(NAMES), resource=group_id, role=draw(ROLES),
                                loss_policy=draw(s.sampled_from([None, "stop", "demote", "freeze"])))]
    options = ClusterOptions(
        name=draw(NAMES), stonith_enabled=draw(s.booleans()), symmetric_cluster=draw(s.booleans()),
        no_quorum_policy=draw(s.sampled_from(["stop", "freeze", "ignore"])),
        resource_stickiness=draw(SCORES), migration_threshold=draw(s.sampled_from([INFINITY, 3])),
        node_timeout=draw(s.sampled_from([None, 0.0, 0.5, 1.5, 60.0])),
        other=draw(s.dictionaries(s.sampled_from(["dc-version", "cluster-infrastructure", "batch-limit"]), VALUES,
                                  max_size=2)),
    )
    return ClusterSpec(
        cluster=options,
        nodes=[Node(name=n, attributes=draw(s.dictionaries(NAMES, VALUES, max_size=2))) for n in nodes],
        resources=Resources.model_validate({"primitives": prims, "groups": groups, "clones": clones}),
        constraints=Constraints(location=locations, colocation=colocations, order=orders, ticket=tickets),
    )


@settings(max_examples=150, deadline=None)
@given(specs())
def test_rendered_crm_reads_back_as_the_same_spec(spec: ClusterSpec) -> None:
    text = render_crm(spec)
    assert parse_crm(text, "shown.crm") == spec, text


def test_layout_is_crm_configure_show() -> None:
    spec = parse_spec(
        """\
cluster: {name: c, stonith-enabled: false, resource-stickiness: 100}
nodes: [{name: n1}, {name: n2}]
resources:
  primitives:
    - id: vip
      agent: ocf:heartbeat:IPaddr2
      params: {ip: 10.0.0.10, cidr_netmask: "24"}
      operations: [{name: monitor, interval: 10s, timeout: 20s}]
    - {id: db, agent: "ocf:pacemaker:Stateful"}
  clones: [{id: db-clone, child: db, meta: {promotable: true}}]
constraints:
  location: [{id: prefer-n1, resource: vip, node: n1, score: 50}]
  colocation: [{id: vip-with-db, resource: vip, with: db-clone, with-role: Promoted}]
  order: [{id: db-then-vip, first: db-clone, first-action: promote, then: vip, then-action: start}]
  ticket: [{id: db-needs-a, ticket: site-a, resource: db-clone, loss-policy: demote}]
"""
    )
    assert render_crm(spec) == """\
node n1
node n2
primitive vip ocf:heartbeat:IPaddr2 \\
\tparams ip=10.0.0.10 cidr_netmask=24 \\
\top monitor interval=10s timeout=20s
primitive db ocf:pacemaker:Stateful
clone db-clone db \\
\tmeta promotable=true
location prefer-n1 vip 50: n1
colocation vip-with-db INFINITY: vip db-clone:Promoted
order db-then-vip Mandatory: db-clone:promote vip:start
rsc_ticket db-needs-a site-a: db-clone loss-policy=demote
property cib-bootstrap-options: \\
\tcluster-name=c symmetric-cluster=true stonith-enabled=false no-quorum-policy=stop maintenance-mode=false \
stop-all-resources=false start-failure-is-fatal=true
rsc_defaults rsc-options: \\
\tresource-stickiness=100 migration-threshold=INFINITY
"""


def test_values_that_need_quotes_survive_the_lexer() -> None:
    prim = Primitive.model_validate({"id": "p", "agent": "process",
                                     "params": {"command": 'sh -c "echo \\"hi\\" # not a comment"', "empty": "",
                                                "path": "C:\\dir\\"}})
    spec = ClusterSpec(nodes=[Node(name="n1")], resources=Resources(primitives=[prim]))
    text = render_crm(spec)
    assert parse_crm(text).resources.primitives[0].params == prim.params, text


def test_what_crm_syntax_cannot_hold_is_a_comment_not_a_silent_loss() -> None:
    prim = Primitive.model_validate({"id": "p", "agent": "process", "params": {"command": "sleep 1"},
                                     "node-params": {"n2": {"command": "sleep 2"}}})
    broken = Primitive.model_validate({"id": "q", "agent": "process", "params": {"command": "a\nb"}})
    nested = Location(id="deep", resource="p", rules=[Rule(score=1, expressions=[Rule(score=2, expressions=[
        Expression(attribute="a", operation="defined")])])])
    spec = ClusterSpec(nodes=[Node(name="n1", score=10), Node(name="n2")],
                       resources=Resources(primitives=[prim, broken]), constraints=Constraints(location=[nested]))
    text = render_crm(spec)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert any("node n1: score 10" in c for c in comments)
    assert any("parameters on node n2" in c and "sleep 2" in c for c in comments)
    assert any("'q' left out" in c and "line break" in c for c in comments)
    assert any("'deep' left out" in c and "nested rule" in c for c in comments)
    back = parse_crm(text)  # what remains still reads
    assert [p.id for p in back.resources.primitives] == ["p"] and not back.constraints.location
