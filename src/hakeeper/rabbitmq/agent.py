"""hakeeper's native RabbitMQ resource class: `rabbitmq` (agent string `rabbitmq` or
`rabbitmq:cluster`), one clustered broker per node, run as a clone.

The node is `rabbit@<hakeeper node name>` (the short name must resolve on every node). Params:
  cookie      the Erlang cookie (required; the same on every node: the spec, thus the store, carries it)
  base_dir    the node's data: HOME with .erlang.cookie, mnesia/, log/, config (/var/lib/rabbitmq)
  user        the account rabbitmq-server runs as (rabbitmq)
  port        the AMQP port (5672)
  nodes       the hakeeper nodes of the RabbitMQ cluster, comma-separated (default: all the cluster's)
  force_boot_after  seconds a node waits for the nodes that ran when it stopped before the node that
              stopped last among the online ones force-boots (30)
  partition_handling  RabbitMQ's cluster_partition_handling (pause_minority)

start: the boot decision (decide.py) from this node's mnesia files, the peers' brokers and what the
store shows (who is online, each node's boot report, an attribute published at its probe); then
rabbitmq-server with per-node directories (and our own epmd, so stop can end it by pid), and for an
empty node only, stop_app / join_cluster / start_app. Never `reset`, never a wiped mnesia.
monitor: `rabbitmq-diagnostics check_running` and `check_local_alarms`, and the partitions of
`cluster_status`; "not running" only when our server process is gone.
stop: `rabbitmqctl stop <pidfile>` (waits for the process to exit), SIGKILL as the backstop, then
our epmd by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hakeeper.errors import InputError
from hakeeper.names import PathEscapeError, contained_path
from hakeeper.rabbitmq.decide import Action, Decision, Local, Peer, decide, parse_node_list
from hakeeper.rabbitmq.view import membership_summary
from hakeeper.resources import runner
from hakeeper.resources.base import AgentName, ResourceAgent, register_class
from hakeeper.resources.crm_attribute import attrs_dir, write_atomically
from hakeeper.resources.result import Result, Status

BIN = os.environ.get("HAKEEPER_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin")
EPMD_PORT = 4369
REPORT = "{rid}-boot"  # the boot report attribute
CLUSTER = "{rid}-cluster"  # what the broker reports of its cluster (membership_summary), at each monitor
SETTLE = 3.0  # seconds a founder waits for the other starters of its transition to show
BOOT_HOLD = 8.0  # seconds of a boot held up by peers before the start counts as done
CLI_WAIT = 30.0  # the most one CLI call of a start's boot wait may take


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat; None for a dead process or a zombie (it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields[19]


@dataclass(frozen=True)
class Tracked:
    """A process of ours: its pid and start time (a recycled pid is never taken for it)."""

    pid: int
    started: str

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started


def _accepts(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class RabbitAgent(ResourceAgent):
    # ----- configuration -----

    @property
    def me(self) -> str:
        return self.meta.get("on_node") or socket.gethostname().split(".")[0]

    @property
    def nodename(self) -> str:
        return f"rabbit@{self.me}"

    @property
    def base(self) -> str:
        return self.params.get("base_dir") or "/var/lib/rabbitmq"

    @property
    def user(self) -> str:
        return self.params.get("user") or "rabbitmq"

    @property
    def port(self) -> int:
        return int(self.params.get("port") or 5672)

    @property
    def mnesia_dir(self) -> str:
        return os.path.join(self.base, "mnesia", self.nodename)

    @property
    def pidfile(self) -> str:
        return os.path.join(self.base, "rabbitmq.pid")

    @property
    def joining_marker(self) -> str:
        return os.path.join(self.base, "hakeeper-joining")

    def _own(self, suffix: str) -> str:
        return contained_path(self.state_dir, f"{self.rid}.{suffix}")

    def installed(self) -> str | None:
        try:
            self._own("log")
        except PathEscapeError as exc:
            return f"resource id {self.rid!r} would put its files outside the state directory: {exc}"
        if not os.access(os.path.join(BIN, "rabbitmq-server"), os.X_OK):
            return f"{BIN}/rabbitmq-server not found (Debian package rabbitmq-server)"
        if not self.params.get("cookie"):
            return "the rabbitmq resource needs a `cookie` parameter (the same Erlang cookie on every node)"
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            return f"no user {self.user!r} to run rabbitmq-server as"
        for key in ("port", "force_boot_after"):
            try:
                float(self.params.get(key) or 1)
            except ValueError:
                return f"the rabbitmq resource's `{key}` must be a number, not {self.params[key][:20]!r}"
        return None

    def peers(self) -> list[str]:
        """The other hakeeper nodes of the RabbitMQ cluster."""
        listed = [n.strip() for n in self.params.get("nodes", "").split(",") if n.strip()]
        view = self._view()
        nodes = listed or [str(n) for n in view.get("nodes", [])]
        return [n for n in nodes if n != self.me]

    def _view(self) -> dict[str, Any]:
        """The agent's cluster view (pacemaker_cli's cluster-view.json): nodes, online, attrs."""
        try:
            with open(os.path.join(self.state_dir, "cluster-view.json"), encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    # ----- the edge: processes and CLI -----

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": self.base,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_MNESIA_BASE": os.path.join(self.base, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.base, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.base, "hakeeper-rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.base, "enabled_plugins"),
            "RABBITMQ_PID_FILE": self.pidfile,
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.base, "rabbitmq-env.conf"),
        }

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups", *argv]

    async def ctl(self, tool: str, *args: str, node: str | None = None, timeout: float = 15) -> runner.Completed:
        argv = self._as_user([os.path.join(BIN, tool), "-n", node or self.nodename, *args])
        return await runner.run(argv, timeout, env=self._env())

    def _tracked(self, what: str) -> Tracked | None:
        try:
            with open(self._own(what)) as f:
                pid, started = f.read().split()
            t = Tracked(int(pid), started)
        except (OSError, ValueError):
            return None
        return t if t.alive() else None

    def _spawn(self, what: str, argv: list[str]) -> Tracked | None:
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self._own("log"), "ab") as log:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._env(),
                                        start_new_session=True)
            except OSError:
                return None
        started = _start_time(proc.pid)
        if started is None:
            return None
        write_atomically(self._own(what), f"{proc.pid} {started}\n")
        # Our child: reaped here, so a dead broker never lingers as a zombie that looks alive.
        threading.Thread(target=proc.wait, daemon=True).start()
        return Tracked(proc.pid, started)

    def _prepare(self) -> None:
        """The node's directories, cookie and configuration (rewritten each start from the params)."""
        user = pwd.getpwnam(self.user)
        for d in (self.base, os.path.join(self.base, "mnesia"), os.path.join(self.base, "log")):
            os.makedirs(d, exist_ok=True)
            os.chown(d, user.pw_uid, user.pw_gid)
        cookie = os.path.join(self.base, ".erlang.cookie")
        with contextlib.suppress(FileNotFoundError):
            os.chmod(cookie, 0o600)
        files = {
            cookie: self.params["cookie"],
            os.path.join(self.base, "hakeeper-rabbitmq.conf"): (
                f"listeners.tcp.default = {self.port}\n"
                "loopback_users = none\n"
                "disk_free_limit.absolute = 50MB\n"
                f"cluster_partition_handling = {self.params.get('partition_handling') or 'pause_minority'}\n"
            ),
            os.path.join(self.base, "enabled_plugins"): "[].\n",
            os.path.join(self.base, "rabbitmq-env.conf"): "",
        }
        for path, text in files.items():
            write_atomically(path, text)
            os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(cookie, 0o400)

    def local_state(self) -> Local:
        """What this node's mnesia directory says (RabbitMQ's own files); InputError if unreadable."""
        joining = os.path.exists(self.joining_marker)
        if not os.path.exists(os.path.join(self.mnesia_dir, "schema.DAT")):
            return Local(has_data=False, joining=joining)
        members: list[str] = []
        running: list[str] = []
        for name, target in (("cluster_nodes.config", members), ("nodes_running_at_shutdown", running)):
            path = os.path.join(self.mnesia_dir, name)
            try:
                with open(path, encoding="utf-8") as f:
                    lists = parse_node_list(f.read(), path, name)
            except FileNotFoundError:
                continue
            target.extend(lists[0])
        return Local(True, frozenset(members), frozenset(running), joining)

    async def _peer(self, node: str, online: bool, report: str | None) -> Peer:
        has_data: bool | None = None
        rats: frozenset[str] = frozenset()
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            doc = json.loads(report) if report else None
            if isinstance(doc, dict):
                has_data = bool(doc["data"])
                rats = frozenset(str(n) for n in doc.get("running_at_shutdown", []))
        if not online or not await asyncio.to_thread(_accepts, node, self.port, 0.5):
            starting = online and await asyncio.to_thread(_accepts, node, EPMD_PORT, 0.5)
            return Peer(online, False, starting, frozenset(), has_data, rats)
        out = await self.ctl("rabbitmqctl", "cluster_status", "--formatter", "json", node=f"rabbit@{node}")
        try:
            status = json.loads(out.output[out.output.index("{"):]) if out.rc == 0 else None
        except ValueError:
            status = None
        if not isinstance(status, dict) or f"rabbit@{node}" not in status.get("running_nodes", []):
            return Peer(online, False, True, frozenset(), has_data, rats)
        members = frozenset(str(n) for n in [*status.get("disk_nodes", []), *status.get("ram_nodes", [])])
        return Peer(online, True, True, members, has_data, rats)

    async def gather(self) -> tuple[Local, dict[str, Peer]]:
        view = self._view()
        online = {str(n) for n in view.get("online", [])} if isinstance(view.get("online"), list) else set()
        attrs: dict[str, Any] = view["attrs"] if isinstance(view.get("attrs"), dict) else {}
        peers = self.peers()
        states = await asyncio.gather(
            *(self._peer(p, p in online, (attrs.get(p) or {}).get(REPORT.format(rid=self.rid))) for p in peers)
        )
        return self.local_state(), {f"rabbit@{p}": s for p, s in zip(peers, states, strict=True)}

    def _report(self) -> None:
        """Publish this node's boot report (data or not; who ran when it stopped) as an attribute."""
        try:
            local = self.local_state()
        except InputError:
            return
        doc = {"data": local.has_data, "running_at_shutdown": sorted(local.running_at_shutdown)}
        self._publish(REPORT.format(rid=self.rid), json.dumps(doc, sort_keys=True))

    # ----- actions -----

    async def start(self, timeout: float) -> Result:
        deadline = time.monotonic() + timeout - 2
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        running = self._tracked("server") is not None
        if running and (await self.ctl("rabbitmq-diagnostics", "-q", "check_running")).rc == 0:
            return Result(Status.SUCCESS, 0, "already running")
        for host in (self.me, *self.peers()):
            try:
                await asyncio.to_thread(socket.gethostbyname, host)
            except OSError:
                return Result(Status.NOT_CONFIGURED, 6, f"node name {host!r} does not resolve (rabbit@{host} needs it)")
        try:
            self._prepare()
        except (OSError, KeyError) as exc:
            return Result(Status.ERROR, 1, f"cannot prepare {self.base}: {exc}")
        # Our epmd first: peers see this node being started (decide.py founds among starters).
        await self._epmd()
        began = time.monotonic()
        force_after = float(self.params.get("force_boot_after") or 30)
        settled = False
        while True:
            try:
                local, peers = await self.gather()
            except InputError as exc:
                return Result(Status.NOT_CONFIGURED, 6, str(exc))
            decision = decide(self.nodename, local, peers, time.monotonic() - began, force_after)
            founding = decision.action is Action.BOOT and not local.has_data
            if founding and not settled:
                # Starts of one transition begin within moments of each other: let every starter's
                # epmd come up before the lowest name founds, so two never both do.
                settled = True
                await asyncio.sleep(SETTLE)
                continue
            if decision.action is not Action.WAIT:
                break
            if time.monotonic() > deadline - 5:
                return Result(Status.ERROR, 1, f"not started: {decision.reason}")
            await asyncio.sleep(1.0)
        if decision.action is Action.REFUSE:
            return Result(Status.NOT_CONFIGURED, 6, decision.reason)
        return await self._boot(decision, deadline)

    async def _boot(self, decision: Decision, deadline: float) -> Result:
        notes = [decision.reason]
        # The last boot decision, for whoever looks at this node (the event log keeps only the outcome).
        write_atomically(self._own("decision"), f"{decision.action.value}: {decision.reason}\n")
        if decision.action is Action.FORCE_BOOT:
            # Its own Erlang VM: up to CLI_WAIT (at load average 60 the default 15 s timed out).
            out = await self.ctl("rabbitmqctl", "force_boot",
                                 timeout=max(15.0, min(CLI_WAIT, deadline - time.monotonic())))
            if out.rc != 0:
                return Result(Status.ERROR, 1, f"force_boot: {out.output.strip()[-300:]}")
        if decision.action is Action.JOIN:
            # A standalone boot of an empty node, then the join: if we die in between, the marker
            # says its standalone data is ours to throw away (it never held anything).
            write_atomically(self.joining_marker, decision.target or "")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pidfile)
        server = self._spawn("server", self._as_user([os.path.join(BIN, "rabbitmq-server")]))
        if server is None:
            return Result(Status.ERROR, 1, "rabbitmq-server did not start")
        booted = await self._await_boot(server, decision, deadline)
        if booted is not None:
            return Result(Status.ERROR, 1, f"{'; '.join(notes)}; rabbitmq-server did not boot: {booted}")
        if os.path.exists(self._own("booting")):
            self._report()
            return Result(Status.SUCCESS, 0, f"{'; '.join(notes)}; booting, RabbitMQ waits for its peers")
        if decision.action is Action.JOIN and decision.target:
            for step in (("stop_app",), ("join_cluster", decision.target), ("start_app",)):
                out = await self.ctl("rabbitmqctl", *step, timeout=max(10.0, deadline - time.monotonic()))
                if out.rc != 0:
                    return Result(Status.ERROR, 1, f"{' '.join(step)}: {out.output.strip()[-400:]}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.joining_marker)
            notes.append(f"joined {decision.target}")
        self._report()
        return Result(Status.SUCCESS, 0, "; ".join(notes))

    async def _epmd(self) -> None:
        """Our own epmd (unless one runs here already), so stop ends it by pid."""
        if self._tracked("epmd") is None and not await asyncio.to_thread(_accepts, "127.0.0.1", EPMD_PORT, 0.3):
            self._spawn("epmd", self._as_user(["epmd"]))
            for _ in range(50):
                if await asyncio.to_thread(_accepts, "127.0.0.1", EPMD_PORT, 0.2):
                    break
                await asyncio.sleep(0.05)

    async def _await_boot(self, server: Tracked, decision: Decision, deadline: float) -> str | None:
        """Until the broker runs (None), or, for a node RabbitMQ holds waiting for peers that are
        not running yet, until its Erlang node answers: the start is done, the boot goes on (its
        peers' starts may be in the next transition, after this one). Else why not."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._own("booting"))
        began = time.monotonic()
        last = ""
        while time.monotonic() < deadline:
            if not server.alive():
                return f"rabbitmq-server exited: {last}"
            # Up to 30 s a call: at load average 60-85 the CLI's own Erlang VM took over 10 s to
            # start, so a 10 s bound failed every call and the boot never counted as done.
            each = max(5.0, min(CLI_WAIT, deadline - time.monotonic()))
            out = await self.ctl("rabbitmq-diagnostics", "-q", "check_running", timeout=each)
            if out.rc == 0:
                return None
            last = out.output.strip()[-300:]
            if decision.waiting_for and time.monotonic() - began > BOOT_HOLD:
                ping = await self.ctl("rabbitmq-diagnostics", "-q", "ping", timeout=each)
                if ping.rc == 0:
                    write_atomically(self._own("booting"), " ".join(decision.waiting_for))
                    return None
            await asyncio.sleep(0.5)
        return f"not running before the timeout: {last}"

    async def stop(self, timeout: float) -> Result:
        if self.installed() is not None and self._tracked("server") is None:
            return Result(Status.SUCCESS, 0, "not running")
        deadline = time.monotonic() + timeout - 1
        server = self._tracked("server")
        notes = []
        if server is not None:
            out = await self.ctl("rabbitmqctl", "stop", self.pidfile, timeout=max(2.0, deadline - time.monotonic() - 2))
            while server.alive() and time.monotonic() < deadline - 1:
                await asyncio.sleep(0.1)
            if server.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                notes.append(f"killed (rabbitmqctl stop: {out.output.strip()[-200:]})")
            else:
                notes.append("stopped")
        epmd = self._tracked("epmd")
        if epmd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(epmd.pid, signal.SIGTERM)
        for what in ("server", "epmd", "booting"):
            with contextlib.suppress(FileNotFoundError, PathEscapeError):
                os.unlink(self._own(what))
        self._report()
        return Result(Status.SUCCESS, 0, ", ".join(notes) or "not running")

    async def monitor(self, timeout: float) -> Result:
        reason = self.installed()
        if reason is not None:
            return Result(Status.NOT_CONFIGURED, 6, reason)
        if self._tracked("server") is None:
            self._report()  # the probe's: peers decide on it before any start
            return Result(Status.NOT_RUNNING, 7, "not running")
        # Two CLI calls (each starts an Erlang VM: on a loaded host they are what a monitor costs).
        # check_running decides whether the broker runs and gets most of the time; cluster_status
        # (alarms, partitions) gets what is left, and when it cannot answer in that time the
        # broker still counts as running: under load (seen here at load average 40) the VM start
        # alone took over 13 s, and a monitor failing on its own slowness restarted healthy brokers.
        deadline = time.monotonic() + timeout - 1
        each = max(3.0, timeout * 0.65)
        out = await self.ctl("rabbitmq-diagnostics", "-q", "check_running", timeout=each)
        booting = self._own("booting")
        # Started while its peers were down: RabbitMQ waits for them (and gives up by itself,
        # ending the process, after its own retries).
        if out.rc != 0 and os.path.exists(booting) and (
            await self.ctl("rabbitmq-diagnostics", "-q", "ping", timeout=each)
        ).rc == 0:
            return Result(Status.SUCCESS, 0, "booting: RabbitMQ waits for its peers")
        if out.rc != 0:
            return Result(Status.ERROR, 1, f"check_running: {out.output.strip()[-300:]}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(booting)
        # cluster_status carries what check_local_alarms reads (the alarms, per node) and the
        # partitions this node sees.
        left = deadline - time.monotonic()
        if left < 3:
            return Result(Status.SUCCESS, 0, "running (no time left for cluster_status this round)")
        out = await self.ctl("rabbitmqctl", "cluster_status", "--formatter", "json", timeout=left)
        if out.rc is None:
            return Result(Status.SUCCESS, 0, f"running; cluster_status did not answer within {left:.0f}s "
                          "(alarms and partitions unknown this round)")
        try:
            status = json.loads(out.output[out.output.index("{"):])
        except ValueError:
            return Result(Status.ERROR, 1, f"cluster_status: {out.output.strip()[-300:]}")
        self._publish(CLUSTER.format(rid=self.rid), membership_summary(status))
        return judge_status(self.nodename, status)

    def _publish(self, name: str, value: str) -> None:
        """A node attribute (the agent carries it to the store), rewritten only when it changes."""
        path = os.path.join(attrs_dir(self.state_dir), name)
        with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
            if f.read() == value:
                return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, value)


def judge_status(nodename: str, status: object) -> Result:
    """A running node's `cluster_status` (JSON): a local alarm or a partition is a failure."""
    if not isinstance(status, dict):
        return Result(Status.ERROR, 1, "cluster_status: not an object")
    alarms = [a for a in status.get("alarms") or [] if nodename in json.dumps(a)]
    if alarms:
        return Result(Status.ERROR, 1, f"local alarms: {json.dumps(alarms)[:300]}")
    partitions = status.get("partitions")
    if partitions:
        return Result(Status.ERROR, 1, f"partitioned: {json.dumps(partitions)[:300]}")
    running = status.get("running_nodes") or []
    return Result(Status.SUCCESS, 0, f"running; cluster running on {', '.join(map(str, running))}")


def make(rid: str, name: AgentName, params: Mapping[str, str], state_dir: str) -> ResourceAgent:
    """`rabbitmq` / `rabbitmq:cluster`: a clustered broker; `rabbitmq:single`: seed 002's
    active/passive broker on shared storage (single.py)."""
    if name.type == "single":
        from hakeeper.rabbitmq.single import SingleRabbitAgent

        return SingleRabbitAgent(rid, name, params, state_dir)
    return RabbitAgent(rid, name, params, state_dir)


def register() -> None:
    register_class("rabbitmq", make)
