"""OCF resource agents: the real scripts under /usr/lib/ocf/resource.d/PROVIDER/TYPE.

The script gets the action as its argument and everything else from the environment: OCF_ROOT,
OCF_RA_VERSION_*, OCF_RESOURCE_INSTANCE/TYPE/PROVIDER, one OCF_RESKEY_name per parameter and
OCF_RESKEY_CRM_meta_timeout and _interval (milliseconds), and the CRM_meta_* facts the node agent
supplies (the node's name, clone instance and counts; for a notification, its CRM_meta_notify_*
facts). HA_RSCTMP and HA_VARRUN point into this
node's state directory so several nodes on one host (the demo) keep separate state files.
HA_SBIN_DIR points at hakeeper's crm_attribute/crm_master/crm_node (crm_attribute.py), so
promotable agents can set their promotion scores and read other nodes' attributes.

Names are checked where they become paths. The provider and type must each be one directory entry
(no '/', never '.' or '..', no leading '.' or '-'), and the script they name must resolve, links
followed, to an executable file inside resource.d/PROVIDER: `ocf:heartbeat:../../../bin/sh` or a
link planted in the directory cannot run anything outside it. Agents name their state files after
the resource (`$HA_RSCTMP/Dummy-$OCF_RESOURCE_INSTANCE.state`), so a resource id that would lead
such a file out of the state directory fails the action too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from hakeeper.names import PathEscapeError, agent_component_problem, contained_path, is_inside
from hakeeper.resources.base import AgentName, ResourceAgent, register_class, timed_out, track_dir
from hakeeper.resources.crm_attribute import attrs_dir, attrs_view, install_shims
from hakeeper.resources.result import Result
from hakeeper.resources.runner import run


def ocf_root() -> str:
    """Where the agents live; HAKEEPER_OCF_ROOT points elsewhere (tests' own agents)."""
    return os.environ.get("HAKEEPER_OCF_ROOT", "/usr/lib/ocf")


class OcfAgent(ResourceAgent):
    def __init__(self, rid: str, name: AgentName, params: Mapping[str, str], state_dir: str) -> None:
        super().__init__(rid, name, params, state_dir)
        self.root = ocf_root()
        self.provider_dir = os.path.join(self.root, "resource.d", name.provider or "heartbeat")
        self.path = os.path.join(self.provider_dir, name.type)
        self._sbin: str | None = None

    def installed(self) -> str | None:
        for what, part in (("provider", self.name.provider or "heartbeat"), ("type", self.name.type)):
            problem = agent_component_problem(part)
            if problem is not None:
                return f"OCF agent {self.name}: the {what} {problem}"
        if not os.access(self.path, os.X_OK):
            return f"OCF agent {self.name} not found at {self.path}"
        # The provider directory must itself resolve inside resource.d, or a provider linked to
        # /bin would make every program there an "agent".
        resource_d = os.path.dirname(self.provider_dir)
        if (not is_inside(self.path, self.provider_dir) or not is_inside(self.provider_dir, resource_d)
                or not os.path.isfile(self.path)):
            return (f"OCF agent {self.name}: {self.path} resolves to {os.path.realpath(self.path)}, "
                    f"not a file inside {self.provider_dir}")
        return self._unsafe_instance()

    def _unsafe_instance(self) -> str | None:
        """Why files named after this resource would leave the state directory, or None."""
        try:
            for base in ("rsctmp", "varrun"):
                where = os.path.join(self.state_dir, base)
                contained_path(where, self.rid)
                contained_path(where, f"{self.name.type}-{self.rid}")
            contained_path(self.state_dir, f"{self.rid}.ocf.log")  # the actions' output
        except PathEscapeError as exc:
            return f"resource id {self.rid!r} would put the agent's files outside the state directory: {exc}"
        return None

    def env(self, action: str, timeout: float, extra_meta: Mapping[str, str] | None = None) -> dict[str, str]:
        tmp = os.path.join(self.state_dir, "rsctmp")
        varrun = os.path.join(self.state_dir, "varrun")
        os.makedirs(tmp, exist_ok=True)
        os.makedirs(varrun, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "OCF_ROOT": self.root,
            "OCF_FUNCTIONS_DIR": os.path.join(self.root, "lib", "heartbeat"),
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": self.rid,
            "OCF_RESOURCE_TYPE": self.name.type,
            "OCF_RESOURCE_PROVIDER": self.name.provider or "",
            "OCF_RESKEY_CRM_meta_timeout": str(int(timeout * 1000)),
            "OCF_RESKEY_CRM_meta_interval": str(int(self.op_interval * 1000)),
            "HA_RSCTMP": tmp,
            "HA_VARRUN": varrun + "/",
            "HA_SBIN_DIR": self._shims(),
            "HAKEEPER_ATTRS_DIR": attrs_dir(self.state_dir),
            "HAKEEPER_ATTRS_VIEW": attrs_view(self.state_dir),
            "__OCF_ACTION": action,
            # Pacemaker's executor gives these; agents call crm_promotion/crm_mon through them
            # (feature set >= 3.10: crm_attribute -p, not crm_master), `$SHELL -c` with bash
            # process substitution (crm_mon_no_validation), `which pacemakerd`/`crm_node -n` on PATH,
            # and clients reading ~/.my.cnf (galera's status queries).
            "OCF_RESKEY_crm_feature_set": "3.16.2",
            "SHELL": "/bin/bash",
            "HOME": os.environ.get("HOME", "/root"),
        }
        env["PATH"] = self._shims() + os.pathsep + env["PATH"]
        if "on_node" in self.meta:
            env["HAKEEPER_NODE"] = self.meta["on_node"]
        env.update({f"OCF_RESKEY_CRM_meta_{k}": v for k, v in {**self.meta, **(extra_meta or {})}.items()})
        env.update({f"OCF_RESKEY_{k}": str(v) for k, v in self.params.items()})
        return env

    def _shims(self) -> str:
        if self._sbin is None:
            self._sbin = install_shims(os.path.join(self.state_dir, "sbin"))
        return self._sbin

    async def _run(self, action: str, timeout: float, extra_meta: Mapping[str, str] | None = None) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result.from_ocf(5, reason)
        # Output through a file, not a pipe: an agent that starts a daemon in the background
        # (galera's and mysql's mysqld_safe &) leaves it holding the pipe, and the action would
        # only end at its timeout. One file per resource: a monitor of another resource running at
        # the same time must not lend its output to this action's result. (installed() has
        # checked that the id stays inside the state directory.)
        os.makedirs(self.state_dir, exist_ok=True)
        log = os.path.join(self.state_dir, f"{self.rid}.ocf.log")
        with contextlib.suppress(OSError):
            if os.path.getsize(log) > 1 << 20:
                os.truncate(log, 0)
        env = self.env(action, timeout, extra_meta)
        done = await run([self.path, action], timeout, env=env, log=log, track=track_dir(self.state_dir, action))
        if done.timed_out:
            return timed_out(done)
        return Result.from_ocf(done.rc, done.output, done.duration)

    async def start(self, timeout: float) -> Result:
        return await self._run("start", timeout)

    async def stop(self, timeout: float) -> Result:
        return await self._run("stop", timeout)

    async def monitor(self, timeout: float) -> Result:
        return await self._run("monitor", timeout)

    async def promote(self, timeout: float) -> Result:
        return await self._run("promote", timeout)

    async def demote(self, timeout: float) -> Result:
        return await self._run("demote", timeout)

    async def notify(self, timeout: float, facts: Mapping[str, str]) -> Result:
        """The `notify` action of a clone with notify=true: `facts` are the CRM_meta_notify_*
        values of this notification (placement/notify.py), given for this call only (a monitor
        running meanwhile does not see them)."""
        return await self._run("notify", timeout, facts)

    async def meta_data(self) -> str:
        if self.installed() is not None:
            return ""
        done = await run([self.path, "meta-data"], 10, env=self.env("meta-data", 10))
        return done.output if done.rc == 0 else ""


def register() -> None:
    register_class("ocf", OcfAgent)
