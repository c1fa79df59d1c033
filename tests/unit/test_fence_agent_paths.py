"""Fence agents: what a `stonith:` name may run, and parameters that cannot smuggle options."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from hakeeper.resources.fencing import FenceAgent, fence_agent_problem, stdin_problem


def _script(path: Path, body: str = "exit 0") -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_relative_names_cannot_leave_usr_sbin() -> None:
    for name in ("../bin/sh", "../../tmp/x", "./fence_x", "", "a//b"):
        assert fence_agent_problem(name) is not None, name


def test_an_absolute_script_must_be_an_executable_file(tmp_path: Path) -> None:
    assert fence_agent_problem(str(_script(tmp_path / "fence_ok"))) is None
    (tmp_path / "fence_plain").write_text("#!/bin/sh\n")
    assert "not found" in (fence_agent_problem(str(tmp_path / "fence_plain")) or "")
    os.mkdir(tmp_path / "fence_dir")
    assert "not found" in (fence_agent_problem(str(tmp_path / "fence_dir")) or "")
    assert fence_agent_problem(str(tmp_path / "fence_..")) is not None


def test_a_line_break_in_a_parameter_is_refused_before_the_agent_runs(tmp_path: Path) -> None:
    seen = tmp_path / "stdin"
    agent = _script(tmp_path / "fence_record", f"cat > {seen}")
    assert stdin_problem({"ipaddr": "10.0.0.1\naction=on"}) is not None
    assert stdin_problem({"a=b": "1"}) is not None
    device = FenceAgent(str(agent), {"ipaddr": "10.0.0.1\naction=on"})
    result = asyncio.run(device.fence("n1", 5.0))
    assert not result.ok and "one line" in result.output
    assert not seen.exists(), "the agent must not have run"
    # A clean parameter set reaches the agent as key=value lines, action last-but-one, plug last.
    ok = asyncio.run(FenceAgent(str(agent), {"ipaddr": "10.0.0.1"}).fence("n1", 5.0))
    assert ok.ok and seen.read_text() == "ipaddr=10.0.0.1\naction=off\nplug=n1\n"
