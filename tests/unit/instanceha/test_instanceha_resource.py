"""The instanceha:evacuator primitive: registered, refuses missing params, runs and stops the engine."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from hakeeper.resources.base import make_agent
from hakeeper.resources.result import Status

PARAMS = {"computes": "c1", "clouds_yaml": "/nonexistent/clouds.yaml", "cloud": "x", "store": "/nonexistent.sock"}


def test_registered_and_checks_its_params() -> None:
    agent = make_agent("evacuator", "instanceha:evacuator", PARAMS, "/nonexistent")
    assert agent.installed() is None
    missing = make_agent("evacuator", "instanceha:evacuator", {"computes": "c1"}, "/nonexistent").installed()
    assert missing is not None and "clouds_yaml" in missing and "cloud" in missing
    other = make_agent("evacuator", "instanceha:other", PARAMS, "/nonexistent").installed()
    assert other is not None and "instanceha:evacuator" in other


def test_start_monitor_stop_the_engine_process(tmp_path: Path) -> None:
    async def main() -> None:
        agent = make_agent("evacuator", "instanceha:evacuator", PARAMS, str(tmp_path))
        agent.meta = {"on_node": "n1"}
        assert (await agent.monitor(5)).status == Status.NOT_RUNNING
        started = await agent.start(10)
        assert started.status == Status.SUCCESS, started.output
        pid = int((tmp_path / "evacuator.pid").read_text().split()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"engine" in argv and b"n1" in argv
        assert json.loads(argv[argv.index(b"--params") + 1]) == PARAMS
        # The store socket does not exist: the engine says so and keeps trying rather than exiting.
        log = tmp_path / "evacuator.log"
        deadline = time.monotonic() + 60
        while "store unavailable" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            await asyncio.sleep(0.1)
        assert (await agent.monitor(5)).status == Status.SUCCESS
        assert (await agent.stop(10)).status == Status.SUCCESS
        assert (await agent.monitor(5)).status == Status.NOT_RUNNING
        assert not os.path.exists(f"/proc/{pid}/cmdline") or b"engine" not in Path(f"/proc/{pid}/cmdline").read_bytes()

    asyncio.run(main())
