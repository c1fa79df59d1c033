"""oslo.messaging's side of the profile: transport_url (every broker, or the VIP in active/passive
mode), the rabbit options, the refusals, and the rendered file (private, parsed back)."""

from __future__ import annotations

import configparser
import os
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hakeeper.cli import main
from hakeeper.errors import InputError
from hakeeper.openstack.messaging import messaging, render_oslo_messaging
from hakeeper.openstack.profile import parse_profile

BASE = """\
name: t
networks:
  mgmt: 10.93.1.0/24
controllers:
  - {name: c1, address: 10.93.1.11}
  - {name: c2, address: 10.93.1.12}
  - {name: c3, address: 10.93.1.13}
vips:
  nova-api: 10.93.1.100
  rabbitmq-queue: 10.93.1.102
"""


def test_no_messaging_section_renders_nothing() -> None:
    assert render_oslo_messaging(parse_profile(BASE)) is None


def test_cluster_mode_lists_every_broker_with_quorum_queues() -> None:
    m = messaging(parse_profile(BASE + "messaging: {password: s3cret}\n"))
    assert m is not None
    assert m.transport_url == ("rabbit://openstack:s3cret@10.93.1.11:5672,openstack:s3cret@10.93.1.12:5672,"
                               "openstack:s3cret@10.93.1.13:5672/openstack")
    assert m.quorum_queues and (m.heartbeat_timeout_threshold, m.heartbeat_rate) == (60, 3)


def test_active_passive_names_the_vip_alone_with_durable_classic_queues() -> None:
    text = BASE + "messaging: {mode: active-passive, password: pw, vhost: nova, heartbeat-rate: 2}\n"
    m = messaging(parse_profile(text))
    assert m is not None
    assert m.transport_url == "rabbit://openstack:pw@10.93.1.102:5672/nova"
    assert not m.quorum_queues and m.heartbeat_rate == 2


def test_a_port_override_reaches_the_url() -> None:
    m = messaging(parse_profile(BASE + "services: {rabbitmq-queue: {port: 5673}}\nmessaging: {password: p}\n"))
    assert m is not None and m.transport_url.count(":5673") == 3


def test_rendered_options_parse_back() -> None:
    text = render_oslo_messaging(parse_profile(BASE + "messaging: {password: p, quorum-queues: false}\n"))
    assert text is not None
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(text)
    rabbit = ini["oslo_messaging_rabbit"]
    assert rabbit["rabbit_quorum_queue"] == "false" and rabbit["rabbit_ha_queues"] == "false"
    assert rabbit["amqp_durable_queues"] == "true"
    assert rabbit["heartbeat_timeout_threshold"] == "60" and rabbit["heartbeat_rate"] == "3"
    assert ini["DEFAULT"]["transport_url"].startswith("rabbit://openstack:p@10.93.1.11:5672,")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="#\"'\\{}[],:&*!|>%@`"),
               min_size=1, max_size=30))
def test_any_password_round_trips_through_the_url(password: str) -> None:
    import json

    try:
        resolved = parse_profile(BASE + f"messaging: {{password: {json.dumps(password)}}}\n")
    except InputError:
        assume(False)  # a word no configuration file could carry: refused by the profile (tested apart)
        return
    m = messaging(resolved)
    assert m is not None
    first = urllib.parse.urlsplit(m.transport_url.split(",")[0] + "/x")
    assert urllib.parse.unquote(first.password or "") == password
    assert "$" not in m.transport_url  # nothing oslo.config would take for a substitution


@pytest.mark.parametrize("extra, where, words", [
    ("messaging: {mode: active-passive, password: p}\n", "messaging.mode", "rabbitmq-queue"),
    ("rabbitmq-on-vip: true\nmessaging: {mode: active-passive, password: p}\n", "rabbitmq-on-vip", "haproxy"),
    ("messaging: {mode: mirrored, password: p}\n", "messaging.mode", ""),
    ("messaging: {user: openstack}\n", "messaging.password", ""),
    ("messaging: {password: p, vhost: a/b}\n", "messaging.vhost", ""),
    ("messaging: {password: p, heartbeat-rate: 0}\n", "messaging.heartbeat-rate", ""),
])
def test_bad_messaging_sections_are_located(extra: str, where: str, words: str) -> None:
    text = BASE + extra
    if where == "messaging.mode" and "active-passive" in extra:  # the broker's VIP left out
        text = text.replace("  rabbitmq-queue: 10.93.1.102\n", "")
    with pytest.raises(InputError) as info:
        parse_profile(text, "p.yaml")
    message = str(info.value)
    assert "p.yaml" in message and where in message and words in message, message


def test_render_writes_the_fragment_readable_by_its_owner_only(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(BASE + "messaging: {password: s3cret}\n")
    out = tmp_path / "out"
    assert main(["openstack", "render", str(profile), "-o", str(out)]) == 0
    conf = out / "oslo-messaging.conf"
    assert "s3cret" in conf.read_text()
    assert os.stat(conf).st_mode & 0o777 == 0o600
