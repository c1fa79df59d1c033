"""Node attributes that a native resource class writes (not an OCF agent through crm_attribute)
reach the store after each recurring monitor: three in-process agents (test_agent_embedded's
harness) and a class registered for the test."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
from test_agent_embedded import Harness, run

from hakeeper.resources import base
from hakeeper.resources.base import ResourceAgent, known_classes
from hakeeper.resources.crm_attribute import attrs_dir, write_atomically
from hakeeper.resources.result import Result, Status
from hakeeper.spec import values


class AttrWriter(ResourceAgent):
    """A native class (no OCF agent, no crm_attribute) whose recurring monitor leaves a node
    attribute in the node's attribute directory, as the rabbitmq class leaves its cluster view."""

    def installed(self) -> str | None:
        return None

    def _flag(self) -> str:
        return os.path.join(self.state_dir, f"{self.rid}.running")

    async def start(self, timeout: float) -> Result:
        Path(self._flag()).touch()
        return Result(Status.SUCCESS, 0, "started")

    async def stop(self, timeout: float) -> Result:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._flag())
        return Result(Status.SUCCESS, 0, "stopped")

    async def monitor(self, timeout: float) -> Result:
        if not os.path.exists(self._flag()):
            return Result(Status.NOT_RUNNING, 7, "not running")
        if self.op_interval:  # the recurring monitor, not a probe: a fresh value each time
            os.makedirs(attrs_dir(self.state_dir), exist_ok=True)
            write_atomically(os.path.join(attrs_dir(self.state_dir), f"{self.rid}-seen"), str(time.monotonic_ns()))
        return Result(Status.SUCCESS, 0, "running")


def test_a_native_classs_monitor_attributes_reach_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node attribute that a native class's recurring monitor writes (rabbitmq's `<rid>-cluster`)
    reaches the store after each monitor, not only after the next action, as OCF agents' do."""
    known_classes()  # the built-in classes first: the registry loads them only while it is empty
    monkeypatch.setitem(base._CLASSES, "attrwriter", AttrWriter)  # the class is its own factory
    monkeypatch.setattr(values, "AGENT_CLASSES", (*values.AGENT_CLASSES, "attrwriter"))  # what specs may name
    spec = """
cluster: {name: t, stonith-enabled: false}
nodes: [{name: n1}, {name: n2}, {name: n3}]
resources:
  primitives:
    - id: seen
      agent: attrwriter:seen
      operations: [{name: monitor, interval: 300ms, timeout: 10s}]
"""

    async def body(h: Harness) -> None:
        async def on() -> str | None:
            nodes = (await h.where()).get("seen", [])
            return nodes[0] if len(nodes) == 1 else None

        node = await h.settled(spec, on)
        values: set[bytes] = set()

        async def two_values() -> bool:
            kv = await h.store.get(h.keys.attr_of(node, "seen-seen"))
            if kv is not None:
                values.add(kv.value)
            return len(values) >= 2  # published after one monitor and again after another

        await h.until(two_values, timeout=20)

    run(tmp_path, body)
