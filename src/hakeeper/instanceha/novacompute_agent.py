"""`instanceha:nova-compute`: a nova-compute process with a fixed Nova host identity, what
Pacemaker's `ocf:openstack:nova-compute` did for seed 002 (docs/instance-ha.md, "Seed 002's
identity move"). The decisions are in novacompute.py; this is the shell around the process.

Params:
  host               the Nova host identity (default: host= of the config files, last one wins)
  config             nova.conf (/etc/nova/nova.conf); additional_config: more files, read after it
  state_path         Nova's state_path, on storage every node sees (default: the files', else
                     /var/lib/nova); its compute_id is the node identity Nova checks
  node_uuid          pin the node identity: written into state_path/compute_id where missing,
                     a start refused where that file holds another one
  binary             nova-compute (a path, or found on $PATH); additional_parameters: more argv
  clouds_yaml, cloud with both, start waits until Nova sees the service up and the monitor
                     fails a process Nova has seen down for longer than up_grace (120 s)

The process is tracked by the process class's pidfile under the resource id; hakeeper writes
`<state_dir>/<rid>.nova.conf` (the identity and state_path) and passes it last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from hakeeper.instanceha import novacompute as nc
from hakeeper.resources.base import AgentName, ResourceAgent
from hakeeper.resources.process import ProcessAgent
from hakeeper.resources.result import Result, Status

# One openstacksdk client per clouds.yaml entry for the agent's life: building one costs seconds.
_NOVA_CLIENTS: dict[tuple[str, str], object] = {}


class NovaComputeAgent(ResourceAgent):
    def _read_configs(self) -> list[str]:
        texts = []
        for path in nc.config_files(self.params):
            try:
                texts.append(Path(path).read_text(errors="replace"))
            except OSError:
                texts.append("")  # installed() names the missing file
        return texts

    def _settings(self) -> nc.Settings:
        return nc.settings(self.params, self._read_configs())

    def _overlay_path(self) -> str:
        return os.path.join(self.state_dir, f"{self.rid}.nova.conf")

    def _process(self, s: nc.Settings | None = None) -> ProcessAgent:
        # Stop and monitor go by the pidfile alone: they need no command line.
        command = shlex.join(nc.argv(s, self._overlay_path())) if s is not None else "true"
        proc = ProcessAgent(self.rid, AgentName("process", None, "process"), {"command": command}, self.state_dir)
        proc.meta = self.meta
        return proc

    def installed(self) -> str | None:
        if self.name.type != "nova-compute":
            return f"instanceha:{self.name.type} is not a resource type"
        unknown = sorted(set(self.params) - nc.KNOWN_PARAMS)
        if unknown:
            return f"instanceha:nova-compute has no parameter(s) {', '.join(unknown)}"
        missing = [f for f in nc.config_files(self.params) if not os.path.isfile(f)]
        if missing:
            return f"config file(s) not found: {', '.join(missing)}"
        try:
            s = self._settings()
        except nc.SettingsError as exc:
            return str(exc)
        if shutil.which(s.binary) is None:
            return f"{s.binary} is not installed here (not found or not executable)"
        return None

    def _identity(self, s: nc.Settings) -> nc.Identity:
        try:
            text: str | None = Path(s.state_path, nc.IDENTITY_FILE).read_text()
        except FileNotFoundError:
            text = None
        except OSError as exc:
            return nc.Identity("refuse", None, f"{s.state_path}/{nc.IDENTITY_FILE}: {exc.strerror}")
        return nc.judge_identity(text, s.node_uuid)

    async def start(self, timeout: float) -> Result:
        began = time.monotonic()
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        s = self._settings()
        proc = self._process(s)
        if (await proc.monitor(timeout)).status == Status.SUCCESS:
            return await self.monitor(timeout)
        identity = self._identity(s)
        if identity.action == "refuse":
            return Result(Status.NOT_CONFIGURED, 6, identity.reason)
        if not os.path.isdir(s.state_path):
            why = f"state_path {s.state_path} is not a directory (shared storage not mounted?)"
            return Result(Status.NOT_CONFIGURED, 6, why)
        if identity.action == "write" and identity.node_uuid is not None:
            _write_atomically(Path(s.state_path, nc.IDENTITY_FILE), identity.node_uuid + "\n")
        os.makedirs(self.state_dir, exist_ok=True)
        _write_atomically(Path(self._overlay_path()), nc.overlay(s))
        started = await proc.start(timeout)
        if started.status != Status.SUCCESS:
            return started
        # Up when Nova has this process's report (when we may ask Nova), else when the process has
        # survived its first seconds: a nova-compute refusing its identity exits during its start.
        view = nc.NovaView(error="not asked yet")
        while time.monotonic() - began < timeout - 1:
            if (await proc.monitor(timeout)).status != Status.SUCCESS:
                return Result(Status.ERROR, 1, f"nova-compute exited during its start ({identity.reason}); "
                                               f"log {proc.logfile}: {_tail(proc.logfile)}")
            if s.clouds_yaml is None:
                if time.monotonic() - began > min(3.0, timeout / 3):
                    return Result(Status.SUCCESS, 0, f"started as {s.host} ({identity.reason})")
            else:
                view = await self._nova_view(s, timeout)
                if nc.start_done(view, _started_at(proc.pidfile)):
                    return Result(Status.SUCCESS, 0, f"started as {s.host}, Nova has its report ({identity.reason})")
            await asyncio.sleep(0.5)
        # Out of time: the monitor's rule without its grace. Nova not answering is no failure of
        # nova-compute (it works without Nova's API); Nova answering without its report is.
        verdict, text = nc.judge_monitor(True, view, _started_at(proc.pidfile), time.time(), grace=0)
        if verdict == "running":
            return Result(Status.SUCCESS, 0, f"started as {s.host}: {text}")
        return Result(Status.TIMEOUT, None, f"nova-compute {s.host}: {text} (start timeout {timeout:g} s)")

    async def stop(self, timeout: float) -> Result:
        return await self._process().stop(timeout)

    async def monitor(self, timeout: float) -> Result:
        proc = self._process()
        alive = (await proc.monitor(timeout)).status == Status.SUCCESS
        try:
            s = self._settings()
        except nc.SettingsError as exc:
            return Result(Status.NOT_RUNNING, 7, "not running") if not alive else Result(Status.ERROR, 1, str(exc))
        view = await self._nova_view(s, timeout) if alive and s.clouds_yaml is not None else None
        verdict, text = nc.judge_monitor(alive, view, _started_at(proc.pidfile), time.time(), s.up_grace)
        code = {"running": (Status.SUCCESS, 0), "not-running": (Status.NOT_RUNNING, 7), "failed": (Status.ERROR, 1)}
        status, rc = code[verdict]
        return Result(status, rc, text)

    async def _nova_view(self, s: nc.Settings, timeout: float) -> nc.NovaView:
        assert s.clouds_yaml is not None and s.cloud is not None
        clouds_yaml, cloud, host = s.clouds_yaml, s.cloud, s.host

        def ask() -> nc.NovaView:
            from hakeeper.instanceha.nova import Nova, NovaError, nova_time

            try:
                client = _NOVA_CLIENTS.get((clouds_yaml, cloud))
                if client is None:
                    client = _NOVA_CLIENTS.setdefault((clouds_yaml, cloud), Nova.from_clouds_yaml(
                        clouds_yaml, cloud, timeout=max(1.0, min(10.0, timeout / 2))))
                assert isinstance(client, Nova)
                service = client.service(host)
            except NovaError as exc:
                return nc.NovaView(error=exc.reason)
            return nc.NovaView(state=service.state, forced_down=service.forced_down,
                               updated_at=nova_time(service.updated_at))

        try:
            # openstacksdk blocks: in a thread, so the agent's loop goes on meanwhile.
            return await asyncio.wait_for(asyncio.to_thread(ask), max(1.0, timeout - 1))
        except TimeoutError:
            return nc.NovaView(error="Nova did not answer in time")


def _started_at(pidfile: str) -> float:
    """When the process began: the process class writes its pidfile right after the fork."""
    try:
        return os.stat(pidfile).st_mtime
    except OSError:
        return time.time()


def _tail(path: str, chars: int = 600) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text(errors="replace")[-chars:].strip()
    return "(no log)"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.hakeeper")
    tmp.write_text(text)
    os.replace(tmp, path)


def make(rid: str, name: AgentName, params: Mapping[str, str], state_dir: str) -> ResourceAgent:
    return NovaComputeAgent(rid, name, params, state_dir)
