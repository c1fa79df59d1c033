"""netlab: hosts on a bridge, link cuts, separate segments, cleanup, concurrent labs."""

from __future__ import annotations

import subprocess

import pytest

from conftest import needs_root
from hakeeper.netlab import Lab
from hakeeper.netlab.lab import namespaces


def test_hosts_links_and_cleanup() -> None:
    needs_root()
    with Lab("hkv") as lab, Lab("hkv") as other:
        a = lab.host("a", {"eth0": ["10.91.9.1/24"], "eth1": ["10.91.10.1/24"]}, segments={"eth1": "br1"})
        b = lab.host("b", {"eth0": ["10.91.9.2/24"], "eth1": ["10.91.10.2/24"]}, segments={"eth1": "br1"})
        # A second lab at the same time, same addresses: a separate world.
        c = other.host("a", {"eth0": ["10.91.9.2/24"]})
        assert a.run(["ping", "-c1", "-W1", "10.91.9.2"]).returncode == 0
        assert a.run(["ping", "-c1", "-W1", "10.91.10.2"]).returncode == 0
        b.cut("eth0")
        assert "NO-CARRIER" in b.ip("link", "show", "eth0").stdout
        assert a.run(["ping", "-c1", "-W1", "10.91.9.2"]).returncode != 0
        assert a.run(["ping", "-c1", "-W1", "10.91.10.2"]).returncode == 0  # other segment
        b.restore("eth0")
        assert a.run(["ping", "-c2", "-W2", "10.91.9.2"]).returncode == 0
        proc = a.spawn(["sleep", "60"])
        assert c.has_address("eth0", "10.91.9.2") and not a.has_address("eth0", "10.91.9.2")
        names = {a.ns, b.ns, c.ns, lab.switch, other.switch}
        assert names <= set(namespaces())
    assert proc.poll() is not None
    assert not names & set(namespaces())


def test_prefix_must_leave_room() -> None:
    with pytest.raises(ValueError):
        Lab("toolongprefix")


def test_root_namespace_attached_and_detached() -> None:
    needs_root()
    with Lab("hkv") as lab:
        a = lab.host("a", {"eth0": ["10.91.11.1/24"]})
        link = lab.attach_root("10.91.11.254/24")
        up = subprocess.run(["ip", "-o", "addr", "show", "dev", link], capture_output=True, text=True)
        assert "10.91.11.254/24" in up.stdout
        # The test process itself reaches the host, and the host reaches it back.
        assert subprocess.run(["ping", "-c1", "-W2", "10.91.11.1"], capture_output=True).returncode == 0
        assert a.run(["ping", "-c1", "-W2", "10.91.11.254"]).returncode == 0
        with pytest.raises(RuntimeError):
            lab.attach_root("10.91.11.253/24")
    gone = subprocess.run(["ip", "link", "show", "dev", link], capture_output=True, text=True)
    assert gone.returncode != 0
