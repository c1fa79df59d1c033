"""Init scripts and the classes that resolve to a service manager: `lsb:`, `service:`, `upstart:`.

- `lsb:NAME` runs `/etc/init.d/NAME start|stop|status` (`lsb:/PATH`: that script, as in
  Pacemaker). start and stop answer with the LSB exit codes, which are OCF's for 0-7; status
  has codes of its own (0 running, 1 dead with a pid file left, 2 dead with a lock file left,
  3 not running, 4 unknown) that are mapped as Pacemaker maps them: 1-3 are "not running"
  (nothing runs, so it is safe to start elsewhere), 4 a failure.
- `service:NAME` is the systemd unit where systemd is the service manager and has the unit, else
  the init script, as Pacemaker decides (Pacemaker would try an upstart job in between).
- `upstart:NAME`: upstart is gone from every supported distribution, so the job runs as the
  systemd unit or init script of the same name where one exists (with a warning, logged once),
  and is refused with what to do where none does.

The init script directory is /etc/init.d; HAKEEPER_INIT_D or the `init_d` argument points
elsewhere (tests write their own scripts). Scripts take no parameters: a primitive's params are
not passed to them, as in Pacemaker. Their output and that of the daemons they leave behind goes
to `RID.log` in the node's state directory, so a daemon that keeps its output open never holds
up the action.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from hakeeper.resources.base import AgentName, ResourceAgent, register_class, timed_out, track_dir
from hakeeper.resources.result import OCF_CODES, Result, Status
from hakeeper.resources.runner import Completed, run
from hakeeper.resources.systemd import SystemdAgent, systemd_running, unit_exists, unit_name

log = logging.getLogger(__name__)

INIT_D_ENV = "HAKEEPER_INIT_D"

# LSB status codes (LSB core specification, "Init Script Actions") and the two that Pacemaker
# reserves in the range the specification leaves to applications.
_STATUS: dict[int, tuple[Status, str]] = {
    0: (Status.SUCCESS, "running"),
    1: (Status.NOT_RUNNING, "dead, its pid file remains"),
    2: (Status.NOT_RUNNING, "dead, its lock file remains"),
    3: (Status.NOT_RUNNING, "not running"),
    4: (Status.ERROR, "status unknown"),
    150: (Status.NOT_INSTALLED, "not installed"),
    151: (Status.ERROR, "insufficient privilege"),
}


def init_dir() -> str:
    return os.environ.get(INIT_D_ENV) or "/etc/init.d"


def bad_script_name(name: str) -> str | None:
    """An init script is a file directly in the init directory, or (as Pacemaker allows) a script
    named by its absolute path, written plainly: a name never climbs out with `..`."""
    if os.path.isabs(name) and "\0" not in name and os.path.normpath(name) == name \
            and ".." not in name.split("/"):
        return None
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        return (f"{name!r} is not an init script name (a file name in the init directory, or an "
                f"absolute path without '..')")
    return None


def script_path(name: str, init_d: str) -> str:
    return name if os.path.isabs(name) else os.path.join(init_d, name)


def status_result(done: Completed) -> Result:
    """An LSB `status` exit code as a monitor result."""
    if done.timed_out:
        return timed_out(done)
    if done.rc is None:
        return Result(Status.UNDEFINED, None, done.output, done.duration)
    status, meaning = _STATUS.get(done.rc, (Status.UNDEFINED, "an exit code LSB does not define"))
    return Result(status, done.rc, done.output or meaning, done.duration)


def action_result(done: Completed) -> Result:
    """An LSB start/stop exit code: 0-7 mean what they mean for OCF; anything else is undefined
    (an 8 from an init script is not "promoted")."""
    if done.timed_out:
        return timed_out(done)
    if done.rc is None or done.rc > 7:
        return Result(Status.UNDEFINED, done.rc, done.output, done.duration)
    return Result(OCF_CODES[done.rc], done.rc, done.output, done.duration)


class LsbAgent(ResourceAgent):
    def __init__(self, rid: str, name: AgentName, params: Mapping[str, str], state_dir: str,
                 init_d: str | None = None) -> None:
        super().__init__(rid, name, params, state_dir)
        self.init_d = init_d or init_dir()

    @property
    def script(self) -> str:
        return script_path(self.name.type, self.init_d)

    def installed(self) -> str | None:
        bad = bad_script_name(self.name.type)
        if bad is not None:
            return bad
        if not os.path.isfile(self.script):
            return f"no init script {self.script}"
        if not os.access(self.script, os.X_OK):
            return f"init script {self.script} is not executable"
        return None

    async def _run(self, action: str, timeout: float) -> Completed | Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_INSTALLED, 5, reason)
        os.makedirs(self.state_dir, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        logfile = os.path.join(self.state_dir, f"{self.rid}.log")
        return await run([self.script, action], timeout, env=env, log=logfile, track=track_dir(self.state_dir, action))

    async def start(self, timeout: float) -> Result:
        done = await self._run("start", timeout)
        return done if isinstance(done, Result) else action_result(done)

    async def stop(self, timeout: float) -> Result:
        done = await self._run("stop", timeout)
        return done if isinstance(done, Result) else action_result(done)

    async def monitor(self, timeout: float) -> Result:
        done = await self._run("status", timeout)
        return done if isinstance(done, Result) else status_result(done)


def choose_backend(*, systemd_up: bool, has_unit: bool, has_script: bool) -> str | None:
    """What runs a `service:` (or mapped `upstart:`) resource: "systemd", "lsb", or None."""
    if systemd_up and has_unit:
        return "systemd"
    if has_script:
        return "lsb"
    return None


_warned: set[str] = set()  # the upstart mappings already logged by this process


class ServiceAgent(ResourceAgent):
    """`service:NAME`: delegates every action to the systemd unit or the init script."""

    def __init__(self, rid: str, name: AgentName, params: Mapping[str, str], state_dir: str,
                 init_d: str | None = None) -> None:
        super().__init__(rid, name, params, state_dir)
        self.init_d = init_d or init_dir()
        self._backends: dict[str, ResourceAgent] = {}

    def _missing(self, systemd_up: bool) -> str:
        unit = unit_name(self.name.type)
        manager = f"no systemd unit {unit}" if systemd_up else "systemd is not running"
        return f"{self.name}: {manager} and no init script {script_path(self.name.type, self.init_d)}"

    def backend(self) -> ResourceAgent | str:
        """The agent that runs this resource now, or why there is none. Decided again at every
        call: a service installed after the configuration was applied is found."""
        bad = bad_script_name(self.name.type)
        if bad is not None:
            return bad
        systemd_up = systemd_running()
        path = os.path.isabs(self.name.type)  # a script's path names no unit
        kind = choose_backend(systemd_up=systemd_up,
                              has_unit=systemd_up and not path and unit_exists(self.name.type),
                              has_script=os.path.isfile(script_path(self.name.type, self.init_d)))
        if kind is None:
            return self._missing(systemd_up)
        agent = self._backends.get(kind)
        if agent is None:
            target = AgentName(kind, None, self.name.type)
            agent = (SystemdAgent(self.rid, target, self.params, self.state_dir) if kind == "systemd"
                     else LsbAgent(self.rid, target, self.params, self.state_dir, self.init_d))
            self._backends[kind] = agent
            self._mapped(agent)
        return agent

    def _mapped(self, agent: ResourceAgent) -> None:
        """Called once per backend chosen (the upstart class warns here)."""

    def installed(self) -> str | None:
        agent = self.backend()
        return agent if isinstance(agent, str) else agent.installed()

    async def start(self, timeout: float) -> Result:
        agent = self.backend()
        return Result(Status.NOT_INSTALLED, 5, agent) if isinstance(agent, str) else await agent.start(timeout)

    async def stop(self, timeout: float) -> Result:
        agent = self.backend()
        return Result(Status.NOT_INSTALLED, 5, agent) if isinstance(agent, str) else await agent.stop(timeout)

    async def monitor(self, timeout: float) -> Result:
        agent = self.backend()
        return Result(Status.NOT_INSTALLED, 5, agent) if isinstance(agent, str) else await agent.monitor(timeout)


class UpstartAgent(ServiceAgent):
    """`upstart:NAME`, run as the systemd unit or init script of the same name."""

    def _missing(self, systemd_up: bool) -> str:
        unit = unit_name(self.name.type)
        script = script_path(self.name.type, self.init_d)
        manager = f"no systemd unit {unit}" if systemd_up else "systemd is not running"
        return (f"{self.name}: no upstart on this system; {manager} and no init script {script}; "
                f"install the service or change the primitive to systemd:{self.name.type} or "
                f"lsb:{self.name.type}")

    def _mapped(self, agent: ResourceAgent) -> None:
        target = f"{agent.name} ({agent.script})" if isinstance(agent, LsbAgent) else str(agent.name)
        message = f"{self.name}: no upstart on this system; running it as {target}"
        if message not in _warned:
            _warned.add(message)
            log.warning("%s", message)


def register() -> None:
    register_class("lsb", LsbAgent)
    register_class("service", ServiceAgent)
    register_class("upstart", UpstartAgent)
