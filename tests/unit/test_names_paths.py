"""The last defence where files are opened: the process and OCF agents refuse a resource id or an
agent name that would lead outside their directories, whatever the spec let through."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hakeeper.resources.base import make_agent
from hakeeper.resources.result import Status


def _files_outside(root: Path, state: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and state not in p.parents]


@pytest.mark.parametrize("rid", ["../../x", "../escaped", "sub/../../x", "/abs"])
def test_process_agent_refuses_an_id_that_leaves_the_state_directory(tmp_path: Path, rid: str) -> None:
    state = tmp_path / "a" / "b" / "state"
    if rid.startswith("/"):
        rid = str(tmp_path / "abs")  # an absolute id, kept inside the test's own directory
    agent = make_agent(rid, "process", {"command": "sleep 30"}, str(state))
    started = asyncio.run(agent.action("start", 5))
    assert started.status is Status.NOT_CONFIGURED
    assert "outside the state directory" in started.output
    assert asyncio.run(agent.action("monitor", 5)).status is Status.NOT_CONFIGURED
    # Nothing was started, so stopping has nothing to do (and must not fail into fencing).
    assert asyncio.run(agent.action("stop", 5)).status is Status.SUCCESS
    assert _files_outside(tmp_path, state) == []


def test_process_agent_refuses_a_planted_link(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "r1.log").symlink_to(tmp_path / "victim")
    agent = make_agent("r1", "process", {"command": "sleep 30"}, str(state))
    assert asyncio.run(agent.action("start", 5)).status is Status.NOT_CONFIGURED
    assert not (tmp_path / "victim").exists()


def test_process_agent_still_runs_a_safe_id(tmp_path: Path) -> None:
    agent = make_agent("web:0", "process", {"command": "sleep 30"}, str(tmp_path))
    try:
        assert asyncio.run(agent.action("start", 5)).status is Status.SUCCESS
        assert (tmp_path / "web:0.pid").is_file()
    finally:
        assert asyncio.run(agent.action("stop", 5)).status is Status.SUCCESS


@pytest.fixture
def ocf_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ocf"
    provider = root / "resource.d" / "test"
    provider.mkdir(parents=True)
    for name in ("Good", ".hidden"):
        (provider / name).write_text("#!/bin/sh\nexit 7\n")
        (provider / name).chmod(0o755)
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\ntouch " + str(tmp_path / "ran") + "\nexit 0\n")
    outside.chmod(0o755)
    (provider / "Linked").symlink_to(outside)
    (root / "resource.d" / "bin").symlink_to("/bin")
    monkeypatch.setenv("HAKEEPER_OCF_ROOT", str(root))
    return root


def test_ocf_agent_in_its_provider_directory_runs(ocf_root: Path, tmp_path: Path) -> None:
    agent = make_agent("r1", "ocf:test:Good", {}, str(tmp_path / "state"))
    assert agent.installed() is None
    assert asyncio.run(agent.action("monitor", 5)).status is Status.NOT_RUNNING


@pytest.mark.parametrize("agent_name", ["ocf:test:../../../outside.sh", "ocf:test:.hidden", "ocf:test:Linked",
                                        "ocf:bin:sh", "ocf:..:test", "ocf:test:/bin/true"])
def test_ocf_agent_outside_its_provider_directory_is_not_installed(ocf_root: Path, tmp_path: Path,
                                                                   agent_name: str) -> None:
    agent = make_agent("r1", agent_name, {}, str(tmp_path / "state"))
    reason = agent.installed()
    assert reason is not None and agent_name in reason
    assert asyncio.run(agent.action("start", 5)).status is Status.NOT_INSTALLED
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("rid", ["../../x", "../sbin/crm_attribute", "a/../../../b"])
def test_ocf_agent_refuses_an_id_that_would_lead_its_state_files_out(ocf_root: Path, tmp_path: Path,
                                                                      rid: str) -> None:
    agent = make_agent(rid, "ocf:test:Good", {}, str(tmp_path / "state"))
    reason = agent.installed()
    assert reason is not None and "outside the state directory" in reason
