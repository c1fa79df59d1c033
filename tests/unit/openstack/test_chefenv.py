"""Chef environment import: JSON with lines, the environment checks, the profile it yields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.openstack.chefenv import import_environment, locate_json
from hakeeper.openstack.profile import parse_profile

DATA = Path(__file__).resolve().parents[2] / "data"
SEED = DATA / "chef-cluster01.json"
CONTROLLERS = [("controller01", "10.0.0.11"), ("controller02", "10.0.0.12")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 0, 2]))
def test_locate_json_reads_what_json_reads(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    assert locate_json(text).data == json.loads(text)


def test_locate_json_lines_of_keys() -> None:
    doc = locate_json(SEED.read_text())
    lines = SEED.read_text().splitlines()
    line = doc.line_of(("override_attributes", "vips", "mysql-db"))
    assert line is not None and '"mysql-db"' in lines[line - 1]
    line = doc.line_of(("override_attributes", "nova", "networks", 0, "bridge"))
    assert line is not None and '"bridge"' in lines[line - 1]


@pytest.mark.parametrize("text, where", [
    ('{"a": 1,\n "b": }', "x.json:2: not valid JSON"),
    ('{"a": 1}\n{"b": 2}', "x.json:2: not valid JSON: extra data"),
    ('{"a": 1,\n"a": 2}', "x.json:2: a: duplicate key 'a'"),
])
def test_locate_json_errors(text: str, where: str) -> None:
    with pytest.raises(InputError) as info:
        locate_json(text, "x.json")
    assert where in str(info.value)


def test_seed_environment_imports() -> None:
    profile = parse_profile(import_environment(SEED, CONTROLLERS))
    assert profile.profile.name == "Cluster01"
    assert [c.name for c in profile.profile.controllers] == ["controller01", "controller02"]
    assert str(profile.profile.vips["mysql-db"]) == "10.0.0.21"
    assert len(profile.profile.vips) == 14


def test_not_an_environment(tmp_path: Path) -> None:
    f = tmp_path / "role.json"
    f.write_text('{\n  "name": "ha-controller1",\n  "chef_type": "role",\n  "json_class": "Chef::Role"\n}\n')
    with pytest.raises(InputError) as info:
        import_environment(f, CONTROLLERS)
    assert f"{f}:3: chef_type: not a Chef environment" in str(info.value)


def test_vip_outside_osops_networks(tmp_path: Path) -> None:
    f = tmp_path / "env.json"
    text = SEED.read_text().replace('"10.0.0.23"', '"192.168.7.23"')
    f.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "192.168.7.23" in ln)
    with pytest.raises(InputError) as info:
        import_environment(f, CONTROLLERS)
    assert (f"{f}:{line}: override_attributes.vips.rabbitmq-queue: 192.168.7.23 is outside every "
            "osops_networks network") in str(info.value)


def test_controllers_are_required_and_checked() -> None:
    with pytest.raises(InputError) as info:
        import_environment(SEED, [])
    assert "--controller NAME=ADDRESS" in str(info.value)
    with pytest.raises(InputError) as info:
        import_environment(SEED, [("c1", "10.0.0.11"), ("c2", "172.16.0.2")])
    assert "--controller c2: 172.16.0.2 is outside every network" in str(info.value)
