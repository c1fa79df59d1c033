"""`hakeeper recovery list` (instanceha/view.py): compute hosts with their cluster state, Nova's
service record (or why Nova could not tell) and the recovery in progress; every recovery; --json."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from hakeeper.agent import state as st
from hakeeper.coord.memory import MemoryStore
from hakeeper.instanceha import view
from hakeeper.instanceha.commands import _list
from hakeeper.instanceha.model import InstanceRecord, InstanceState, Phase, Recovery
from hakeeper.instanceha.nova import Service
from hakeeper.spec.loader import spec_from_document
from hakeeper.yamlsource import parse_yaml

KEYS = st.Keys("v")
CONFIG = """
cluster: {stonith-enabled: true}
nodes: [{name: ctl}, {name: c1}, {name: c2}]
resources:
  primitives:
    - id: evacuator
      agent: instanceha:evacuator
      params: {computes: "c1,c2", host_map: "c2:nova-c2", clouds_yaml: /nonexistent/clouds.yaml, cloud: x}
"""


def values() -> dict[str, bytes]:
    spec = spec_from_document(parse_yaml(CONFIG, "cluster.yaml"))
    running = Recovery(
        node="c1", host="c1", failure=7, fenced_at=100.0, phase=Phase.EVACUATING,
        instances=(InstanceRecord("a", "vm-a", state=InstanceState.EVACUATED, target="nova-c2"),
                   InstanceRecord("b", "vm-b", state=InstanceState.ISSUED)),
    )
    old = Recovery(node="c2", host="nova-c2", failure=3, fenced_at=50.0, phase=Phase.DONE, unforced=True)
    return {
        KEYS.config: st.dumps({"version": 1, "spec": spec.model_dump(mode="json", by_alias=True)}),
        KEYS.prefix + "instanceha/recovery/c1/7": running.dumps(),
        KEYS.prefix + "instanceha/recovery/c2/3": old.dumps(),
    }


def test_section_names_each_compute_its_nova_service_and_the_recovery_under_way() -> None:
    services: dict[str, Service | str] = {
        "c1": Service("1", "c1", "down", "enabled", True, ""),
        "nova-c2": "nova-compute of nova-c2: Nova does not answer: timed out",
    }
    section = view.compute_section(values(), KEYS, {"c1": "OFFLINE (fenced)", "c2": "online"}, services)
    c1, c2 = section["computes"]
    assert c1["nova"] == {"state": "down", "status": "enabled", "forced_down": True}
    assert c1["recovering"] == "evacuating (failure 7): 1 of 2 evacuated" and c1["cluster"] == "OFFLINE (fenced)"
    assert c2["nova"] is None and "does not answer" in c2["nova_error"] and c2["recovering"] == ""
    assert [r["node"] for r in section["recoveries"]] == ["c2", "c1"]  # oldest first
    text = view.render(section)
    assert "c1: OFFLINE (fenced); nova-compute down, enabled, forced down; recovering: evacuating" in text
    assert "c2 (Nova host nova-c2): online; Nova: nova-compute of nova-c2: Nova does not answer" in text
    assert "c2 failure 3: done" in text and "1 issued, 1 evacuated" in text


def test_no_evacuator_configured_lists_recoveries_only() -> None:
    section = view.compute_section({}, KEYS, {})
    assert section == {"computes": [], "recoveries": []}
    assert view.render(section) == "Recoveries:\n  none"


def test_list_command_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        store = MemoryStore()
        for key, value in values().items():
            await store.put(key, value)
        await _list(argparse.Namespace(json=True, nova=True), store, KEYS)
        doc = json.loads(capsys.readouterr().out)
        # The clouds.yaml is not on this machine: Nova is not asked, and the view says so.
        assert [c["node"] for c in doc["computes"]] == ["c1", "c2"] and doc["computes"][0]["nova"] is None
        assert doc["computes"][0]["cluster"].startswith("OFFLINE")
        await _list(argparse.Namespace(json=False, nova=False), store, KEYS)
        out = capsys.readouterr().out
        assert "Compute hosts:" in out and "Nova not asked" in out and "Recoveries:" in out

    asyncio.run(main())
