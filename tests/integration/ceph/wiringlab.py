"""Seed 001's hosts around the Ceph lab: two controllers and a compute, each a namespace on the
cluster's network with its own root directory standing for /, the service users, and the profile
that wires them (storage section included). Shared by the wiring tests and bench/ceph_wiring.py."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hakeeper.ceph.lab import CephLab

SERVICE_USERS = ("glance", "cinder", "nova")
HOSTS = ("controller01", "controller02", "compute1")

PROFILE = """\
name: seed001
networks: {{management: 10.87.{subnet}.0/24}}
controllers:
  - {{name: controller01, address: 10.87.{subnet}.10}}
  - {{name: controller02, address: 10.87.{subnet}.11}}
vips: {{glance-api: 10.87.{subnet}.100}}
storage:
  cluster: {{conf: {conf}, keyring: {keyring}}}
  state: {state}
  pools:
    volumes: {{pg-num: 16}}
    images: {{pg-num: 16}}
    vms: {{pg-num: 16}}
  computes:
    - {{name: compute1, address: 10.87.{subnet}.12}}
  glance: {{hosts: [controller01]}}
  cinder: {{hosts: [controller01]}}
  nova: {{hosts: [compute1]}}
  hosts:
{hosts}"""


MARK = "hakeeper ceph test user"  # the GECOS field of the users these tests create


def ensure_users(names: tuple[str, ...] = SERVICE_USERS) -> list[str]:
    """The service users, created (system users, no home, marked) where missing; returns those created."""
    made = []
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "--comment", MARK, name], check=True, capture_output=True)
            made.append(name)
    return made


def remove_users(names: tuple[str, ...] = SERVICE_USERS) -> None:
    """Remove the users a test run made (marked), once no other run's hosts are left: two runs at
    once (the tests and the benchmark) share the system's users, and the first to finish must not
    take them from the other."""
    if glob.glob("/var/tmp/hkce-roots-*"):
        return
    for name in names:
        try:
            if pwd.getpwnam(name).pw_gecos == MARK:
                subprocess.run(["userdel", name], capture_output=True)
        except KeyError:
            pass


@dataclass
class Wired:
    ceph: CephLab
    roots: dict[str, str]
    profile: str
    state: str

    def root(self, host: str, path: str) -> str:
        return os.path.join(self.roots[host], path.lstrip("/"))


@contextmanager
def wired(ceph: CephLab, hosts: tuple[str, ...] = HOSTS) -> Iterator[Wired]:
    """The hosts (namespaces and roots), the users and the profile; everything removed afterwards."""
    ensure_users()
    top = tempfile.mkdtemp(prefix="hkce-roots-", dir="/var/tmp")
    os.chmod(top, 0o755)
    try:
        roots = {}
        lines = []
        for h in hosts:
            ns = ceph.extra_hosts[h].ns if h in ceph.extra_hosts else ceph.add_host(h).ns
            roots[h] = os.path.join(top, h)
            os.makedirs(roots[h], mode=0o755)
            lines.append(f"    {h}: {{root: {roots[h]}, netns: {ns}}}")
        state = os.path.join(top, "state", "ceph-state.json")
        text = PROFILE.format(subnet=ceph.subnet, conf=ceph.conf_path, keyring=ceph.admin_keyring, state=state,
                              hosts="\n".join(lines) + "\n")
        profile = os.path.join(top, "profile.yaml")
        with open(profile, "w") as f:
            f.write(text)
        yield Wired(ceph, roots, profile, state)
    finally:
        shutil.rmtree(top, ignore_errors=True)
        remove_users()
