"""The conformance runner's pure parts: summary parsing, normalisation, recorded figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.conformance.report import read_recorded, render_doc
from hakeeper.conformance.runner import Result, run_case, tier_figures
from hakeeper.conformance.suite import Case, action_key, normalise, transition_summary

OUTPUT = """\
Current cluster status:
  * Node List:
    * Online: [ node1 node2 ]

Transition Summary:
  * Fence (reboot) node1 'peer is no longer part of the cluster'
  * Move       rsc1    ( node1 -> node2 )
  * Start      rsc2    (          node2 )  due to unrunnable rsc3 start (blocked)

Executing Cluster Transition:
  * Resource action: rsc1            stop on node1
"""


def test_transition_summary_block_is_extracted() -> None:
    lines = transition_summary(OUTPUT)
    assert len(lines) == 3 and lines[0].startswith("  * Fence")


def test_normalisation_ignores_column_padding_only() -> None:
    assert normalise("  * Start      rsc2    (          node2 )") == "* Start rsc2 (node2)"
    assert normalise("  * Start rsc2 ( node2 )") == normalise("  * Start   rsc2 (node2 )")
    assert normalise("  * Start rsc2 ( node2 )") != normalise("  * Start rsc2 ( node1 )")
    assert action_key(transition_summary(OUTPUT)[2]) == "* Start rsc2 (node2)"


def test_a_case_runs_and_compares(tmp_path: Path) -> None:
    (tmp_path / "x.summary").write_text(OUTPUT.replace(
        "  * Fence (reboot) node1 'peer is no longer part of the cluster'\n", ""))
    case = Case("x", 1, "", "", "", tmp_path / "x.xml", tmp_path / "x.summary")

    def loader(path: Path, now: float) -> object:
        raise ValueError("construct not supported")

    result = run_case(case, loader)
    assert not result.exact and "construct not supported" in result.reason


def test_recorded_figures_round_trip() -> None:
    case = Case("x", 2, "", "", "", Path("x.xml"), Path("x.summary"))
    results = [Result(case, exact=True, actions=True), Result(case)]
    figures = tier_figures(results)
    assert figures == {2: {"cases": 2, "exact": 1, "actions": 1}}
    assert read_recorded(render_doc(results, figures)) == {2: 1}


def test_real_cases_pass() -> None:
    from hakeeper.conformance.suite import default_suite_dir, load_index
    suite = default_suite_dir()
    if not (suite / "index.tsv").is_file():
        pytest.skip(f"the scheduler suite is not at {suite}")
    cases = {c.name: c for c in load_index(suite)}
    for name in ("simple1", "group1", "rec-node-2", "quorum-1", "order7"):
        result = run_case(cases[name])
        assert result.exact, (name, result.reason, result.got)
