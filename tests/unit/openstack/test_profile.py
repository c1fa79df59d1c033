"""The profile: checks with located errors, and what the renderers make of it."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.openstack.profile import CATALOGUE, load_profile, parse_profile
from hakeeper.openstack.render import render_haproxy, render_keepalived, render_spec
from hakeeper.spec.checks import find_problems

DATA = Path(__file__).resolve().parents[2] / "data"

BASE = """\
name: t
networks:
  mgmt: 10.93.1.0/24
controllers:
  - name: c1
    address: 10.93.1.11
  - name: c2
    address: 10.93.1.12
  - name: c3
    address: 10.93.1.13
vips:
  nova-api: 10.93.1.100
  mysql-db: 10.93.1.101
"""


def error_of(text: str) -> str:
    with pytest.raises(InputError) as info:
        parse_profile(text, "p.yaml")
    return str(info.value)


def test_seed_profile_listeners() -> None:
    r = load_profile(DATA / "profile-cluster01.yaml")
    names = [x.name for x in r.listeners]
    assert "keystone-internal-api" not in names  # folded into the public listener, as rcbops does
    ks = next(x for x in r.listeners if x.name == "keystone-service-api")
    assert ks.aliases == ("keystone-internal-api",)
    assert [x.name for x in r.unproxied] == ["rabbitmq-queue"]
    assert [str(a) for a in r.vip_addresses()] == ["10.0.0.21", "10.0.0.22"]
    assert len(set(r.vrids.values())) == 2


def test_vip_outside_every_network() -> None:
    msg = error_of(BASE.replace("mysql-db: 10.93.1.101", "mysql-db: 10.93.2.101"))
    assert "p.yaml:13: vips.mysql-db: 10.93.2.101 is outside every network" in msg


def test_two_services_on_one_vip_and_port() -> None:
    text = BASE + "  keystone-service-api: 10.93.1.100\n" + "services:\n  keystone-service-api: {port: 8774}\n"
    msg = error_of(text)
    assert "p.yaml:14: vips.keystone-service-api: 10.93.1.100:8774 is already nova-api's listener" in msg


def test_internal_api_on_another_port_is_its_own_listener() -> None:
    text = BASE + "  keystone-service-api: 10.93.1.100\n  keystone-internal-api: 10.93.1.100\n"
    text += "services:\n  keystone-internal-api: {port: 5001}\n"
    r = parse_profile(text)
    assert {x.name for x in r.listeners} >= {"keystone-service-api", "keystone-internal-api"}


def test_missing_controller_address() -> None:
    msg = error_of(BASE.replace("    address: 10.93.1.12\n", ""))
    assert re.search(r"p.yaml:7: controllers.1.address: Field required", msg), msg


def test_controller_outside_networks_and_unknown_service() -> None:
    msg = error_of(BASE.replace("10.93.1.13", "192.0.2.13") + "  swift-proxy: 10.93.1.100\n")
    assert "p.yaml:10: controllers.2.address: 192.0.2.13 is outside every network" in msg
    assert "p.yaml:14: vips.swift-proxy: unknown service 'swift-proxy'" in msg


def test_vip_is_a_controller_address() -> None:
    assert "c1's own address" in error_of(BASE.replace("10.93.1.101", "10.93.1.11"))


def test_typo_is_refused() -> None:
    assert "p.yaml:2: netwroks: Extra inputs are not permitted" in error_of(BASE.replace("networks", "netwroks"))


def test_cli_exit_status_2(tmp_path: Path) -> None:
    from hakeeper.cli import main

    bad = tmp_path / "p.yaml"
    bad.write_text(BASE.replace("10.93.1.101", "10.9.9.9"))
    assert main(["openstack", "render", str(bad), "-o", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_keepalived_priorities_descend_and_weight_dominates() -> None:
    r = parse_profile(BASE)
    prios = []
    for c in ("c1", "c2", "c3"):
        conf = render_keepalived(r, c)
        found = {int(p) for p in re.findall(r"^\s+priority (\d+)$", conf, re.M)}
        assert len(found) == 1
        prios.append(found.pop())
        weight = int(re.search(r"weight -(\d+)", conf).group(1))  # type: ignore[union-attr]
    assert prios == sorted(prios, reverse=True) and len(set(prios)) == 3
    # A master whose haproxy fails drops below the lowest healthy controller.
    assert prios[0] - weight < prios[-1]


def test_mysql_single_writer_rabbit_not_proxied() -> None:
    text = BASE + "  rabbitmq-queue: 10.93.1.102\n"
    cfg = render_haproxy(parse_profile(text))
    mysql = cfg.split("listen mysql-db")[1].split("\n\n")[0]
    servers = [ln for ln in mysql.splitlines() if ln.strip().startswith("server ")]
    assert len(servers) == 3 and not servers[0].endswith("backup") and all(s.endswith("backup") for s in servers[1:])
    assert "listen rabbitmq-queue" not in cfg and "rabbitmq-queue is not behind haproxy" in cfg
    on_vip = render_haproxy(parse_profile(text + "rabbitmq-on-vip: true\n"))
    assert "listen rabbitmq-queue" in on_vip


def test_the_mysql_stick_table_is_shared_by_every_controller() -> None:
    cfg = render_haproxy(parse_profile(BASE + "haproxy: {peers-port: 7000}\n"))
    peers = cfg.split("peers hakeeper\n")[1].split("\n\n")[0].splitlines()
    assert peers == [f"    peer c{i} 10.93.1.1{i}:7000" for i in (1, 2, 3)]
    mysql = cfg.split("listen mysql-db")[1].split("\n\n")[0]
    assert "stick-table type ip size 1 peers hakeeper" in mysql
    # Nothing to share without MySQL on a VIP.
    no_mysql = BASE.replace("  mysql-db: 10.93.1.101\n", "")
    assert "peers" not in render_haproxy(parse_profile(no_mysql))


def test_cluster_mode_spec_has_vips_with_haproxy() -> None:
    spec = render_spec(parse_profile(BASE + "vip-mode: cluster\n"))
    assert find_problems(spec) == []
    vips = [p for p in spec.resources.primitives if str(p.agent) == "vip"]
    assert sorted(p.params["ip"] for p in vips) == ["10.93.1.100", "10.93.1.101"]
    assert {c.with_resource for c in spec.constraints.colocation} == {"haproxy-clone"}
    vrrp_spec = render_spec(parse_profile(BASE))
    assert not [p for p in vrrp_spec.resources.primitives if str(p.agent) == "vip"]
    assert any(c.id == "haproxy-clone" for c in vrrp_spec.resources.clones)


HTTP_SERVICES = [n for n, s in CATALOGUE.items() if s.proxied and s.same_as is None]


@settings(max_examples=60, deadline=None)
@given(
    picks=st.dictionaries(st.sampled_from(HTTP_SERVICES), st.integers(100, 103), min_size=1),
    n=st.integers(2, 5),
)
def test_every_service_gets_one_listener_on_every_controller(picks: dict[str, int], n: int) -> None:
    controllers = "".join(f"  - {{name: c{i}, address: 10.93.1.{10 + i}}}\n" for i in range(n))
    vips = "".join(f"  {name}: 10.93.1.{host}\n" for name, host in picks.items())
    text = f"networks: {{m: 10.93.1.0/24}}\ncontrollers:\n{controllers}vips:\n{vips}"
    r = parse_profile(text)
    cfg = render_haproxy(r)
    assert render_haproxy(r) == cfg  # deterministic
    binds = re.findall(r"^    bind (\S+)$", cfg, re.M)
    assert len(binds) == len(set(binds)) == len(picks) + 1  # + the monitor frontend
    for name, host in picks.items():
        block = cfg.split(f"listen {name}\n")[1].split("\n\n")[0]
        assert f"bind 10.93.1.{host}:{CATALOGUE[name].port}" in block
        assert block.count("    server ") == n
    assert set(r.vrids) == {ipaddress.IPv4Address(f"10.93.1.{h}") for h in picks.values()}


def test_sub_second_adverts_need_vrrp_version_3() -> None:
    msg = error_of(BASE + "vrrp: {advert-int: 0.1}\n")
    assert "p.yaml:14: vrrp.advert-int: VRRP version 2 adverts in whole seconds" in msg
    conf = render_keepalived(parse_profile(BASE + "vrrp: {advert-int: 0.1, version: 3}\n"), "c2")
    assert "    advert_int 0.1\n    version 3\n" in conf


def test_masters_refresh_their_gratuitous_arps(tmp_path: Path) -> None:
    """Every second by default, so a host whose ARP cache a second master (a partition) pointed
    elsewhere learns the holder again; 0 leaves only keepalived's takeover bursts. hakeeper's
    own reader finds the same interval in the file."""
    from hakeeper.vrrp.kaconf import read_keepalived

    for extra, meant in (("", 1.0), ("vrrp: {garp-refresh: 7}\n", 7.0), ("vrrp: {garp-refresh: 0}\n", 0.0)):
        conf = render_keepalived(parse_profile(BASE + extra), "c1")
        assert conf.count("    garp_master_refresh ") == (2 if meant else 0), conf
        path = tmp_path / "k.conf"
        path.write_text(conf)
        assert [i.garp.master_refresh for i in read_keepalived(str(path)).instances] == [meant, meant]
    assert "p.yaml:14: vrrp.garp-refresh" in error_of(BASE + "vrrp: {garp-refresh: -1}\n")


def test_hakeepers_vrrp_reads_the_generated_keepalived_conf(tmp_path: Path) -> None:
    from hakeeper.vrrp.kaconf import read_keepalived

    r = load_profile(DATA / "profile-cluster01.yaml")
    for i, c in enumerate(r.profile.controllers):
        path = tmp_path / f"{c.name}.conf"
        path.write_text(render_keepalived(r, c.name))
        cfg = read_keepalived(str(path))
        assert sorted(inst.vrid for inst in cfg.instances) == sorted(r.vrids.values())
        assert {inst.priority for inst in cfg.instances} == {r.priority(i)}
        assert all([t.name for t in inst.track_scripts] == ["chk_haproxy"] for inst in cfg.instances)
        script = cfg.scripts["chk_haproxy"]
        assert "haproxy-alive" in script.script and script.weight < 0 and script.fall == 2
        # Only keepalived's script-security settings are ignored: they change no VRRP behaviour.
        assert all(p.field and p.field.startswith("global_defs.") for p in cfg.warnings)


def _mysql_listener(text: str) -> str:
    return render_haproxy(parse_profile(text)).split("listen mysql-db")[1].split("\n\n")[0]


def test_mysql_is_checked_by_each_controllers_galera_clustercheck() -> None:
    mysql = _mysql_listener(BASE)
    assert "option httpchk GET /" in mysql and "http-check expect status 200" in mysql
    assert "mysql-check" not in mysql
    servers = [ln.split() for ln in mysql.splitlines() if ln.strip().startswith("server ")]
    assert all(words[words.index("port") + 1] == "9200" for words in servers)
    # The check has something to ask: the clustercheck runs on every controller.
    spec = render_spec(parse_profile(BASE))
    assert find_problems(spec) == []
    check = next(p for p in spec.resources.primitives if p.id == "galera-clustercheck")
    assert check.params["command"] == "hakeeper galera clustercheck --port 9200"
    assert any(c.child == "galera-clustercheck" for c in spec.resources.clones)


def test_a_plain_mysql_keeps_the_handshake_check_and_runs_no_clustercheck() -> None:
    plain = BASE + "services:\n  mysql-db: {check: mysql}\n"
    mysql = _mysql_listener(plain)
    assert "option mysql-check user haproxy_check post-41" in mysql and " port " not in mysql
    assert not any("clustercheck" in p.id for p in render_spec(parse_profile(plain)).resources.primitives)
    moved = _mysql_listener(BASE + "services:\n  mysql-db: {check-port: 9201}\n")
    servers = [ln for ln in moved.splitlines() if ln.strip().startswith("server ")]
    assert len(servers) == 3 and all(" port 9201 " in ln for ln in servers)
