"""NovaLab: the controller and compute namespaces, their daemons, and the few calls tests need."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
import pymysql  # type: ignore[import-untyped]

from hakeeper.instanceha.novalab import config as cfg
from hakeeper.instanceha.novalab.services import (
    GUNICORN_LAUNCHER,
    VENVS,
    Daemon,
    LabError,
    http_answers,
    http_json,
    missing_install,
    run_checked,
    venv_bin,
    wait_until,
)
from hakeeper.netlab import Host, Lab
from hakeeper.netlab.lab import StartedOrClosed

if TYPE_CHECKING:
    import openstack.connection

PREFIX = "hknv"
CLOUD = "novalab"
# 2.74 is the first with "host" on boot; 2.68-2.94 evacuate to ACTIVE (2.95+ leaves servers SHUTOFF).
BOOT_MICROVERSION = "2.74"
EVACUATE_MICROVERSION = "2.68"
BOOT_ATTEMPTS = 4  # boots of one server refused "No valid host" before the lab gives up
FLAVOR = "novalab.tiny"
# What the lab's driver (nova_driver.py, running inside Nova) logs for each guest it boots again.
RESUMED_MARK = "hakeeper_fake: guest resumed"
IMAGE = "novalab-image"


@dataclass
class Compute:
    """A nova-compute process: the Nova host it claims (`identity`), the namespace it runs in."""

    identity: str
    namespace: str  # name of the lab host (compute-N) whose namespace runs it
    state_path: Path
    daemon: Daemon


class NovaLab(StartedOrClosed):
    """Real Nova services in namespaces; a context manager that removes everything it made."""

    def __init__(self, computes: int = 2, subnet: int | None = None, workdir: str | None = None,
                 keep_workdir: bool = False) -> None:
        why = missing_install()
        if why is not None:
            raise LabError(why)
        self.subnet = f"10.97.{free_subnet() if subnet is None else subnet}"
        self.compute_names = [f"compute-{i}" for i in range(1, computes + 1)]
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="novalab-"))
        self.keep_workdir = keep_workdir
        self.ctl = cfg.Controller(ip=f"{self.subnet}.1", workdir=str(self.workdir / "ctl"))
        self.net = Lab(PREFIX)
        self.hosts: dict[str, Host] = {}
        self.daemons: dict[str, Daemon] = {}
        self.computes: dict[str, Compute] = {}  # by identity
        self.node_ids: dict[str, str] = {}  # identity -> node UUID (its state_path/compute_id)
        self.clouds_yaml = self.workdir / "clouds.yaml"
        self.flavor_id = ""
        self.image_id = ""
        self.timings: dict[str, float] = {}

    # ----- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        t0 = time.monotonic()
        self.net.start()
        self.hosts["controller"] = self.net.host("controller", {"eth0": [f"{self.ctl.ip}/24"]})
        for i, name in enumerate(self.compute_names, start=11):
            self.hosts[name] = self.net.host(name, {"eth0": [f"{self.subnet}.{i}/24"]})
        self.net.attach_root(f"{self.subnet}.254/24")
        self._write_controller_files()
        self._start_database()
        self._start_rabbitmq()
        self._sync_databases()
        self.timings["databases"] = time.monotonic() - t0
        self._start_controller_services()
        for name in self.compute_names:
            self.start_compute(name)
        self._wait_apis()
        self._create_flavor_and_image()
        for name in self.compute_names:
            self.wait_compute(name, up=True)
        self.clouds_yaml.write_text(cfg.clouds_yaml(self.ctl, CLOUD, EVACUATE_MICROVERSION))
        self.timings["cold_start"] = time.monotonic() - t0

    def close(self) -> None:
        # nova-compute needs 10-15 s to stop on SIGTERM: every daemon is killed outright.
        for compute in self.computes.values():
            with contextlib.suppress(Exception):
                compute.daemon.kill()
        for daemon in self.daemons.values():
            with contextlib.suppress(Exception):
                daemon.kill()
        self.net.close()  # kills what is left in the namespaces (epmd, workers), deletes them
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ----- controller ------------------------------------------------------------------------
    def _dir(self, *parts: str) -> Path:
        path = self.workdir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _log(self, name: str) -> Path:
        return self._dir("logs") / f"{name}.log"

    def _write_controller_files(self) -> None:
        ctl = self.ctl
        for sub in ("mysql/data", "rabbitmq/mnesia", "rabbitmq/log", "nova/state/lock", "glance/images",
                    "glance/staging", "glance/tasks", "neutron/lock", "placement"):
            self._dir("ctl", *sub.split("/"))
        base = Path(ctl.workdir)
        (base / "mysql/my.cnf").write_text(cfg.my_cnf(ctl))
        (base / "rabbitmq/rabbitmq.conf").write_text(cfg.rabbit_conf(ctl))
        (base / "rabbitmq/enabled_plugins").write_text("[].\n")
        (base / "rabbitmq/rabbitmq-env.conf").write_text("")
        cookie = base / "rabbitmq/.erlang.cookie"
        cookie.write_text(uuid.uuid4().hex)
        cookie.chmod(0o400)
        (base / "nova/nova.conf").write_text(cfg.nova_controller_conf(ctl))
        (base / "nova/api-paste.ini").write_text(cfg.nova_api_paste())
        (base / "placement/placement.conf").write_text(cfg.placement_conf(ctl))
        (base / "glance/glance-api.conf").write_text(cfg.glance_conf(ctl))
        shutil.copy(VENVS / "glance/etc/glance/glance-api-paste.ini", base / "glance/glance-api-paste.ini")
        (base / "glance/policy.yaml").write_text(cfg.GLANCE_POLICY)
        paste = str(VENVS / "neutron/etc/neutron/api-paste.ini")
        (base / "neutron/neutron.conf").write_text(cfg.neutron_conf(ctl, paste))

    def _spawn(self, name: str, argv: list[str], host: str = "controller",
               env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(name, self.hosts[host], argv, self._log(name), env)
        self.daemons[name] = daemon
        return daemon

    def _start_database(self) -> None:
        cnf = f"{self.ctl.workdir}/mysql/my.cnf"
        run_checked(self.hosts["controller"], ["mariadb-install-db", f"--defaults-file={cnf}", "--user=root",
                                               "--skip-test-db", "--auth-root-authentication-method=normal"],
                    self._log("mariadb-install"))
        daemon = self._spawn("mariadb", ["mariadbd", f"--defaults-file={cnf}"])
        sock = f"{self.ctl.workdir}/mysql/mysqld.sock"

        def admin() -> bool:
            conn = pymysql.connect(unix_socket=sock, user="root", password="", connect_timeout=2)
            with conn, conn.cursor() as cur:
                for db in cfg.DATABASES:
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
                cur.execute("CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY %s", (cfg.DB_PASSWORD,))
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")
            return True

        wait_until(lambda: Path(sock).exists() and admin(), 180, daemon, "MariaDB accepting connections")

    def _rabbit_env(self) -> dict[str, str]:
        base = f"{self.ctl.workdir}/rabbitmq"
        return {"HOME": base, "RABBITMQ_NODENAME": "novalab@localhost", "RABBITMQ_MNESIA_BASE": f"{base}/mnesia",
                "RABBITMQ_LOG_BASE": f"{base}/log", "RABBITMQ_CONFIG_FILE": f"{base}/rabbitmq.conf",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{base}/enabled_plugins", "RABBITMQ_PID_FILE": f"{base}/pid",
                "RABBITMQ_CONF_ENV_FILE": f"{base}/rabbitmq-env.conf"}

    def _start_rabbitmq(self) -> None:
        # Default user in the config: no rabbitmqctl call is needed before services connect.
        conf = Path(self.ctl.workdir) / "rabbitmq/rabbitmq.conf"
        conf.write_text(conf.read_text() + f"default_user = {cfg.RABBIT_USER}\n"
                                           f"default_pass = {cfg.RABBIT_PASSWORD}\n")
        self._spawn("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self._rabbit_env())

    def _wait_rabbitmq(self) -> None:
        """Ready when the lab's user can open an AMQP connection (what every Nova service needs)."""
        params = pika.ConnectionParameters(
            host=self.ctl.ip, port=self.ctl.ports.rabbit, socket_timeout=3, connection_attempts=1,
            credentials=pika.PlainCredentials(cfg.RABBIT_USER, cfg.RABBIT_PASSWORD))

        def amqp() -> bool:
            try:
                pika.BlockingConnection(params).close()
            except pika.exceptions.AMQPError:
                return False
            return True

        wait_until(amqp, 180, self.daemons["rabbitmq"], "RabbitMQ accepting the lab's user")

    def _sync_databases(self) -> None:
        """The five schemas at once (each sync is a separate slow Python program)."""
        ctl_host = self.hosts["controller"]
        nova_conf = f"{self.ctl.workdir}/nova/nova.conf"
        manage = [venv_bin("nova", "nova-manage"), "--config-file", nova_conf]
        chains: dict[str, list[list[str]]] = {
            "nova": [[*manage, "api_db", "sync"],
                     [*manage, "cell_v2", "map_cell0", "--database_connection", self.ctl.db("nova_cell0")],
                     [*manage, "cell_v2", "create_cell", "--name", "cell1"],
                     [*manage, "db", "sync"]],
            "placement": [[venv_bin("nova", "placement-manage"), "--config-file",
                           f"{self.ctl.workdir}/placement/placement.conf", "db", "sync"]],
            "glance": [[venv_bin("glance", "glance-manage"), "--config-file",
                        f"{self.ctl.workdir}/glance/glance-api.conf", "db_sync"]],
            "neutron": [[venv_bin("neutron", "neutron-db-manage"), "--config-file",
                         f"{self.ctl.workdir}/neutron/neutron.conf", "upgrade", "heads"]],
        }
        errors: list[BaseException] = []

        def run_chain(name: str, commands: list[list[str]]) -> None:
            try:
                for argv in commands:
                    run_checked(ctl_host, argv, self._log(f"dbsync-{name}"))
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=run_chain, args=item, daemon=True) for item in chains.items()]
        for t in threads:
            t.start()
        self._wait_rabbitmq()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _gunicorn(self, name: str, venv: str, target: str, port: int, app_args: list[str],
                  env: dict[str, str]) -> None:
        argv = [venv_bin(venv, "python"), "-c", GUNICORN_LAUNCHER, target, f"{self.ctl.ip}:{port}", name, *app_args]
        self._spawn(name, argv, env=env)

    def _start_controller_services(self) -> None:
        base, ports = self.ctl.workdir, self.ctl.ports
        self._gunicorn("placement-api", "nova", "placement.wsgi.api:application", ports.placement, [],
                       {"OS_PLACEMENT_CONFIG_DIR": f"{base}/placement"})
        self._gunicorn("glance-api", "glance", "glance.wsgi.api:application", ports.glance, [],
                       {"OS_GLANCE_CONFIG_DIR": f"{base}/glance"})
        self._gunicorn("neutron-api", "neutron", "neutron.wsgi.api:application", ports.neutron,
                       ["--config-file", f"{base}/neutron/neutron.conf"],
                       # Without service plugins Neutron never imports the port forwarding model,
                       # and GET /ports (Nova's every server show) fails on Port.port_forwardings.
                       {"HAKEEPER_PRELOAD": "neutron.db.migration.models.head,neutron.db.models.port_forwarding"})
        self._gunicorn("nova-api", "nova", "nova.wsgi.osapi_compute:application", ports.nova, [],
                       {"OS_NOVA_CONFIG_DIR": f"{base}/nova", "OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf"})
        for service in ("nova-conductor", "nova-scheduler"):
            self._spawn(service, [venv_bin("nova", service), "--config-file", f"{base}/nova/nova.conf"])

    def _wait_apis(self) -> None:
        for name, url in (("placement-api", self.ctl.url("placement")), ("glance-api", self.ctl.url("glance")),
                          ("neutron-api", self.ctl.url("neutron")), ("nova-api", self.ctl.url("nova"))):
            wait_until(lambda url=url: http_answers(url), 300, self.daemons[name], f"{url} answering")  # type: ignore[misc]

    # ----- API helpers -----------------------------------------------------------------------
    def nova(self, method: str, path: str, body: object | None = None,
             microversion: str = BOOT_MICROVERSION) -> object:
        """A call to Nova's API as the lab's admin (no Keystone: the lab's identity filter)."""
        return http_json(method, self.ctl.url("nova") + path, body,
                         {"OpenStack-API-Version": f"compute {microversion}"})

    def _create_flavor_and_image(self) -> None:
        flavor = {"flavor": {"name": FLAVOR, "ram": 64, "vcpus": 1, "disk": 0}}
        self.flavor_id = str(_get(self.nova("POST", "/flavors", flavor), "flavor", "id"))
        glance = self.ctl.url("glance")
        image = http_json("POST", f"{glance}/v2/images", {"name": IMAGE, "disk_format": "raw",
                                                          "container_format": "bare", "visibility": "public"})
        self.image_id = str(_get(image, "id"))
        http_json("PUT", f"{glance}/v2/images/{self.image_id}/file", data=b"\0" * 1024)

    # ----- computes --------------------------------------------------------------------------
    def start_compute(self, name: str, identity: str | None = None, in_namespace: str | None = None,
                      carry_identity: bool = True) -> Compute:
        """Start nova-compute for Nova host `name` in `in_namespace`'s namespace (default: its own).

        Started elsewhere than at home, the process gets a state_path of its own, and (unless
        `carry_identity` is false) the node identity file `compute_id` holding `identity` or the
        UUID the host had at home, as shared storage would carry it: Nova refuses a host whose
        node identity is missing. Returns once the process runs; `wait_compute` waits for Nova."""
        namespace = in_namespace or name
        if namespace not in self.hosts:
            raise LabError(f"no lab host {namespace!r} (hosts: {', '.join(self.hosts)})")
        current = self.computes.get(name)
        if current is not None and current.daemon.alive():
            raise LabError(f"nova-compute {name} already runs in {current.namespace}")
        state = self._dir(namespace, name, "state") if namespace != name else self._dir(name, "state")
        node_id = identity or self.node_ids.get(name)
        if namespace != name and carry_identity and node_id:
            (state / "compute_id").write_text(node_id + "\n")
        self._dir(str(state.relative_to(self.workdir)), "lock")
        conf = state.parent / "nova-compute.conf"
        conf.write_text(cfg.nova_compute_conf(self.ctl, name, str(state)))
        label = f"nova-compute-{name}" + ("" if namespace == name else f"@{namespace}")
        daemon = Daemon(label, self.hosts[namespace], [venv_bin("nova", "nova-compute"), "--config-file", str(conf)],
                        self._log(label))
        compute = Compute(identity=name, namespace=namespace, state_path=state, daemon=daemon)
        self.computes[name] = compute
        return compute

    def resumed_guests(self, name: str) -> set[str]:
        """Servers the current nova-compute of host `name` booted again at its start (its log)."""
        compute = self.computes[name]
        text = compute.daemon.log.read_text(errors="replace")
        return {line.split(RESUMED_MARK, 1)[1].split()[0] for line in text.splitlines()
                if RESUMED_MARK + " " in line}

    def kill_compute(self, name: str) -> None:
        """SIGKILL the nova-compute that claims host `name` (its service stays up in Nova for
        service_down_time, as after a real crash)."""
        compute = self.computes.get(name)
        if compute is None:
            raise LabError(f"no nova-compute {name} was started")
        compute.daemon.kill()

    def service(self, name: str) -> dict[str, object]:
        """Nova's view of host `name`'s nova-compute service (state, status, forced_down, id)."""
        services = _get(self.nova("GET", f"/os-services?binary=nova-compute&host={name}"), "services")
        if not isinstance(services, list) or not services:
            raise LabError(f"Nova knows no nova-compute on {name}")
        first = services[0]
        assert isinstance(first, dict)
        return first

    def host_mapped(self, name: str) -> bool:
        conn = pymysql.connect(host=self.ctl.ip, user="root", password=cfg.DB_PASSWORD, database="nova_api",
                               connect_timeout=3)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM host_mappings WHERE host = %s", (name,))
            return cur.fetchone() is not None

    def wait_compute(self, name: str, up: bool = True, timeout: float = 240) -> None:
        """Wait until Nova sees `name`'s service up (and the host mapped to the cell), or down."""
        compute = self.computes.get(name)
        daemon = compute.daemon if (up and compute is not None) else None

        def ready() -> bool:
            listed = _get(self.nova("GET", f"/os-services?binary=nova-compute&host={name}"), "services")
            if not isinstance(listed, list) or not listed:
                return False  # not registered yet
            if (listed[0].get("state") == "up") != up:
                return False
            return not up or self.host_mapped(name)

        wait_until(ready, timeout, daemon, f"nova-compute {name} {'up and mapped' if up else 'down'}")
        if up and compute is not None and name not in self.node_ids:
            id_file = compute.state_path / "compute_id"
            if id_file.exists():
                self.node_ids[name] = id_file.read_text().strip()

    # ----- servers ---------------------------------------------------------------------------
    def boot(self, count: int, host: str, name: str = "vm", timeout: float = 240) -> list[str]:
        """Boot `count` servers pinned to `host` without networks; returns their ids once ACTIVE.

        A compute that has just (re)started can be "up" before the scheduler's view of it has
        caught up, and a boot pinned to it then fails with "No valid host" (seen once after the
        identity move). Such servers are deleted and booted again, a few times at most; any other
        ERROR fails at once."""

        def post(i: int) -> str:
            body = {"server": {"name": f"{name}-{host}-{i}", "imageRef": self.image_id, "flavorRef": self.flavor_id,
                               "networks": "none", "host": host}}
            return str(_get(self.nova("POST", "/servers", body), "server", "id"))

        booting = {i: post(i) for i in range(count)}
        for attempt in range(BOOT_ATTEMPTS):
            try:
                self.wait_servers(list(booting.values()), "ACTIVE", host, timeout)
                break
            except LabError as err:
                if "No valid host" not in str(err) or attempt == BOOT_ATTEMPTS - 1:
                    raise
            time.sleep(3)
            for i, server_id in list(booting.items()):
                server = self.server(server_id)
                if server.get("status") == "ERROR" and "No valid host" in str(server.get("fault")):
                    self.nova("DELETE", f"/servers/{server_id}")
                    booting[i] = post(i)
        return list(booting.values())

    def server(self, server_id: str) -> dict[str, object]:
        found = _get(self.nova("GET", f"/servers/{server_id}"), "server")
        assert isinstance(found, dict)
        return found

    def wait_servers(self, ids: list[str], status: str, host: str | None = None, timeout: float = 240,
                     extra: Callable[[dict[str, object]], bool] | None = None) -> None:
        """Wait until every server has `status` (and is on `host`, and passes `extra`); fails at
        once if one goes to ERROR."""

        def done() -> bool:
            for server_id in ids:
                server = self.server(server_id)
                if server.get("status") == "ERROR" and status != "ERROR":
                    raise LabError(f"server {server_id} went to ERROR: {server.get('fault')}")
                if server.get("status") != status:
                    return False
                if host is not None and server.get("OS-EXT-SRV-ATTR:host") != host:
                    return False
                if extra is not None and not extra(server):
                    return False
            return True

        wait_until(done, timeout, None, f"servers {ids} {status}" + (f" on {host}" if host else ""))

    def connection(self, microversion: str = EVACUATE_MICROVERSION) -> openstack.connection.Connection:
        """An openstacksdk Connection to the lab: a fixed token (keystoneauth1's admin_token
        plugin, no Keystone) that Placement's noauth2 takes for an admin, endpoint overrides."""
        import openstack.connection
        from keystoneauth1 import session, token_endpoint

        sess = session.Session(auth=token_endpoint.Token(self.ctl.url("nova"), cfg.ADMIN_TOKEN))
        return openstack.connection.Connection(
            session=sess, region_name="RegionOne", compute_api_version=microversion,
            compute_endpoint_override=self.ctl.url("nova"), image_endpoint_override=self.ctl.url("glance"),
            network_endpoint_override=self.ctl.url("neutron"),
            placement_endpoint_override=self.ctl.url("placement"))

    def rss_mb(self) -> float:
        """Resident memory of every process in the lab's namespaces, in MiB."""
        total = 0
        for host in self.hosts.values():
            for pid in _netns_pids(host.ns):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
        return total / 1024


def free_subnet() -> int:
    """The lowest 10.97.N.0/24 no running lab uses (each lab puts N.254 in the root namespace),
    so two labs at once (a test and a benchmark) do not collide."""
    from hakeeper.netlab.lab import run

    used = set()
    for line in run("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        for word in line.split():
            if word.startswith("10.97.") and word.endswith(".254/24"):
                used.add(int(word.split(".")[2]))
    return next(n for n in range(256) if n not in used)


def _netns_pids(ns: str) -> list[str]:
    from hakeeper.netlab.lab import run

    return run("netns", "pids", ns, check=False).stdout.split()


def _get(doc: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            raise LabError(f"unexpected answer, no {key!r} in {str(doc)[:300]}")
        doc = doc[key]
    return doc
