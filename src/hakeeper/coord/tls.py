"""TLS and authentication for the etcd backend.

aetcd opens plain-text channels only; `SecureClient` is an aetcd client whose channel is a
gRPC TLS channel (server verified against --cacert, this client proving itself with
--cert/--key), optionally authenticating with a user name and password. With etcd's
--client-cert-auth the certificate's common name is the etcd user, so RBAC needs no password.

Certificates are checked before the first connection (readable, a certificate and key that
belong together, not expired, not yet valid): a wrong file is an InputError naming the flag and
the file, never a connection that fails later in a way nobody can read. What the server refuses
(a certificate from a CA it does not trust, plain text to a TLS port) is turned into a sentence
by `explain`, naming which side refused what.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aetcd
import grpc  # type: ignore[import-untyped]
from aetcd import rpc
from aetcd import watcher as aetcd_watcher

from hakeeper.errors import InputError

MAX_PEM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class EtcdSecurity:
    """How to reach a secured etcd. Paths as given (messages name them); the password is never
    printed (repr hides it)."""

    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # flag or file:line

    @property
    def tls(self) -> bool:
        return bool(self.cacert or self.cert or self.key)

    def where(self, name: str) -> str:
        return self.sources.get(name, f"--{name}")


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes a channel needs, read and checked once."""

    root: bytes | None
    key: bytes | None
    chain: bytes | None
    credentials: Any  # grpc.ChannelCredentials


def _read_pem(security: EtcdSecurity, name: str, path: str) -> bytes:
    where = security.where(name)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise InputError.at(f"cannot read {path}: {exc.strerror}", field=where) from None
    if len(data) > MAX_PEM_BYTES or b"-----BEGIN " not in data:
        raise InputError.at(f"{path} is not a PEM file", field=where)
    return data


def _check_certificate(security: EtcdSecurity, name: str, path: str, pem: bytes, now: datetime.datetime) -> None:
    from cryptography import x509

    where = security.where(name)
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise InputError.at(f"{path} holds no readable certificate", field=where) from None
    for cert in certs if name == "cert" else certs[:0]:
        subject = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc < now:
            raise InputError.at(
                f"the client certificate in {path} ({subject}) expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                field=where,
            )
        if cert.not_valid_before_utc > now:
            raise InputError.at(
                f"the client certificate in {path} ({subject}) is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (is this host's clock right?)",
                field=where,
            )


def load_material(security: EtcdSecurity, now: datetime.datetime | None = None) -> TlsMaterial:
    """Read and check --cacert/--cert/--key; InputError naming the flag and file when wrong."""
    now = now or datetime.datetime.now(datetime.UTC)
    if bool(security.cert) != bool(security.key):
        given, missing = ("cert", "key") if security.cert else ("key", "cert")
        raise InputError.at(
            f"--{given} needs --{missing} too (a client certificate and its key)", field=security.where(missing)
        )
    root = _read_pem(security, "cacert", security.cacert) if security.cacert else None
    if root is not None and security.cacert:
        _check_certificate(security, "cacert", security.cacert, root, now)
    chain = key = None
    if security.cert and security.key:
        chain = _read_pem(security, "cert", security.cert)
        key = _read_pem(security, "key", security.key)
        _check_certificate(security, "cert", security.cert, chain, now)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_cert_chain(security.cert, security.key)
        except ssl.SSLError as exc:
            raise InputError.at(
                f"{security.key} is not the key of the certificate in {security.cert} ({exc.reason or exc})",
                field=security.where("key"),
            ) from None
    credentials = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    return TlsMaterial(root, key, chain, credentials)


