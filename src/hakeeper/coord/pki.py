"""Certificates for test clusters and benchmarks, made fresh per run with `cryptography`: a CA,
the certificates it signs (servers naming their addresses, clients whose CN is the etcd user,
an expired one on request). Production certificates come from the site's own CA."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Authority:
    def __init__(self, directory: Path, cn: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / f"{cn}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, cn: str, server: bool = False, expired: bool = False, ips: Sequence[str] = ("127.0.0.1",)
    ) -> tuple[str, str]:
        """(certificate path, key path) of a new certificate for `cn`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start, end = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
        if expired:
            start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            names.append(x509.DNSName("localhost"))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert_path, key_path = self.directory / f"{name}.pem", self.directory / f"{name}-key.pem"
        cert_path.write_bytes(builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        return str(cert_path), str(key_path)


@dataclass(frozen=True)
class ClusterPki:
    """What an etcd cluster with client-certificate authentication and its clients need."""

    ca: str
    server: tuple[str, str]  # every member's certificate and key (names every member address)
    client: tuple[str, str]  # the cluster's etcd user (CN = user)
    root: tuple[str, str]  # etcd's root user, to set up RBAC
    user: str


def cluster_pki(directory: Path, ips: Sequence[str], user: str) -> ClusterPki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = Authority(directory, "hakeeper-test-ca")
    return ClusterPki(
        str(ca.path),
        ca.issue("server", "etcd", server=True, ips=ips),
        ca.issue("client", user),
        ca.issue("root", "root"),
        user,
    )
