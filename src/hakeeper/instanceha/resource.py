"""`instanceha:evacuator`: the evacuation engine as a primitive. The scheduler places it on one
node, so at most one engine runs, and moves it when that node is lost (Pacemaker's NovaEvacuate
plays this part). It is a process tracked by a pidfile: `hakeeper instanceha engine`.

Params:
  computes        hakeeper nodes that are compute hosts, comma-separated (required)
  clouds_yaml     the clouds.yaml with admin credentials (required); cloud: its entry (required)
  host_map        node:novahost;... where Nova's host name is not the node's
  reserved_hosts  Nova hosts kept disabled for recoveries; evacuations go only there if given
  only_ha         "true": evacuate only tagged instances or instances of HA flavors
  ha_tag          the instance tag that marks HA instances (HA); ha_flavor_key (hakeeper:ha)
  parallel        evacuate calls in flight at once (4); retries: attempts per instance (3)
  etcd / store / cluster   how the engine reaches the store (default: $HAKEEPER_ETCD,
                  $HAKEEPER_STORE, $HAKEEPER_CLUSTER of the agent)
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping

from hakeeper.resources.base import AgentName, ResourceAgent, register_class
from hakeeper.resources.process import ProcessAgent
from hakeeper.resources.result import Result, Status

REQUIRED = ("computes", "clouds_yaml", "cloud")


class EvacuatorAgent(ResourceAgent):
    def _process(self) -> ProcessAgent:
        """The engine's process, tracked by the process class's pidfile under this resource's id."""
        node = self.meta.get("on_node") or os.environ.get("HAKEEPER_NODE", "")
        argv = [
            sys.executable,
            "-m",
            "hakeeper",
            "instanceha",
            "engine",
            "--node",
            node,
            "--params",
            json.dumps(self.params),
        ]
        proc = ProcessAgent(
            self.rid, AgentName("process", None, "process"), {"command": shlex.join(argv)}, self.state_dir
        )
        proc.meta = self.meta
        return proc

    def installed(self) -> str | None:
        if self.name.type != "evacuator":
            known = "instanceha:evacuator and instanceha:nova-compute are"
            return f"instanceha:{self.name.type} is not a resource type ({known})"
        missing = [p for p in REQUIRED if not self.params.get(p)]
        if missing:
            return f"instanceha:evacuator needs the parameter(s) {', '.join(missing)}"
        try:
            import openstack  # noqa: F401
        except ImportError:
            return "openstacksdk is not installed (pip install openstacksdk)"
        return self._process().installed()

    async def start(self, timeout: float) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        return await self._process().start(timeout)

    async def stop(self, timeout: float) -> Result:
        return await self._process().stop(timeout)

    async def monitor(self, timeout: float) -> Result:
        return await self._process().monitor(timeout)


def make(rid: str, name: AgentName, params: Mapping[str, str], state_dir: str) -> ResourceAgent:
    if name.type == "nova-compute":  # seed 002's identity move (instanceha/novacompute_agent.py)
        from hakeeper.instanceha import novacompute_agent

        return novacompute_agent.make(rid, name, params, state_dir)
    return EvacuatorAgent(rid, name, params, state_dir)


def register() -> None:
    register_class("instanceha", make)
