"""`hakeeper import neutron` on seed 004's neutron.conf and l3_agent.ini, and on broken files."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from seed004 import seed_sections, write_seed_files

from hakeeper.errors import InputError
from hakeeper.l3.neutron import parse_ini, read_neutron
from hakeeper.l3.specfile import parse_router_spec

SRC = Path(__file__).resolve().parents[3] / "src"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_seed_settings(tmp_path: Path) -> None:
    conf, ini = write_seed_files(tmp_path)
    got = read_neutron(str(conf), str(ini))
    s = got.settings
    assert s.l3_ha is True
    assert s.l3_ha_net_cidr == ipaddress.IPv4Network("169.254.192.0/18")
    assert s.max_l3_agents_per_router == 3
    assert s.min_l3_agents_per_router == 2
    assert s.dhcp_agents_per_network == 2
    assert s.ha_vrrp_auth_type == "PASS"
    assert s.ha_vrrp_auth_password is not None and s.ha_vrrp_auth_password.get_secret_value() == "openstack"
    assert s.ha_vrrp_advert_int == 2
    assert s.ha_vrrp_health_check_interval == 0
    # The seed's two network nodes: max 3 means both.
    assert s.replicas(2) == 2
    line = next(n for n, t in enumerate(conf.read_text().split("\n"), 1) if t.startswith("min_l3"))
    assert any(w.startswith(f"{conf}:{line}: min_l3_agents_per_router: removed from Neutron in Ocata")
               for w in got.warnings)


def test_cli_writes_settings_that_load_back(tmp_path: Path) -> None:
    conf, ini = write_seed_files(tmp_path)
    out = tmp_path / "routers.yaml"
    res = run("import", "neutron", "--neutron-conf", str(conf), "--l3-agent-ini", str(ini), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "min_l3_agents_per_router" in res.stderr and "openstack" not in res.stderr
    assert os.stat(out).st_mode & 0o077 == 0  # holds the VRRP password
    data = yaml.safe_load(out.read_text())
    assert data["settings"]["ha-vrrp-auth-password"] == "openstack"
    spec = parse_router_spec(out.read_text(), str(out))
    assert spec.settings.max_l3_agents_per_router == 3 and spec.settings.l3_ha
    # The other kinds of `hakeeper import` still work and still demand their FILE.
    assert run("import", "crm").returncode == 2


def _break(tmp_path: Path, which: int, old: str, new: str) -> tuple[Path, Path, int]:
    conf, ini = write_seed_files(tmp_path)
    target = (conf, ini)[which]
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new))
    line = next(n for n, t in enumerate(target.read_text().split("\n"), 1) if new.split("\n")[0] in t)
    return conf, ini, line


@pytest.mark.parametrize(("which", "old", "new", "key", "why"), [
    (1, "ha_vrrp_auth_type = PASS", "ha_vrrp_auth_type = AH", "ha_vrrp_auth_type", "AH is refused"),
    (1, "ha_vrrp_auth_type = PASS", "ha_vrrp_auth_type = MD5", "ha_vrrp_auth_type", "not a VRRP authentication"),
    (1, "ha_vrrp_advert_int = 2", "ha_vrrp_advert_int = 0", "ha_vrrp_advert_int", "not a VRRPv2 advert interval"),
    (1, "ha_vrrp_advert_int = 2", "ha_vrrp_advert_int = two", "ha_vrrp_advert_int", "not an integer"),
    (0, "l3_ha = True", "l3_ha = maybe", "l3_ha", "not a boolean"),
    (0, "l3_ha_net_cidr = 169.254.192.0/18", "l3_ha_net_cidr = 169.254.192.0/33", "l3_ha_net_cidr",
     "not an IPv4 network"),
    (0, "max_l3_agents_per_router = 3", "max_l3_agents_per_router = 1", "min_l3_agents_per_router",
     "more than max_l3_agents_per_router"),
    (0, "dhcp_agents_per_network = 2", "dhcp_agents_per_network = 0", "dhcp_agents_per_network", "at least 1"),
    (0, "dhcp_agents_per_network = 2", "dhcp_agents_per_network = -2", "dhcp_agents_per_network", "at least 1"),
    (0, "dhcp_agents_per_network = 2", "dhcp_agents_per_network = two", "dhcp_agents_per_network",
     "not an integer"),
])
def test_bad_values_name_file_line_key(tmp_path: Path, which: int, old: str, new: str, key: str, why: str) -> None:
    conf, ini, line = _break(tmp_path, which, old, new)
    target = (conf, ini)[which]
    res = run("import", "neutron", "--neutron-conf", str(conf), "--l3-agent-ini", str(ini))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and not res.stdout
    if key == "min_l3_agents_per_router":  # reported where min is set
        line = next(n for n, t in enumerate(target.read_text().split("\n"), 1) if t.startswith("min_l3"))
    assert f"error: {target}:{line}: {key}: " in res.stderr
    assert why in res.stderr


def test_malformed_line_is_located(tmp_path: Path) -> None:
    conf, ini, line = _break(tmp_path, 1, "use_namespaces = True", "use_namespaces True")
    res = run("import", "neutron", "--neutron-conf", str(conf), "--l3-agent-ini", str(ini))
    assert res.returncode == 2
    assert f"error: {ini}:{line}: not 'key = value'" in res.stderr


def test_password_never_echoed(tmp_path: Path) -> None:
    conf, ini = write_seed_files(tmp_path)
    ini.write_text(ini.read_text().replace("ha_vrrp_advert_int = 2", "ha_vrrp_advert_int = 0"))
    res = run("import", "neutron", "--neutron-conf", str(conf), "--l3-agent-ini", str(ini))
    assert res.returncode == 2 and "openstack" not in res.stderr


def test_l3_agent_ini_overrides_neutron_conf(tmp_path: Path) -> None:
    neutron, l3 = seed_sections()
    conf, ini = tmp_path / "n.conf", tmp_path / "l3.ini"
    conf.write_text(neutron + "ha_vrrp_advert_int = 5\n")
    ini.write_text(l3)
    assert read_neutron(str(conf), str(ini)).settings.ha_vrrp_advert_int == 2
    assert read_neutron(str(conf)).settings.ha_vrrp_advert_int == 5


def test_missing_file() -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_neutron("/nonexistent/neutron.conf")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]=:#; \tabc_123\n")), max_size=200))
def test_parser_never_crashes(text: str) -> None:
    """Arbitrary text: sections or a located InputError, nothing else."""
    try:
        parse_ini(text, "f.ini")
    except InputError as exc:
        assert all(p.file == "f.ini" and p.line is not None for p in exc.problems)
