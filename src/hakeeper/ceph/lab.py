"""A real one-host Ceph 16 cluster in a network namespace, for tests and benchmarks.

One monitor (`a`), one manager (`x`) and three bluestore OSDs on large sparse files, all in the
namespace `hkce-<pid>.<n>-ceph` at 10.87.<subnet>.1 on a hakeeper.netlab bridge; other hosts
(controllers, computes) can be plugged into the same bridge with `add_host`, and the root namespace
is attached at 10.87.<subnet>.254, so the `ceph` CLI reaches the cluster from here as well. No cephadm and no
systemd: every daemon is a child of this process, run in the foreground and waited for.

API::

    with CephLab() as ceph:          # starts, waits for HEALTH_OK (raises, cleaned up, if not)
        ceph.conf_path               # the cluster's ceph.conf (daemons' sections included)
        ceph.admin_keyring           # client.admin's keyring
        ceph.client_conf()           # a ceph.conf for clients: fsid and mon_host only
        ceph.ceph("osd", "pool", "ls")           # CompletedProcess of `ceph ... --format json`
        ceph.json("health")                      # the parsed JSON of the same
        ceph.rbd("ls", "images", user="images", keyring=path)  # as a cephx user
        ceph.rados(...)                          # the rados CLI, same options
        host = ceph.add_host("ctl1")             # a namespace on the same network (10.87.<s>.10+)
        ceph.run_as(host, "glance", ["rbd", ...])  # a command in a host as a unix user
        ceph.started_in                          # seconds from start to HEALTH_OK

Everything the lab made (processes, namespaces, its work directory with the OSDs' block files)
is removed by close(), which __exit__ and a failed start both call. `keep_logs=DIR` copies the
daemons' logs there first, for reading after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hakeeper.netlab import Lab
from hakeeper.netlab.lab import Host, StartedOrClosed, kill_namespace_processes

PREFIX = "hkce"
OSD_COUNT = 3
BLOCK_SIZE = 10 * 1024**3  # sparse: bluestore allocates lazily, and a small device fills up and aborts

CEPH_CONF = """\
[global]
fsid = {fsid}
mon_host = [v2:{ip}:3300,v1:{ip}:6789]
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
auth_allow_insecure_global_id_reclaim = false
mon_data_avail_warn = 5
mon_data_avail_crit = 2
osd_crush_chooseleaf_type = 0
ms_bind_ipv4 = true
public_network = {net}

[mon]
mon_data = {d}/mon/$cluster-$id
keyring = {d}/mon/$cluster-$id/keyring
log_file = {d}/log/$name.log
admin_socket = {d}/run/$name.asok
mon_cluster_log_file = {d}/log/cluster.log

[mgr]
mgr_data = {d}/mgr/$cluster-$id
keyring = {d}/mgr/$cluster-$id/keyring
log_file = {d}/log/$name.log
admin_socket = {d}/run/$name.asok

