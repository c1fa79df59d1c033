"""Pacemaker's own `ocf:heartbeat:rabbitmq-cluster` agent (resource-agents), unchanged, run by
hakeeper agents on three real brokers in network namespaces: RabbitLab's namespaces, etcd members
and hosts files, with what that agent needs of a machine.

The agent hard-codes Debian's paths: /usr/sbin/rabbitmq-server and rabbitmqctl (wrappers that `su`
to rabbitmq with HOME=/var/lib/rabbitmq, where the Erlang cookie is), its data in
/var/lib/rabbitmq/mnesia (which its start removes), its pid file /var/run/rabbitmq/rmq.pid and
its logs in /var/log/rabbitmq; the node name comes from /etc/rabbitmq/rabbitmq-env.conf. Three
machines have three of each; here every node's agent runs in a mount namespace of its own
(`unshare --mount`) where the node's directories are bind-mounted over those paths, so the agent,
its CLI calls and the broker it starts see the node's files and nothing else: its `rm -rf` of
mnesia removes this node's data, never the host's. /etc/rabbitmq comes from
/etc/netns/<ns>/rabbitmq, which `ip netns exec` bind-mounts itself. The mounts go with the
namespace's last process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from hakeeper.rabbitmq.lab import RabbitLab, spec_header

AGENT = "/usr/lib/ocf/resource.d/heartbeat/rabbitmq-cluster"
# The host paths the agent and Debian's wrappers use, and the name of each node's own directory.
LIB, LOG, RUN = "/var/lib/rabbitmq", "/var/log/rabbitmq", "/run/rabbitmq"
MOUNTS = 'mount --bind "$1" {lib} && mount --bind "$2" {log} && mount --bind "$3" {run} && shift 3 && exec "$@"'


def ocf_spec(lab: RabbitLab, monitor: str = "10s") -> str:
    """The cluster as Pacemaker deployments run it: the agent as a clone with notify=true (its
    post-stop notification forgets a stopped node) and ordered=true (its instances start one
    after another: three first starts at once would each find no node running and found three
    clusters)."""
    return spec_header(lab, fencing=False) + f"""\
    - id: rabbitmq
      agent: ocf:heartbeat:rabbitmq-cluster
      operations:
        # The agent's start waits for the broker with `rabbitmqctl wait` (the timeout less 5 s).
        - {{name: start, timeout: 300s}}
        - {{name: stop, timeout: 120s}}
        # Each monitor runs two or three `rabbitmqctl eval` (an Erlang VM each).
        - {{name: monitor, interval: {monitor}, timeout: 90s}}
        - {{name: notify, timeout: 120s}}
  clones:
    - id: rabbitmq-clone
      child: rabbitmq
      meta: {{notify: true, interleave: true, ordered: true}}
"""


def rabbitmq_conf() -> str:
    return (
        "listeners.tcp.default = 5672\n"
        "loopback_users = none\n"  # the checker connects as guest from the test host
        "disk_free_limit.absolute = 50MB\n"
        "cluster_partition_handling = pause_minority\n"
    )


class OcfRabbitLab(RabbitLab):
    """Three namespaces (tag `q`, 10.96.5.0/24 by default) whose agents run the unchanged
    rabbitmq-cluster agent. `node_dir(n)` is node n's /var/lib/rabbitmq (so `mnesia_dir(n)` is
    its /var/lib/rabbitmq/mnesia/rabbit@n, what the agent wipes)."""

    def __init__(self, workdir: str, tag: str = "q", subnet: int = 5) -> None:
        # The pid file's directory must exist on the host to be mounted over; it is removed at
        # close if this lab made it (Debian's package creates it only when the service starts).
        self.made_run = not os.path.isdir(RUN)
        if self.made_run:
            os.makedirs(RUN, exist_ok=True)
        super().__init__(workdir, tag=tag, subnet=subnet)
        try:
            for n in self.names:
                self._prepare(n)
        except BaseException:
            self.close()
            raise

    def own_dir(self, name: str, kind: str) -> str:
        return os.path.join(self.workdir, f"{name}-{kind}")

    def _prepare(self, name: str) -> None:
        lib = self.node_dir(name)
        cookie = os.path.join(lib, ".erlang.cookie")
        Path(cookie).write_text(self.cookie)  # the same on every node, as an operator copies it
        os.chmod(cookie, 0o400)
        shutil.chown(cookie, "rabbitmq", "rabbitmq")
        for kind in ("log", "run"):
            os.makedirs(self.own_dir(name, kind), exist_ok=True)
            shutil.chown(self.own_dir(name, kind), "rabbitmq", "rabbitmq")
        etc = f"/etc/netns/{self.hosts[name].ns}/rabbitmq"
        os.makedirs(etc, exist_ok=True)
        files = {
            "rabbitmq-env.conf": f"NODENAME=rabbit@{name}\n",
            "rabbitmq.conf": rabbitmq_conf(),
            "enabled_plugins": "[].\n",
        }
        for file, text in files.items():
            Path(etc, file).write_text(text)
            shutil.chown(os.path.join(etc, file), "rabbitmq", "rabbitmq")

    def agent_argv(self, name: str) -> list[str]:
        script = MOUNTS.format(lib=LIB, log=LOG, run=RUN)
        return [
            "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "hkrmq-mounts",
            self.node_dir(name), self.own_dir(name, "log"), self.own_dir(name, "run"),
            *super().agent_argv(name),
        ]

    def close(self) -> None:
        super().close()
        if self.made_run:
            with contextlib.suppress(OSError):
                os.rmdir(RUN)  # only when empty: nothing of anyone else's is removed
