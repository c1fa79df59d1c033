"""Start real etcd members (Debian's /usr/bin/etcd) for tests, benchmarks and the demo.

Only process management lives here: a member's command line, waiting for it to serve, stopping
it. `netns` runs the member inside a network namespace (ip netns exec).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

ETCD = "/usr/bin/etcd"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A member's server certificate and key, and the CA its clients' certificates must come
    from (--client-cert-auth: a client without one is refused). The health check presents the
    server's own certificate, so it must allow client authentication too."""

    ca: str
    cert: str
    key: str


@dataclass
class Member:
    name: str
    host: str
    client_port: int
    peer_port: int
    data_dir: str
    netns: str | None = None
    # Raft timings in ms (heartbeat, election): fast failure detection for a LAN cluster;
    # etcd's own defaults are (100, 1000).
    timings: tuple[int, int] = (50, 500)
    tls: TlsFiles | None = None
    extra: tuple[str, ...] = ()  # more etcd flags
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.client_port}"

    def command(self, initial_cluster: str, token: str) -> list[str]:
        cmd = [
            ETCD,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-token={token}",
            "--initial-cluster-state=new",
            f"--heartbeat-interval={self.timings[0]}",
            f"--election-timeout={self.timings[1]}",
            # A member back from a partition asks before it campaigns, so it does not depose a
            # working leader and stall every lease refresh once more (etcd 3.5's default).
            "--pre-vote=true",
            "--logger=zap",
            "--log-level=error",
        ]
        if self.tls:
            cmd += [
                f"--cert-file={self.tls.cert}",
                f"--key-file={self.tls.key}",
                f"--trusted-ca-file={self.tls.ca}",
                "--client-cert-auth",
            ]
        cmd += self.extra
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    def start(self, initial_cluster: str, token: str, log_path: str | None = None) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        out = open(log_path or os.path.join(self.data_dir, "..", f"{self.name}.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(initial_cluster, token), stdout=out, stderr=out, start_new_session=True
        )
        out.close()

    def healthy(self) -> bool:
        url = f"{self.client_url}/health"
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls.ca)
            context.load_cert_chain(self.tls.cert, self.tls.key)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        try:
            opener = urllib.request.build_opener(*handlers)
            with opener.open(url, timeout=0.5) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.proc = None


@dataclass
class Cluster:
    members: list[Member]
    token: str = "hakeeper"

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self, timeout: float = 20.0) -> None:
        for m in self.members:
            m.start(self.initial_cluster, self.token)
        deadline = time.monotonic() + timeout
        while not all(m.healthy() for m in self.members):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd cluster did not become healthy: {self.endpoints}")
            time.sleep(0.1)

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def etcdctl(self, *args: str, root: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run etcdctl against the members (over TLS as `root`'s certificate when TLS is on)."""
        first = self.members[0]
        flags = [f"--endpoints={','.join(m.client_url for m in self.members)}"]
        if first.tls is not None:
            cert, key = root or (first.tls.cert, first.tls.key)
            flags += [f"--cacert={first.tls.ca}", f"--cert={cert}", f"--key={key}"]
        return subprocess.run(
            ["etcdctl", *flags, *args], check=True, capture_output=True, text=True, timeout=30,
            env={**os.environ, "ETCDCTL_API": "3"},
        )

    def enable_auth(self, root: tuple[str, str], user: str, prefix: str) -> None:
        """etcd's RBAC as production runs it: a root user, and `user` (a client certificate's CN)
        whose role may read and write `prefix` and nothing else."""
        for args in (
            ("user", "add", "root", "--no-password"),
            ("user", "grant-role", "root", "root"),
            ("role", "add", user),
            ("role", "grant-permission", user, "readwrite", "--prefix=true", prefix),
            ("user", "add", user, "--no-password"),
            ("user", "grant-role", user, user),
            ("auth", "enable"),
        ):
            self.etcdctl(*args, root=root)


def loopback_cluster(base_dir: str, size: int = 1, tls: TlsFiles | None = None) -> Cluster:
    members = [
        Member(f"m{i}", "127.0.0.1", free_port(), free_port(), os.path.join(base_dir, f"m{i}.etcd"), tls=tls)
        for i in range(size)
    ]
    return Cluster(members)
