"""Secrets in a backup are encrypted with a key file (cryptography's Fernet: AES-128-CBC with an
HMAC-SHA256, so a changed ciphertext is refused rather than decrypted to garbage).

Which files are secrets: those the operator names, and any whose name says so (a Ceph keyring,
the RabbitMQ cookie, a password or credentials file).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from hakeeper.errors import InputError

_SECRET_FILE = re.compile(r"(\.keyring$|cookie|passw|secret|credential|\.key$|token)", re.IGNORECASE)


def is_secret_file(path: str) -> bool:
    return bool(_SECRET_FILE.search(os.path.basename(path)))


def generate_key(path: str) -> None:
    """A new key file, readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError.at("exists: a backup key is never overwritten (its backups need it)", file=path) from None
    except OSError as exc:
        raise InputError.at(f"cannot create: {exc.strerror}", file=path) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key() + b"\n")


@dataclass(frozen=True)
class BackupKey:
    """The key file's two uses: Fernet for secrets, an HMAC key (derived, never the same bytes)
    that signs the manifest, so files and manifest changed together are caught as well."""

    box: Fernet
    mac_key: bytes

    def sign(self, data: bytes) -> str:
        return hmac.new(self.mac_key, data, hashlib.sha256).hexdigest()

    def signed(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature.strip())


def load_key(path: str) -> BackupKey:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(200).strip()
    except OSError as exc:
        raise InputError.at(f"cannot read: {exc.strerror}", file=path, field="--backup-key") from None
    try:
        return BackupKey(Fernet(raw), hashlib.sha256(b"hakeeper backup manifest\0" + raw).digest())
    except ValueError:
        # Never quote the content: it may be a key of another kind.
        raise InputError.at("not a backup key (hakeeper backup keygen FILE makes one)", file=path,
                            field="--backup-key") from None


def decrypt(box: Fernet, data: bytes, where: str) -> bytes:
    try:
        return box.decrypt(data)
    except InvalidToken:
        raise InputError.at("cannot be decrypted with this key (another key, or the file was changed)",
                            file=where) from None
