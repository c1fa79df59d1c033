"""etcd with TLS, client certificates and RBAC: hakeeper's store over it, and every way of
getting it wrong refused with a sentence that says which, within the store timeout.

One real etcd (Debian's) per module, started with --cert-file/--key-file/--trusted-ca-file and
--client-cert-auth, certificates made for the run, authentication enabled, and a role that may
only read and write the cluster's prefix. The certificate's CN is the etcd user."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import test_coord_contract as contract

from conftest import needs_binary
from hakeeper.coord.etcd import EtcdStore
from hakeeper.coord.etcdproc import Cluster, TlsFiles, loopback_cluster
from hakeeper.coord.pki import Authority
from hakeeper.coord.store import Store, StoreError
from hakeeper.coord.tls import EtcdSecurity
from hakeeper.errors import InputError

CLUSTER = "tls"
PREFIX = f"/hakeeper/{CLUSTER}/"
TIMEOUT = 2.0


@dataclass
class Secured:
    cluster: Cluster
    dir: Path
    ca: str
    files: dict[str, tuple[str, str]]  # name -> (cert, key)
    other_ca: str
    password_file: str

    def security(self, name: str = "client", ca: str | None = None, **kw: Any) -> EtcdSecurity:
        cert, key = self.files[name]
        return EtcdSecurity(ca or self.ca, cert, key, **kw)


def _etcdctl(s: Secured, *args: str) -> None:
    cert, key = s.files["root"]
    subprocess.run(
        ["etcdctl", f"--endpoints=https://{s.cluster.endpoints[0]}", f"--cacert={s.ca}", f"--cert={cert}",
         f"--key={key}", *args],
        check=True, capture_output=True, timeout=30, env={**os.environ, "ETCDCTL_API": "3"},
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    needs_binary("etcd", "etcd-server")
    needs_binary("etcdctl", "etcd-client")
    d = tmp_path_factory.mktemp("tls")
    ca, other = Authority(d, "hakeeper-test-ca"), Authority(d, "unrelated-ca")
    files = {
        "server": ca.issue("server", "etcd", server=True),
        "root": ca.issue("root", "root"),
        "client": ca.issue("client", "hakeeper-tls"),  # CN = the etcd user limited to PREFIX
        "expired": ca.issue("expired", "hakeeper-tls", expired=True),
        "foreign": other.issue("foreign", "hakeeper-tls"),
        "outsider": ca.issue("outsider", "nobody"),  # a valid certificate of no etcd user
    }
    password_file = d / "password"
    password_file.write_text("s3cret-pw\n")
    password_file.chmod(0o600)
    cert, key = files["server"]
    cluster = loopback_cluster(str(d), 1, tls=TlsFiles(str(ca.path), cert, key))
    cluster.members[0].extra = ("--auth-token-ttl=2",)  # password tokens expire after 2 s idle
    cluster.start()
    s = Secured(cluster, d, str(ca.path), files, str(other.path), str(password_file))
    try:
        _etcdctl(s, "user", "add", "root", "--no-password")
        _etcdctl(s, "user", "grant-role", "root", "root")
        _etcdctl(s, "role", "add", "hakeeper-tls")
        _etcdctl(s, "role", "grant-permission", "hakeeper-tls", "readwrite", "--prefix=true", PREFIX)
        _etcdctl(s, "user", "add", "hakeeper-tls", "--no-password")
        _etcdctl(s, "user", "grant-role", "hakeeper-tls", "hakeeper-tls")
        _etcdctl(s, "user", "add", "pw-user:s3cret-pw")
        _etcdctl(s, "user", "grant-role", "pw-user", "hakeeper-tls")
        _etcdctl(s, "auth", "enable")
        yield s
    finally:
        cluster.stop()


_prefixes = itertools.count()


def _factory(s: Secured, security: EtcdSecurity) -> Callable[[], Any]:
    @asynccontextmanager
    async def open_store() -> AsyncIterator[tuple[Store, str]]:
        async with EtcdStore(s.cluster.endpoints, timeout=TIMEOUT, security=security) as store:
            yield store, f"{PREFIX}t{next(_prefixes)}/"

    return open_store


# Compaction is an administrator's operation under etcd's RBAC, so the cluster's own user
# cannot run the compaction test; every other contract test runs as that user.
CONTRACT = [
    contract.test_put_get_revisions,
    contract.test_transaction_compare_and_set,
    contract.test_lease_keys_vanish_on_revoke_and_expiry,
    contract.test_watch_from_revision_in_order,
    contract.test_election_one_leader_and_takeover,
]


@pytest.mark.parametrize("case", CONTRACT, ids=lambda f: f.__name__.removeprefix("test_"))
def test_contract_over_tls_as_the_clusters_user(secured: Secured, case: Callable[[Any], None]) -> None:
    case(_factory(secured, secured.security()))


def test_password_authentication_over_tls(secured: Secured) -> None:
    from hakeeper.coord.tls import read_password_file

    password = read_password_file(secured.password_file, "--etcd-password-file")
    security = secured.security(user="pw-user", password=password)
    contract.test_put_get_revisions(_factory(secured, security))

    async def idle_past_the_token_ttl() -> None:
        async with EtcdStore(secured.cluster.endpoints, timeout=TIMEOUT, security=security) as store:
            await store.put(PREFIX + "pw/1", b"1")
            await asyncio.sleep(4)  # etcd forgets the token after 2 s without use
            await store.put(PREFIX + "pw/2", b"2")  # authenticates again, transparently

    asyncio.run(idle_past_the_token_ttl())


def _refusal(secured: Secured, security: EtcdSecurity | None, key: str = PREFIX + "x") -> str:
    """The error a client gets, checked to come within the store timeout."""

    async def attempt() -> str:
        started = time.monotonic()
        try:
            async with EtcdStore(secured.cluster.endpoints, timeout=TIMEOUT, security=security) as store:
                await store.put(key, b"1")
        except StoreError as exc:
            assert time.monotonic() - started < TIMEOUT + 1.5, "the refusal took longer than the store timeout"
            return str(exc)
        raise AssertionError("the write was accepted")

    return asyncio.run(asyncio.wait_for(attempt(), 30))


Check = Callable[[Secured], Awaitable[None]]


def test_refusals_say_which(secured: Secured) -> None:
    plain = _refusal(secured, None)
    assert "did not answer in plain text" in plain and "--cacert" in plain, plain
    no_cert = _refusal(secured, EtcdSecurity(secured.ca))
    assert "requires a client certificate" in no_cert, no_cert
    foreign = _refusal(secured, secured.security("foreign"))
    assert "refused this client's certificate" in foreign and "foreign.pem" in foreign, foreign
    wrong_ca = _refusal(secured, secured.security(ca=secured.other_ca))
    assert "does not vouch for" in wrong_ca and "unrelated-ca.pem" in wrong_ca, wrong_ca
    outside = _refusal(secured, secured.security(), key="/elsewhere/x")
    assert "denied" in outside and "readwrite on the cluster's prefix" in outside, outside
    stranger = _refusal(secured, secured.security("outsider"))
    assert "denied" in stranger, stranger


def test_expired_and_mismatched_certificates_are_input_errors(secured: Secured) -> None:
    with pytest.raises(InputError, match=r"--cert: the client certificate in .*expired.pem .* expired on"):
        EtcdStore(secured.cluster.endpoints, security=secured.security("expired"))
    cert, _ = secured.files["client"]
    _, other_key = secured.files["root"]
    with pytest.raises(InputError, match="is not the key of the certificate"):
        EtcdStore(secured.cluster.endpoints, security=EtcdSecurity(secured.ca, cert, other_key))
    with pytest.raises(InputError, match="--cert needs --key too"):
        EtcdStore(secured.cluster.endpoints, security=EtcdSecurity(secured.ca, cert, None))
    with pytest.raises(InputError, match="is not a PEM file"):
        EtcdStore(secured.cluster.endpoints, security=EtcdSecurity(secured.password_file))


def _hk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAKEEPER_")}
    return subprocess.run(
        [sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True, timeout=60,
        env={**clean, **(env or {})},
    )


def test_operator_commands_from_a_config_file(secured: Secured) -> None:
    cert, key = secured.files["client"]
    conf = secured.dir / "hakeeper.conf"
    conf.write_text(
        f"# written by the test\netcd = {secured.cluster.endpoints[0]}\ncacert = {secured.ca}\n"
        f"cert = {cert}\nkey = {key}\n"
    )
    ok = _hk("status", "--cluster", CLUSTER, "--json", env={"HAKEEPER_CONFIG": str(conf)})
    assert ok.returncode == 0, ok
    # A flag beats the file: an expired certificate given on the command line is refused as input.
    expired_cert, expired_key = secured.files["expired"]
    bad = _hk("status", "--cluster", CLUSTER, "--config", str(conf), "--cert", expired_cert, "--key", expired_key)
    assert bad.returncode == 2 and "expired on" in bad.stderr and "Traceback" not in bad.stderr, bad
    # No TLS settings at all: exit 3, saying what to pass.
    plain = _hk("status", "--cluster", CLUSTER, "--etcd", secured.cluster.endpoints[0])
    assert plain.returncode == 3 and "did not answer in plain text" in plain.stderr, plain
    conf.write_text(conf.read_text() + "etcd-password = hunter2\n")
    secret = _hk("status", "--config", str(conf))
    assert secret.returncode == 2 and f"{conf}:6" in secret.stderr and "hunter2" not in secret.stderr, secret


def test_an_agent_runs_a_resource_over_tls_as_the_clusters_user(secured: Secured) -> None:
    """The whole agent (membership lease, election, watches, plans) as the restricted user."""
    cert, key = secured.files["client"]
    conf = secured.dir / "agent.conf"
    conf.write_text(f"etcd = {secured.cluster.endpoints[0]}\ncacert = {secured.ca}\ncert = {cert}\nkey = {key}\n")
    spec = secured.dir / "agent-spec.yaml"
    spec.write_text(
        "cluster: {stonith-enabled: false}\nnodes: [{name: n1}]\n"
        "resources:\n  primitives:\n    - {id: web, agent: process, params: {command: 'sleep 1000'}}\n"
    )
    env = {"HAKEEPER_CONFIG": str(conf), "HAKEEPER_CLUSTER": CLUSTER}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAKEEPER_")}
    agent = subprocess.Popen(
        [sys.executable, "-m", "hakeeper", "agent", "--node", "n1", "--lease-ttl", "8",
         "--state-dir", str(secured.dir / "state")],
        env={**clean, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        applied = _hk("config", "apply", str(spec), "--yes", env=env)
        assert applied.returncode == 0, applied
        deadline = time.monotonic() + 90
        while True:
            out = _hk("status", "--json", env=env)
            assert out.returncode == 0, out
            view = json.loads(out.stdout)
            if view["leader"] == "n1" and view["resources"].get("web", {}).get("running_on") == ["n1"]:
                break
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else b""
            assert time.monotonic() < deadline, view
            time.sleep(1)
    finally:
        os.killpg(agent.pid, signal.SIGTERM)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(10)