[osd]
osd_data = {d}/osd/$cluster-$id
keyring = {d}/osd/$cluster-$id/keyring
log_file = {d}/log/$name.log
admin_socket = {d}/run/$name.asok
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = {block}
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
osd_memory_target = 268435456
"""


class CephLabError(RuntimeError):
    pass


def free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    for n in range(256):
        if f" 10.87.{n}." not in used:
            return n
    raise CephLabError("every 10.87.<n>.0/24 is in use")


class CephLab(StartedOrClosed):
    def __init__(self, subnet: int | None = None, workdir: str | None = None, keep_logs: str | None = None,
                 timeout: float = 180) -> None:
        # Two labs at once (the Ceph and the backup suites, a benchmark) must not share the root
        # namespace's address: by default the first 10.87.<n>.0/24 not on any root interface.
        self.subnet = free_subnet() if subnet is None else subnet
        self.ip = f"10.87.{self.subnet}.1"
        self.keep_logs = keep_logs
        self.timeout = timeout
        # Short: admin socket paths must fit in a unix socket address (108 bytes).
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="hkce-", dir="/var/tmp")
        self.conf_path = os.path.join(self.workdir, "ceph.conf")
        self.admin_keyring = os.path.join(self.workdir, "ceph.client.admin.keyring")
        self.fsid = str(uuid.uuid4())
        self.lab = Lab(PREFIX)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.extra_hosts: dict[str, Host] = {}
        self.started_in = 0.0
        self.host: Host | None = None

    # ----- context manager -----

    # ----- commands -----

    def _client_args(self, user: str | None, keyring: str | None) -> list[str]:
        if user is None:
            return ["-c", self.conf_path, "-n", "client.admin", "--keyring", self.admin_keyring]
        return ["-c", self.conf_path, "--id", user, "--keyring", keyring or self.user_keyring(user)]

    def user_keyring(self, user: str) -> str:
        return os.path.join(self.workdir, f"ceph.client.{user}.keyring")

    def tool(self, tool: str, *args: str, user: str | None = None, keyring: str | None = None,
             stdin: str | None = None, timeout: float = 60, fmt: bool = True) -> subprocess.CompletedProcess[str]:
        """`tool` (ceph, rados, rbd) in the cluster's namespace as client.admin or as `user`."""
        assert self.host is not None
        argv = [tool, *self._client_args(user, keyring), *args]
        if fmt:
            argv += ["--format", "json"]
        return subprocess.run(self.host.cmd(argv), input=stdin, capture_output=True, text=True, timeout=timeout)

    def ceph(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.tool("ceph", *args, **kw)

    def rados(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.tool("rados", *args, **kw)

    def rbd(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.tool("rbd", *args, **kw)

    def json(self, *args: str, **kw: Any) -> Any:
        """The parsed output of `ceph ARGS --format json` as admin; raises with stderr if it failed."""
        out = self.ceph(*args, **kw)
        if out.returncode != 0:
            raise CephLabError(f"ceph {' '.join(args)}: {out.stderr.strip()[-500:]}")
        return json.loads(out.stdout) if out.stdout.strip() else None

    def check(self, *args: str, **kw: Any) -> str:
        out = self.ceph(*args, fmt=False, **kw)
        if out.returncode != 0:
            raise CephLabError(f"ceph {' '.join(args)}: {out.stderr.strip()[-500:]}")
        return out.stdout

    def client_conf(self) -> str:
        """What a client host's /etc/ceph/ceph.conf needs: the cluster's id and its monitor."""
        return f"[global]\nfsid = {self.fsid}\nmon_host = [v2:{self.ip}:3300,v1:{self.ip}:6789]\n"

    def add_host(self, name: str) -> Host:
        """A namespace on the cluster's network (10.87.<subnet>.10 and up) that reaches the monitor."""
        address = f"10.87.{self.subnet}.{10 + len(self.extra_hosts)}/24"
        host = self.lab.host(name, {"eth0": [address]})
        self.extra_hosts[name] = host
        return host

    @staticmethod
    def run_as(host: Host, user: str, argv: Sequence[str], timeout: float = 60,
               env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`argv` inside `host` as the unix user `user` (and its groups), as a service would run it."""
        gid = str(pwd.getpwnam(user).pw_gid)  # its primary group (nobody's is nogroup)
        cmd = host.cmd(["setpriv", "--reuid", user, "--regid", gid, "--init-groups", "--", *argv])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None)

    # ----- start -----

    def start(self) -> None:
        began = time.monotonic()
        for d in ("mon", "mgr", "osd", "log", "run"):
            os.makedirs(os.path.join(self.workdir, d), exist_ok=True)
        os.chmod(self.workdir, 0o755)  # service users on other hosts read ceph.conf from here in tests
        Path(self.conf_path).write_text(CEPH_CONF.format(
            fsid=self.fsid, ip=self.ip, net=f"10.87.{self.subnet}.0/24", d=self.workdir, block=BLOCK_SIZE))
        os.chmod(self.conf_path, 0o644)
        self.lab.start()
        # The test or tool itself (hakeeper as the admin) reaches the monitor from the root namespace.
        self.lab.attach_root(f"10.87.{self.subnet}.254/24")
        self.host = self.lab.host("ceph", {"eth0": [f"{self.ip}/24"]})
        self._make_mon()
        self._spawn("mon.a", ["ceph-mon", "-c", self.conf_path, "-i", "a", "-f"])
        self._wait(self._mon_answers, "the monitor to answer")
        self._make_mgr()
        self._spawn("mgr.x", ["ceph-mgr", "-c", self.conf_path, "-i", "x", "-f"])
        for _ in range(OSD_COUNT):
            self._make_osd()
        self.wait_healthy()
        self.started_in = time.monotonic() - began

    def _mon_answers(self) -> bool:
        try:
            return self.ceph("mon", "stat").returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """A setup step inside the cluster's namespace (mkfs checks public_network against its addresses)."""
        assert self.host is not None
        out = subprocess.run(self.host.cmd(argv), input=stdin, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise CephLabError(f"{' '.join(argv[:3])}: {out.stderr.strip()[-800:]}")
        return out.stdout

    def _make_mon(self) -> None:
        d = self.workdir
        mon_keyring = os.path.join(d, "mon.keyring")
        self._run(["ceph-authtool", "--create-keyring", mon_keyring, "--gen-key", "-n", "mon.",
                   "--cap", "mon", "allow *"])
        self._run(["ceph-authtool", "--create-keyring", self.admin_keyring, "--gen-key", "-n", "client.admin",
                   "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *",
                   "--cap", "mds", "allow *"])
        self._run(["ceph-authtool", mon_keyring, "--import-keyring", self.admin_keyring])
        monmap = os.path.join(d, "monmap")
        self._run(["monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                   f"[v2:{self.ip}:3300,v1:{self.ip}:6789]", monmap])
        self._run(["ceph-mon", "-c", self.conf_path, "--mkfs", "-i", "a", "--monmap", monmap,
                   "--keyring", mon_keyring])

    def _make_mgr(self) -> None:
        mgr_dir = os.path.join(self.workdir, "mgr", "ceph-x")
        os.makedirs(mgr_dir, exist_ok=True)
        out = self.ceph("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *",
                        "mds", "allow *", fmt=False)
        if out.returncode != 0:
            raise CephLabError(f"creating mgr.x: {out.stderr.strip()}")
        Path(mgr_dir, "keyring").write_text(out.stdout)

    def _make_osd(self) -> None:
        osd_uuid = str(uuid.uuid4())
        secret = self._run(["ceph-authtool", "--gen-print-key"]).strip()
        out = self.ceph("osd", "new", osd_uuid, "-i", "-", stdin=json.dumps({"cephx_secret": secret}), fmt=False)
        if out.returncode != 0:
            raise CephLabError(f"ceph osd new: {out.stderr.strip()}")
        osd_id = out.stdout.strip()
        osd_dir = os.path.join(self.workdir, "osd", f"ceph-{osd_id}")
        os.makedirs(osd_dir, exist_ok=True)
        self._run(["ceph-authtool", "--create-keyring", os.path.join(osd_dir, "keyring"), "--name",
                   f"osd.{osd_id}", "--add-key", secret])
        self._run(["ceph-osd", "-c", self.conf_path, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid])
        self._spawn(f"osd.{osd_id}", ["ceph-osd", "-c", self.conf_path, "-i", osd_id, "-f"])

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        assert self.host is not None
        log = open(os.path.join(self.workdir, "log", f"{name}.out"), "ab")  # noqa: SIM115 (kept by the child)
        with log:
            self.procs[name] = self.host.spawn(argv, stdout=log, stderr=log, start_new_session=True)

    def _wait(self, ready: Any, what: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise CephLabError(f"waiting for {what}: {', '.join(dead)} exited (logs in {self.workdir}/log)")
            if time.monotonic() > deadline:
                raise CephLabError(f"timed out waiting for {what}")
            time.sleep(0.3)

    def health(self) -> str:
        try:
            out = self.ceph("health", timeout=60)
        except subprocess.TimeoutExpired:  # a loaded machine: not an answer yet
            return "UNREACHABLE"
        if out.returncode != 0 or not out.stdout.strip():
            return "UNREACHABLE"
        return str(json.loads(out.stdout).get("status", "UNKNOWN"))

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Until HEALTH_OK with every OSD up and in and a manager active."""
        def ready() -> bool:
            if self.health() != "HEALTH_OK":
                return False
            try:
                stat = self.json("osd", "stat")
                mgr = self.json("mgr", "stat")
            except (CephLabError, subprocess.TimeoutExpired):
                return False
            return bool(stat["num_up_osds"] == stat["num_in_osds"] == OSD_COUNT and mgr.get("available"))
        self._wait(ready, "HEALTH_OK", timeout)

    # ----- stop -----

    def close(self) -> None:
        if self.keep_logs:
            with contextlib.suppress(OSError):
                shutil.copytree(os.path.join(self.workdir, "log"), self.keep_logs, dirs_exist_ok=True)
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self.procs.clear()
        if self.host is not None:
            kill_namespace_processes(self.host.ns)
        self.lab.close()
        self.extra_hosts.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
