"""Seed 002's active/passive broker: failover time, hakeeper's `rabbitmq:single` against the
rabbitmq-server package's own Pacemaker agent `ocf:rabbitmq:rabbitmq-server`, both run by hakeeper
on the same lab, the same faults and the same number of runs, in one invocation (root;
rabbitmq-server, etcd-server, pika).

Three nodes in network namespaces (each an etcd member and a hakeeper agent), fencing on
(`stonith:netns`), one group [VIP, broker] with the broker's data in a directory every node sees
(it stands in for CephFS or DRBD). A publisher with confirms publishes through the VIP to a durable
classic queue, retrying the same id until it is confirmed. Faults, each `--runs` times:

  kill      SIGKILL of the active broker's Erlang VM (the host lives on): hakeeper's monitor sees
            it and restarts it (in place, or elsewhere)
  poweroff  the active host dies (link dark, every process killed): hakeeper fences it, then
            starts the group on another node; the host is powered on again after the run

Measured per run: fault → first confirmed publish through the VIP. The contenders differ only in
the broker's agent: the native class (node rabbit@<VIP name>, monitor `check_running` + alarms and
partitions) or the OCF agent unchanged (its default node rabbit@localhost, monitor `rabbitmqctl
status`), with the same monitor interval. The OCF agent runs rabbitmq-server and rabbitmqctl as
root through /usr/sbin wrappers that `su` to rabbitmq with HOME=/var/lib/rabbitmq; here its
`server` and `ctl` parameters name two small scripts that do the same with the shared directory as
HOME (where a real deployment mounts /var/lib/rabbitmq), so no host-wide file is touched.
The checker counts, per contender, every id confirmed against every id consumed from the queue
at the end: missing must be 0.

    python3 bench/rabbitmq_single_failover.py [--runs 3] [--faults kill,poweroff] [--monitor 5s]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pika  # type: ignore[import-untyped]

from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.lab import SINGLE_HOST, RabbitLab, broker_group_spec, single_spec

QUEUE = "hk-ap-bench"
OCF_NODE = "rabbit@localhost"  # the OCF agent's default: the same node name on every host


def ocf_spec(lab: RabbitLab, shared: str, monitor: str) -> str:
    """single_spec with the package's OCF agent in place of rabbitmq:single."""
    bindir = os.path.join(shared, "bin")
    params = "".join(f"        {k}: {v}\n" for k, v in (
        ("server", f"{bindir}/rabbitmq-server"), ("ctl", f"{bindir}/rabbitmqctl"), ("nodename", OCF_NODE),
        ("mnesia_base", f"{shared}/mnesia"), ("log_base", f"{shared}/log"), ("pid_file", f"{shared}/run/rabbitmq.pid"),
    ))
    return broker_group_spec(lab, "rabbitmq-ocf", "ocf:rabbitmq:rabbitmq-server", params, monitor)


def prepare_ocf(shared: str, cookie: str) -> None:
    """What the package sets up in /var/lib/rabbitmq (cookie, config), and the two wrappers."""
    os.makedirs(os.path.join(shared, "bin"))
    files = {
        ".erlang.cookie": cookie,
        "rabbitmq.conf": "listeners.tcp.default = 5672\nloopback_users = none\ndisk_free_limit.absolute = 50MB\n",
        "enabled_plugins": "[].\n",
        "rabbitmq-env.conf": "",
    }
    for name, text in files.items():
        Path(shared, name).write_text(text)
        shutil.chown(os.path.join(shared, name), "rabbitmq", "rabbitmq")
    os.chmod(os.path.join(shared, ".erlang.cookie"), 0o400)
    for d in ("mnesia", "log"):
        os.makedirs(os.path.join(shared, d))
        shutil.chown(os.path.join(shared, d), "rabbitmq", "rabbitmq")
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        path = os.path.join(shared, "bin", tool)
        Path(path).write_text(
            "#!/bin/sh\n"
            f"# /usr/sbin/{tool} with {shared} as rabbitmq's HOME (/var/lib/rabbitmq)\n"
            f"cd {shared}\n"
            f"export HOME={shared} RABBITMQ_CONFIG_FILE={shared}/rabbitmq.conf "
            f"RABBITMQ_ENABLED_PLUGINS_FILE={shared}/enabled_plugins "
            f"RABBITMQ_CONF_ENV_FILE={shared}/rabbitmq-env.conf\n"
            f'exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/{tool} "$@"\n'
        )
        os.chmod(path, 0o755)


def shared_dir(workdir: str, name: str) -> str:
    path = os.path.join(workdir, name)
    os.makedirs(path)
    shutil.chown(path, "rabbitmq", "rabbitmq")
    return path


