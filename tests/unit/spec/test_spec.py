from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.spec import INFINITY, AgentRef, add_scores, dump_spec, parse_duration, parse_score, parse_spec

GOOD = """\
cluster:
  stonith-enabled: false
  resource-stickiness: 100
nodes:
  - name: alice
  - name: bob
resources:
  primitives:
    - id: ip
      agent: ocf:heartbeat:IPaddr2
      params: {ip: 10.0.0.1, cidr_netmask: 24}
      operations: [{name: monitor, interval: 10s, timeout: 20s}]
    - id: web
      agent: systemd:apache2
  groups:
    - id: g
      members: [ip, web]
constraints:
  location:
    - {id: prefer-alice, resource: g, node: alice, score: 50}
  order:
    - {id: o1, first: ip, then: web}
"""


def test_good_spec_round_trips_through_yaml() -> None:
    spec = parse_spec(GOOD, "good.yaml")
    assert spec.cluster.resource_stickiness == 100
    assert spec.resources.primitives[0].agent == AgentRef("ocf", "heartbeat", "IPaddr2")
    assert spec.resources.primitives[0].params["cidr_netmask"] == "24"
    assert spec.resources.primitives[0].operations[0].interval == 10.0
    again = parse_spec(dump_spec(spec), "again.yaml")
    assert again == spec


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        ("- {id: o1, first: ip, then: web}", 22, "constraints.order.0.then", "unknown resource 'nope'"),
        ("agent: systemd:apache2", 14, "resources.primitives.1.agent", "unknown agent class"),
        ("score: 50", 19, "constraints.location.0.score", "score must be"),
        ("id: web", 14, "resources.primitives.1.id", "duplicate id 'ip'"),
        ("stonith-enabled: false", 2, "cluster.stonith-enbled", "Extra inputs"),
    ],
)
def test_errors_name_line_and_field(change: str, line: int, field: str, words: str) -> None:
    bad = {
        "- {id: o1, first: ip, then: web}": "- {id: o1, first: ip, then: nope}",
        "agent: systemd:apache2": "agent: upstrat:apache2",
        "score: 50": "score: lots",
        "id: web": "id: ip",
        "stonith-enabled: false": "stonith-enbled: false",
    }[change]
    text = GOOD.replace(change, bad)
    with pytest.raises(InputError) as info:
        parse_spec(text, "bad.yaml")
    problem = info.value.problems[0]
    assert problem.file == "bad.yaml"
    assert problem.field == field
    assert problem.line is not None and abs(problem.line - line) <= 1
    assert words in problem.message


def test_mandatory_order_cycle_is_refused() -> None:
    text = GOOD + "    - {id: o2, first: web, then: ip}\n"
    with pytest.raises(InputError) as info:
        parse_spec(text, "c.yaml")
    assert "cycle" in info.value.problems[0].message


def test_optional_orders_may_form_a_cycle() -> None:
    text = GOOD + "    - {id: o2, first: web, then: ip, kind: Optional}\n"
    parse_spec(text, "c.yaml")


def test_validate_command_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("then: web", "then: nope"))
    src = Path(__file__).resolve().parents[3] / "src"
    run = subprocess.run([sys.executable, "-m", "hakeeper", "validate", str(bad)],
                         capture_output=True, text=True, env={"PYTHONPATH": str(src)})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert f"{bad}:22: constraints.order.0.then: unknown resource 'nope'" in run.stderr


@given(st.integers(min_value=-3 * INFINITY, max_value=3 * INFINITY))
def test_scores_saturate(value: int) -> None:
    assert -INFINITY <= parse_score(value) <= INFINITY
    assert parse_score(str(value)) == parse_score(value)


@given(st.integers(-INFINITY, INFINITY), st.integers(-INFINITY, INFINITY))
def test_minus_infinity_dominates(a: int, b: int) -> None:
    total = add_scores(a, b)
    if -INFINITY in (a, b):
        assert total == -INFINITY
    elif INFINITY in (a, b):
        assert total == INFINITY
    else:
        assert total == max(-INFINITY, min(INFINITY, a + b))


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2min", 120), ("500ms", 0.5), ("0", 0),
                                                ("1h", 3600), ("PT1M30S", 90), (15, 15)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
