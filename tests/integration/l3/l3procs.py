"""What the l3 namespace tests share. The lab itself (network nodes running `hakeeper l3-agent`,
router80 with its client and instance, the embedded store, tearing down) lives in
hakeeper.l3.lab, which `hakeeper demo routers` uses too; here: the spec from seed 004's own files
by default, and a watcher of every state change."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from hakeeper.l3 import lab
from hakeeper.l3.lab import (  # noqa: F401 (re-exported: the tests import them from here)
    ADVERT,
    BOUND,
    R80,
    SRC,
    AgentNodes,
    env,
    remove_namespaces,
    router80_hosts,
    router80_yaml,
    stop,
    store_server,
    tcp,
    torn_down,
    two_node_settings,
    wait_for,
)
from hakeeper.l3.model import RouterSpec, Settings
from hakeeper.l3.neutron import read_neutron

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "l3"))
from seed004 import write_seed_files


def seed_settings(workdir: Path, **overrides: object) -> Settings:
    """Seed 004's own neutron.conf and l3_agent.ini sections, read as the importer reads them, with
    `overrides` (a setting the seed leaves at Neutron's default)."""
    conf, ini = write_seed_files(workdir)
    return read_neutron(str(conf), str(ini)).settings.model_copy(update=overrides)


def write_spec(workdir: Path, routers_yaml: str, settings: Settings | None = None) -> tuple[RouterSpec, Path]:
    """The routers with `settings`, or by default seed 004's own neutron.conf and l3_agent.ini
    sections, as the spec file `workdir/routers.yaml`."""
    if settings is None:
        conf, ini = write_seed_files(workdir)
        settings = read_neutron(str(conf), str(ini)).settings
    return lab.write_spec(workdir, routers_yaml, settings)


class StateWatcher:
    """Every change of any router's state on the given nodes, read from their state files every
    50 ms on a thread: (time, node, router, state)."""

    def __init__(self, nodes: AgentNodes, which: Callable[[], Iterable[str]]) -> None:
        self.nodes, self.which = nodes, which
        self.history: list[tuple[float, str, str, str]] = []
        self.passes = 0  # completed reads of every node
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start, and return after the first reading (the starting state, not a change)."""
        self.thread.start()
        wait_for(lambda: self.passes > 0, 30, "the watcher's first reading")

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def _run(self) -> None:
        last: dict[tuple[str, str], str] = {}
        while not self.done.is_set():
            for node in self.which():
                for rid, st in self.nodes.states(node).items():
                    if last.get((node, rid)) != st:
                        last[(node, rid)] = st
                        self.history.append((time.monotonic(), node, rid, st))
            self.passes += 1
            time.sleep(0.05)

    def changes(self, rid: str, since: float) -> list[tuple[float, str, str, str]]:
        return [h for h in self.history if h[2] == rid and h[0] > since]