class SecureClient(aetcd.Client):  # type: ignore[misc]
    """An aetcd client on a TLS channel (aetcd itself only dials plain text)."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        material: TlsMaterial | None,
        security: EtcdSecurity,
        options: dict[str, int] | None = None,
    ) -> None:
        super().__init__(
            host=host, port=port, timeout=timeout, username=security.user, password=security.password, options=options
        )
        self._material = material

    async def connect(self) -> None:
        if self._material is None:
            await super().connect()
            return
        if self._connected.is_set():
            return
        channel = grpc.aio.secure_channel(
            f"{self._host}:{self._port}", self._material.credentials, options=list(self._options.items())
        )
        try:
            metadata = None
            if self._username is not None and self._password is not None:
                request = rpc.AuthenticateRequest(name=self._username, password=self._password)
                reply = await rpc.AuthStub(channel).Authenticate(request, timeout=self._timeout)
                metadata = (("token", reply.token),)
        except BaseException:
            await channel.close()
            raise
        self.channel = channel
        self.metadata = metadata
        self.auth_stub = rpc.AuthStub(channel)
        self.kvstub = rpc.KVStub(channel)
        self.clusterstub = rpc.ClusterStub(channel)
        self.leasestub = rpc.LeaseStub(channel)
        self.maintenancestub = rpc.MaintenanceStub(channel)
        self._watcher = aetcd_watcher.Watcher(rpc.WatchStub(channel), timeout=self._timeout, metadata=metadata)
        self._connected.set()


def explain(exc: BaseException, endpoint: str, security: EtcdSecurity | None) -> str | None:
    """A sentence for a failure that is about TLS or authentication, naming which side refused
    what; None for anything else (an unreachable or leaderless etcd keeps its own message)."""
    text = str(exc)
    lowered = text.lower()
    tls = security is not None and security.tls
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return (
            f"etcd at {endpoint} presented a certificate that {security.cacert if security else 'the CA'} "
            f"({security.where('cacert') if security else '--cacert'}) does not vouch for: wrong CA file, "
            "or the server's certificate does not name this address"
        )
    if "alert_certificate_expired" in lowered or "certificate expired" in lowered:
        cert = security.cert if security else "--cert"
        return f"etcd at {endpoint} refused this client's certificate as expired ({cert})"
    # gRPC reports the server's alert after a handshake it thought done as a corrupt record.
    refused = "tsi_data_corrupted" in lowered or "unwrap failed" in lowered
    if refused and not (security and security.cert):
        return f"etcd at {endpoint} requires a client certificate: pass --cert and --key"
    if refused or any(a in lowered for a in ("bad_certificate", "bad certificate", "unknown_ca", "unknown ca")):
        return (
            f"etcd at {endpoint} refused this client's certificate ({security.cert if security else '--cert'}): "
            "not signed by a CA it trusts (its --trusted-ca-file), or expired"
        )
    if tls and ("wrong_version_number" in lowered or "wrong version number" in lowered):
        return f"etcd at {endpoint} does not speak TLS (plain text endpoint): drop --cacert/--cert/--key or fix its URL"
    # A TLS server hangs up on a plain-text client at once (a dead one refuses the connection).
    if not tls and ("socket closed" in lowered or "connection reset" in lowered):
        return (
            f"etcd at {endpoint} did not answer in plain text; if it requires TLS, pass --cacert (and --cert/--key "
            "for client certificate authentication) or set them in the config file"
        )
    if "user name is empty" in lowered:
        return f"etcd at {endpoint} has authentication enabled: give a client certificate (--cert/--key) or --etcd-user"
    if "authentication failed" in lowered:
        return f"etcd at {endpoint} rejected the user name or password (--etcd-user, --etcd-password-file)"
    if "permission denied" in lowered:
        who = (security.user if security and security.user else None) or "this client's user"
        return (
            f"etcd at {endpoint} denied {who} access: "
            "its role must grant readwrite on the cluster's prefix /hakeeper/CLUSTER/"
        )
    return None


def read_password_file(path: str, where: str) -> str:
    """The etcd password from a file (first line), never from the command line."""
    if not Path(path).is_file():
        raise InputError.at(f"{path} is not a readable file", field=where)
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline(4096)
    except (OSError, UnicodeDecodeError):
        raise InputError.at(f"cannot read the password file {path}", field=where) from None
    password = line.rstrip("\r\n")
    if not password:
        raise InputError.at(f"the password file {path} is empty", field=where)
    return password
