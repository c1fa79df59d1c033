"""Nothing typed into a profile adds a line to haproxy.cfg or keepalived.conf: every field that is
written is checked with its location, and the renderers read their output back and compare it with
what was meant, so a value that slipped through anyway stops the rendering."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.openstack.profile import Resolved, parse_profile
from hakeeper.openstack.render import (
    RenderMismatch,
    haproxy_parts,
    keepalived_plan,
    render_haproxy,
    render_keepalived,
    verify_haproxy,
    verify_keepalived,
)

BASE = """\
name: t
networks:
  mgmt: 10.93.1.0/24
controllers:
  - name: c1
    address: 10.93.1.11
  - name: c2
    address: 10.93.1.12
vips:
  nova-api: 10.93.1.100
  mysql-db: 10.93.1.101
  rabbitmq-queue: 10.93.1.102
"""


def _quoted(text: str) -> str:
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def _located(text: str) -> tuple[int | None, str | None, str]:
    with pytest.raises(InputError) as caught:
        parse_profile(text, "p.yaml")
    p = caught.value.problems[0]
    assert p.file == "p.yaml"
    return p.line, p.field, p.message


@pytest.mark.parametrize("value", ["/v2.1\n    server evil 6.6.6.6:80", "/a b", "/x#y", "/\r", "no-slash",
                                   "/\"q", "/${HOME}"])
def test_a_check_path_that_would_break_haproxy_cfg_is_refused(value: str) -> None:
    line, field, _ = _located(BASE + f"services:\n  nova-api: {{check-path: {_quoted(value)}}}\n")
    assert (line, field) == (14, "services.nova-api.check-path")


@pytest.mark.parametrize("value", ["eth0\n    notify_master /bin/evil", "eth 0", "eth0!", "a" * 16, "../x", "",
                                   "-eth0", "eth0:1"])
def test_an_interface_name_that_would_break_keepalived_conf_is_refused(value: str) -> None:
    line, field, _ = _located(BASE + f"vrrp: {{interface: {_quoted(value)}}}\n")
    assert (line, field) == (13, "vrrp.interface")
    text = BASE.replace("    address: 10.93.1.12\n", f"    address: 10.93.1.12\n    interface: {_quoted(value)}\n")
    line, field, _ = _located(text)
    assert (line, field) == (9, "controllers.1.interface")


@pytest.mark.parametrize("field,text", [
    ("controllers.0.name", BASE.replace("name: c1", 'name: "c1\\n    server x 1.2.3.4:1"')),
    ("name", BASE.replace("name: t", 'name: "t\\nglobal"')),
    ("vips.nova api", BASE.replace("  nova-api:", "  nova api:")),
    ("vrrp.auth-pass", BASE + 'vrrp: {auth-pass: "a\\nb"}\n'),
    ("vrrp.auth-pass", BASE + 'vrrp: {auth-pass: "a b"}\n'),
    ("vrrp.auth-pass", BASE + "vrrp: {auth-pass: 'a#b'}\n"),
    ("vrrp.auth-pass", BASE + "vrrp: {version: 3, auth-pass: abc}\n"),
    ("haproxy.pidfile", BASE + 'haproxy: {pidfile: "/run/x.pid\\nlisten evil"}\n'),
    ("haproxy.stats-socket", BASE + "haproxy: {stats-socket: relative.sock}\n"),
    ("haproxy.timeout-client", BASE + 'haproxy: {timeout-client: "1m\\n    bind :1"}\n'),
    ("services.x-api.unit", BASE + 'services:\n  x-api: {port: 1234, unit: "../x"}\n'),
])
def test_every_written_field_is_checked(field: str, text: str) -> None:
    line, got, _ = _located(text)
    assert got == field and line is not None


def _resolved(extra: str = "") -> Resolved:
    return parse_profile(BASE + extra, "p.yaml")


VARIANTS = ["", "vrrp: {version: 3, advert-int: 0.5}\n", "vrrp: {auth-pass: s3cretx}\n",
            "vrrp: {preempt: false, haproxy-check: process}\n",
            "services:\n  nova-api: {check-path: '/v2.1/healthcheck?x=1'}\n",
            "rabbitmq-on-vip: true\n"]


@pytest.mark.parametrize("extra", VARIANTS)
def test_renderings_read_back_as_meant(extra: str) -> None:
    resolved = _resolved(extra)
    text = render_haproxy(resolved)
    verify_haproxy(text, haproxy_parts(resolved))
    for c in resolved.profile.controllers:
        verify_keepalived(render_keepalived(resolved, c.name), keepalived_plan(resolved, c.name))


@pytest.mark.parametrize("tamper", [
    lambda t: t.replace("    option forwardfor", "    option forwardfor\n    server evil 6.6.6.6:80", 1),
    lambda t: t.replace("option httpchk GET /", "option httpchk GET / HTTP/1.0", 1),
    lambda t: t.replace("balance roundrobin", "balance roundrobin # cut", 1) + "\nlisten x\n",
    lambda t: t.replace("    retries 3\n", "", 1),
    lambda t: t.replace("maxconn 4096", 'maxconn "4096"', 1),
    lambda t: t + "\ninclude /etc/evil\n",
])
def test_a_tampered_haproxy_cfg_is_caught(tamper: object) -> None:
    resolved = _resolved()
    parts = haproxy_parts(resolved)
    text = render_haproxy(resolved)
    assert callable(tamper)
    with pytest.raises(RenderMismatch):
        verify_haproxy(tamper(text), parts)


@pytest.mark.parametrize("tamper", [
    lambda t: t.replace("    interface eth0\n", "    interface eth0\n    notify_master /bin/evil\n", 1),
    lambda t: t.replace("    priority 150\n", "    priority 150\n    priority 255\n", 1),
    lambda t: t.replace("dev eth0\n", "dev eth0\n        6.6.6.6/32 dev eth0\n", 1),
    lambda t: t + "include /etc/shadow\n",
    lambda t: t + "virtual_server 10.0.0.1 80 {\n}\n",
    lambda t: t.replace("interface eth0", "interface eth1", 1),
    lambda t: t.replace("weight -20", "weight 0", 1),
    lambda t: t.replace("virtual_router_id 51", "virtual_router_id 52", 1),
])
def test_a_tampered_keepalived_conf_is_caught(tamper: object, tmp_path: Path) -> None:
    resolved = _resolved()
    plan = keepalived_plan(resolved, "c1")
    text = render_keepalived(resolved, "c1")
    assert callable(tamper)
    tampered = tamper(text)
    assert tampered != text
    with pytest.raises(RenderMismatch):
        verify_keepalived(tampered, plan)


def test_a_tampered_auth_password_is_caught() -> None:
    resolved = _resolved("vrrp: {auth-pass: abc}\n")
    plan = keepalived_plan(resolved, "c2")
    text = render_keepalived(resolved, "c2")
    with pytest.raises(RenderMismatch):
        verify_keepalived(text.replace("auth_pass abc", "auth_pass abd"), plan)


def test_a_value_that_slipped_past_the_profile_stops_the_rendering() -> None:
    # As if a check had been forgotten: the value is put into the checked profile directly.
    resolved = _resolved()
    bad_vrrp = resolved.profile.vrrp.model_copy(update={"interface": "eth0\n    notify_master /bin/evil"})
    profile = resolved.profile.model_copy(update={"vrrp": bad_vrrp})
    with pytest.raises(RenderMismatch):
        render_keepalived(dataclasses.replace(resolved, profile=profile), "c1")
    bad_haproxy = resolved.profile.haproxy.model_copy(update={"pidfile": "/run/h.pid\nlisten evil"})
    profile = resolved.profile.model_copy(update={"haproxy": bad_haproxy})
    with pytest.raises(RenderMismatch):
        render_haproxy(dataclasses.replace(resolved, profile=profile))


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_any_accepted_check_path_renders_and_reads_back(path: str) -> None:
    try:
        resolved = _resolved(f"services:\n  nova-api: {{check-path: {_quoted('/' + path)}}}\n")
    except InputError:
        return
    text = render_haproxy(resolved)
    assert f"option httpchk GET /{path}\n" in text


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("extra", VARIANTS)
def test_haproxy_accepts_the_rendering(extra: str, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_haproxy(_resolved(extra)), encoding="utf-8")
    done = subprocess.run(["haproxy", "-c", "-L", "c1", "-f", str(path)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