def serving(lab: RabbitLab, timeout: float, not_on: str | None = None) -> str:
    """Until one node (other than `not_on`) holds the VIP and a broker there takes a connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holders = [n for n in lab.holders(lab.vip) if n != not_on]
        if len(holders) == 1:
            try:
                pika.BlockingConnection(pika.ConnectionParameters(
                    host=lab.vip, credentials=pika.PlainCredentials("guest", "guest"), socket_timeout=2,
                    stack_timeout=5)).close()
                return holders[0]
            except (pika.exceptions.AMQPError, OSError):
                pass
        time.sleep(0.5)
    raise TimeoutError(f"no broker on the VIP within {timeout:g}s")


def declare(vip: str) -> None:
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=vip, credentials=pika.PlainCredentials("guest", "guest"), connection_attempts=10,
        retry_delay=1))
    try:
        conn.channel().queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "classic"})
    finally:
        conn.close()


def wait_confirm(pub: checker.Publisher, after: float, limit: float, reconnected: bool = False) -> float | None:
    """Seconds from `after` to the first confirm after it (`reconnected`: through a connection
    made after it; a confirm the killed broker sent just before dying may be read after the kill)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if reconnected:
            at = pub.first_confirm_on_a_new_connection(after)
        else:
            got = pub.first_confirm_after(after)
            at = None if got is None else got[0]
        if at is not None:
            return at - after
        time.sleep(0.01)
    return None


def agents_online(lab: RabbitLab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = lab.hk("status", "--json", check=False)
        if out.returncode == 0 and all(f'"{n}": "online"' in out.stdout for n in lab.names):
            return
        time.sleep(1)
    raise TimeoutError("not every node back online")


def contender(lab: RabbitLab, name: str, faults: list[str], runs: int) -> dict[str, list[float]]:
    holder = serving(lab, 400)
    declare(lab.vip)
    pub = checker.Publisher([lab.vip], queue=QUEUE, tag=name, rate=200)
    pub.start()
    took: dict[str, list[float]] = {f: [] for f in faults}
    try:
        for fault in faults:
            for r in range(runs):
                if wait_confirm(pub, time.monotonic(), 60) is None:
                    raise RuntimeError("the publisher confirms nothing before the fault")
                holder = serving(lab, 400)
                at = time.monotonic()
                if fault == "kill":
                    lab.kill_broker(holder)
                else:
                    lab.power_off(holder)
                t = wait_confirm(pub, at, 400, reconnected=True)
                # A powered-off host keeps the VIP on its dead link: the holder is another node.
                moved_to = serving(lab, 400, not_on=holder if fault == "poweroff" else None)
                print(f"  {name} {fault} {r + 1}: {holder} -> {moved_to}, first confirm after "
                      f"{'none' if t is None else f'{t:.2f} s'} (load {os.getloadavg()[0]:.1f})", flush=True)
                if t is None:
                    raise RuntimeError(f"{name}: no confirm within 400 s of the {fault}")
                took[fault].append(t)
                if fault == "poweroff":
                    lab.power_on(holder)
                    agents_online(lab, 120)
                time.sleep(3)
    finally:
        con = checker.Consumer([lab.vip], queue=QUEUE)
        con.start()
        verdict = checker.verdict(pub, con)
    print(f"  {name} checker: {verdict.describe()}", flush=True)
    if not verdict.ok:
        raise RuntimeError(f"{name} lost confirmed messages: {verdict.describe()}")
    return took


def summary(xs: list[float]) -> str:
    return f"p50 {statistics.median(xs):.2f} s, max {max(xs):.2f} s (n={len(xs)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faults", default="kill,poweroff")
    parser.add_argument("--monitor", default="5s", help="the broker's monitor interval (both contenders)")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    if os.geteuid() != 0 or not os.path.exists("/usr/lib/ocf/resource.d/rabbitmq/rabbitmq-server"):
        print("needs root and the rabbitmq-server package (its OCF agent)", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="hkrb-", dir="/tmp")
    os.chmod(workdir, 0o755)
    lab = RabbitLab(workdir, tag="b", subnet=4)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        lab.start()
        native_dir = shared_dir(workdir, "native")
        lab.cli_home = native_dir
        ocf_dir = shared_dir(workdir, "ocf")
        prepare_ocf(ocf_dir, lab.cookie)
        phases: list[tuple[str, Callable[[], str]]] = [
            ("native", lambda: single_spec(lab, native_dir, monitor=args.monitor)),
            ("ocf", lambda: ocf_spec(lab, ocf_dir, args.monitor)),
        ]
        print(f"load at start: {os.getloadavg()}", flush=True)
        for name, spec in phases:
            lab.apply(spec())
            results[name] = contender(lab, name, faults, args.runs)
        print(f"load at end: {os.getloadavg()}")
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nfirst confirmed publish through the VIP after the fault ({SINGLE_HOST} VIP, {args.runs} runs each):")
    for fault in faults:
        nat, ocf = results["native"][fault], results["ocf"][fault]
        print(f"  {fault:8} rabbitmq:single {summary(nat)} | ocf:rabbitmq:rabbitmq-server {summary(ocf)} | "
              f"ratio native/ocf p50 {statistics.median(nat) / statistics.median(ocf):.2f}, "
              f"max {max(nat) / max(ocf):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
