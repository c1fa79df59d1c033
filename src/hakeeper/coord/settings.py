"""Where the store is and how to reach it securely: flags, environment, and a config file.

Each setting comes from its flag, else its environment variable, else the config file
(--config, else $HAKEEPER_CONFIG, else /etc/hakeeper/hakeeper.conf when it exists), so an
operator writes the endpoints and certificates once per host. The file is `name = value` lines
with `#` comments; the names are the flags' (etcd, store, cacert, cert, key, etcd-user,
etcd-password-file). The etcd password is never a flag (the command line is visible to every
user through ps): it comes from a file named by --etcd-password-file, or $HAKEEPER_ETCD_PASSWORD.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from hakeeper.coord.etcd import parse_endpoints
from hakeeper.coord.tls import EtcdSecurity, read_password_file
from hakeeper.errors import InputError, read_input_text

DEFAULT_CONFIG = "/etc/hakeeper/hakeeper.conf"

# name in the file and flag -> (argparse attribute, environment variable)
SETTINGS: dict[str, tuple[str, str]] = {
    "etcd": ("etcd", "HAKEEPER_ETCD"),
    "store": ("store", "HAKEEPER_STORE"),
    "cacert": ("cacert", "HAKEEPER_CACERT"),
    "cert": ("cert", "HAKEEPER_CERT"),
    "key": ("key", "HAKEEPER_KEY"),
    "etcd-user": ("etcd_user", "HAKEEPER_ETCD_USER"),
    "etcd-password-file": ("etcd_password_file", "HAKEEPER_ETCD_PASSWORD_FILE"),
}
_PASSWORD_VARIABLE = "HAKEEPER_ETCD_PASSWORD"


@dataclass(frozen=True)
class Setting:
    value: str
    where: str  # "FILE:LINE", for messages


class _RefusePassword(argparse.Action):
    """`--etcd-password VALUE` exists only to be refused without echoing VALUE (unknown, it
    would abbreviate --etcd-password-file, and a file name error would print the password)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            "--etcd-password: a password on the command line is visible to every user (ps); "
            f"put it in a file for --etcd-password-file, or in ${_PASSWORD_VARIABLE}"
        )


def add_security_args(p: argparse.ArgumentParser) -> None:
    """The flags of a command that reaches the store (besides --etcd/--store)."""
    p.add_argument("--config", help=f"config file (default $HAKEEPER_CONFIG, else {DEFAULT_CONFIG} if present)")
    p.add_argument("--cacert", help="CA certificate that signed etcd's server certificate (TLS; $HAKEEPER_CACERT)")
    p.add_argument("--cert", help="this client's certificate for etcd (its CN is the etcd user; $HAKEEPER_CERT)")
    p.add_argument("--key", help="the private key of --cert ($HAKEEPER_KEY)")
    p.add_argument("--etcd-user", help="etcd user for password authentication ($HAKEEPER_ETCD_USER)")
    p.add_argument(
        "--etcd-password-file",
        help=f"file holding the etcd user's password (or ${_PASSWORD_VARIABLE}; never on the command line)",
    )
    p.add_argument("--etcd-password", action=_RefusePassword, help=argparse.SUPPRESS)


def read_config(path: str) -> dict[str, Setting]:
    """The settings in a config file; InputError naming file, line and name when wrong."""
    text = read_input_text(path)
    found: dict[str, Setting] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = (part.strip() for part in line.partition("="))
        if not equals:
            raise InputError.at("expected `name = value`", file=path, line=number)
        if name == "etcd-password":
            raise InputError.at(
                "no password in the config file: put it in a file of its own (mode 0600) and name that "
                "file with etcd-password-file",
                file=path,
                line=number,
                field=name,
            )
        if name not in SETTINGS:
            raise InputError.at(f"unknown setting (known: {', '.join(SETTINGS)})", file=path, line=number, field=name)
        if name in found:
            raise InputError.at(
                f"set twice (first on line {found[name].where.rsplit(':', 1)[1]})", file=path, line=number, field=name
            )
        if not value:
            raise InputError.at("empty value", file=path, line=number, field=name)
        if name == "etcd":
            parse_endpoints(value, f"{path}:{number}")
        found[name] = Setting(value, f"{path}:{number}")
    return found


def _config_path(args: argparse.Namespace) -> tuple[str, bool] | None:
    """The config file to read and whether it was asked for (a missing one is then an error)."""
    explicit = getattr(args, "config", None) or os.environ.get("HAKEEPER_CONFIG")
    if explicit:
        return explicit, True
    return (DEFAULT_CONFIG, False) if os.path.exists(DEFAULT_CONFIG) else None


def apply_config(args: argparse.Namespace) -> None:
    """Fill every store setting that neither a flag nor its variable gives from the config file,
    and note where each came from (args.setting_sources: name -> flag, variable or FILE:LINE)."""
    sources: dict[str, str] = {}
    for name, (attr, variable) in SETTINGS.items():
        if getattr(args, attr, None):
            sources[name] = f"--{name}"
        elif os.environ.get(variable):
            if name not in ("etcd", "store"):  # those two the command reads itself, naming the variable
                setattr(args, attr, os.environ[variable])
            sources[name] = variable
    chosen = _config_path(args)
    if chosen is not None:
        path, explicit = chosen
        if not explicit or os.path.exists(path):
            settings = read_config(path)
        else:
            raise InputError.at("config file not found", file=path)
        # The store given by a flag or variable wins as a whole: etcd from the file is not
        # mixed with a --store socket.
        store_given = any(n in sources for n in ("etcd", "store"))
        for name, setting in settings.items():
            if name in sources or (store_given and name in ("etcd", "store")):
                continue
            attr = SETTINGS[name][0]
            if hasattr(args, attr):
                setattr(args, attr, setting.value)
                sources[name] = setting.where
    args.setting_sources = sources


def etcd_security(args: argparse.Namespace) -> EtcdSecurity | None:
    """The TLS and authentication settings (after apply_config), or None for plain text."""
    sources: dict[str, str] = getattr(args, "setting_sources", {})
    cacert, cert, key = (getattr(args, a, None) for a in ("cacert", "cert", "key"))
    user = getattr(args, "etcd_user", None)
    password_file = getattr(args, "etcd_password_file", None)
    password = None
    if password_file:
        password = read_password_file(password_file, sources.get("etcd-password-file", "--etcd-password-file"))
    elif os.environ.get(_PASSWORD_VARIABLE):
        password = os.environ[_PASSWORD_VARIABLE]
    if password and not user:
        raise InputError.at("a password is given but no user: set --etcd-user too", field="--etcd-user")
    if user and not password:
        raise InputError.at(
            f"--etcd-user needs a password: --etcd-password-file FILE or ${_PASSWORD_VARIABLE}",
            field=sources.get("etcd-user", "--etcd-user"),
        )
    if not (cacert or cert or key or user):
        return None
    names = {"cacert": "cacert", "cert": "cert", "key": "key"}
    return EtcdSecurity(cacert, cert, key, user, password, {n: sources.get(n, f"--{n}") for n in names})
