"""keepalived.conf and YAML readers: what is applied, warned about, refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from hakeeper.errors import InputError
from hakeeper.vrrp.config import check_host
from hakeeper.vrrp.kaconf import read_keepalived
from hakeeper.vrrp.packet import AUTH_PASS
from hakeeper.vrrp.yamlconf import read_yaml

DATA = Path(__file__).parent.parent / "data" / "vrrp"


def test_seed_003_reads_unchanged_with_warnings() -> None:
    path = str(DATA / "seed003-9lpo192.conf")
    cfg = read_keepalived(path)
    (inst,) = cfg.instances
    assert (inst.name, inst.interface, inst.vrid, inst.priority, inst.state) == ("nooip", "eth0", 200, 200,
                                                                                  "MASTER")
    assert inst.version == 2 and inst.advert_int == 1.0
    assert inst.auth_type == AUTH_PASS and inst.auth_pass == b"Laevei0k"
    assert [str(v.address) for v in inst.vips] == ["172.16.9.200/24"]
    warned = {(w.field, w.line) for w in cfg.warnings}
    assert ("global_defs.notification_email", 2) in warned
    assert ("global_defs.smtp_server", 6) in warned
    assert ("nooip.auth_pass", 18) in warned
    assert all(w.file == path for w in cfg.warnings)


def write(tmp_path: Path, text: str, name: str = "k.conf") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


INST = """vrrp_instance vi {{
    interface eth0
    virtual_router_id {vrid}
    priority {prio}
    advert_int {adv}
    {extra}
    virtual_ipaddress {{
        10.91.0.100/24 dev eth0 label eth0:vip
    }}
}}
"""


def inst(vrid: int = 1, prio: int = 100, adv: str = "1", extra: str = "", head: str = "") -> str:
    return head + INST.format(vrid=vrid, prio=prio, adv=adv, extra=extra)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (inst(vrid=0), 3, "VRID 0 is outside 1-255"),
        (inst(vrid=256), 3, "outside 1-255"),
        (inst(prio=256), 4, "priority 256"),
        (inst(adv="0.5"), 5, "VRRPv2 carries whole seconds"),
        (inst(adv="0.005", head="global_defs {\n vrrp_version 3\n}\n"), 8, "VRRPv3 carries"),
        (inst(extra="priorty 5"), 6, "unknown keyword"),
        (inst(extra="use_vmac"), 6, "not supported"),
        (inst(extra="authentication {\n auth_type AH\n auth_pass x\n }"), 7, "AH is not supported"),
        (inst(extra="virtual_router_id x"), 6, "not a whole number"),
        ("vrrp_instance vi {\n interface eth0\n", 1, "never closed"),
        ("vrrp_instanse vi {\n}\n", 1, "unknown keyword"),
        (inst(extra="track_script {\n nope\n }"), 6, "no vrrp_script 'nope'"),
        (INST.format(vrid=1, prio=100, adv="1", extra="").replace("label eth0:vip", "scope galaxy"), 7,
         "scope 'galaxy'"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_keepalived(path)
    assert any(p.file == path and p.line == line and needle in p.message for p in err.value.problems), str(
        err.value)


def test_full_instance_and_include(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, """vrrp_script chk {
    script "/bin/sh -c 'exit 0'"
    interval 2
    weight -30
    fall 2
}
""", "conf.d/scripts.conf")
    path = write(tmp_path, """global_defs {
    router_id n1
    vrrp_version 3
    vrrp_garp_master_delay 1
}
include conf.d/*.conf
vrrp_sync_group g {
    group {
        vi
    }
}
""" + inst(adv="0.1", extra="""nopreempt
    preempt_delay 3
    unicast_src_ip 10.91.0.1
    unicast_peer {
        10.91.0.2
    }
    track_script {
        chk weight -50
    }
    track_interface {
        eth1
    }
    notify_master "/bin/echo master"
    garp_master_repeat 2
    virtual_ipaddress_excluded {
        10.91.1.1/24
    }"""))
    cfg = read_keepalived(path)
    (i,) = cfg.instances
    assert i.version == 3 and i.interval_cs == 10 and i.nopreempt and i.preempt_delay == 3
    assert i.unicast_peers == ["10.91.0.2"] and i.unicast_src_ip == "10.91.0.1"
    assert i.track_scripts[0].weight == -50 and cfg.scripts["chk"].weight == -30
    assert cfg.scripts["chk"].script == "/bin/sh -c 'exit 0'"
    assert i.garp.master_delay == 1 and i.garp.master_repeat == 2
    assert i.vips[0].label == "eth0:vip" and str(i.excluded_vips[0].address) == "10.91.1.1/24"
    assert i.notify_master == "/bin/echo master" and cfg.groups[0].members == ["vi"]
    with pytest.raises(InputError) as err:
        check_host(cfg, {"eth0": ["10.91.0.1"]})
    assert "'eth1' does not exist" in str(err.value)
    check_host(cfg, {"eth0": ["10.91.0.1"], "eth1": []})


def test_priority_255_only_for_the_owner(tmp_path: Path) -> None:
    cfg = read_keepalived(write(tmp_path, inst(prio=255)))
    with pytest.raises(InputError, match="address owner"):
        check_host(cfg, {"eth0": ["10.91.0.1"]})
    check_host(cfg, {"eth0": ["10.91.0.100"]})


def test_yaml_form(tmp_path: Path) -> None:
    path = write(tmp_path, """version: 2
scripts:
  chk: {script: /bin/true, weight: 10}
instances:
  - name: nooip
    interface: eth0
    vrid: 200
    priority: 200
    state: MASTER
    auth_pass: Laevei0kifahkeejaiqu
    vips: ["172.16.9.200/24", {address: 172.16.9.201/24, label: "eth0:x"}]
    track_scripts: [chk]
""", "v.yaml")
    cfg = read_yaml(path)
    (i,) = cfg.instances
    assert i.auth_pass == b"Laevei0k" and i.vips[1].label == "eth0:x"
    assert i.vips[0].address == ipaddress.ip_interface("172.16.9.200/24")
    text = "instances:\n  - name: a\n    interface: eth0\n    vrid: 300\n    vips: [10.91.0.1/24]\n"
    bad = write(tmp_path, text, "b.yaml")
    with pytest.raises(InputError) as err:
        read_yaml(bad)
    assert err.value.problems[0].line == 4 and "outside 1-255" in str(err.value)
    typo = write(tmp_path, "instances:\n  - name: a\n    interfase: eth0\n", "c.yaml")
    with pytest.raises(InputError) as err:
        read_yaml(typo)
    assert any(p.line == 3 for p in err.value.problems)


def test_checker_blocks_are_warned_not_applied(tmp_path: Path) -> None:
    path = write(tmp_path, inst() + "virtual_server 10.91.0.100 80 {\n    delay_loop 6\n}\n")
    cfg = read_keepalived(path)
    assert any(w.field == "top.virtual_server" and w.line == 11 and "health checks" in w.message
               for w in cfg.warnings)
