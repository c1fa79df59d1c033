"""hakeeper's VRRP YAML refuses names, interfaces and numbers the speaker could not use safely,
each with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.errors import InputError
from hakeeper.vrrp.yamlconf import read_yaml

GOOD = {"name": "api", "interface": "eth0", "advert_int": "1", "script": "/bin/true", "dev": "eth0"}
TEXT = """\
scripts:
  chk: {{script: "{script}"}}
instances:
  - name: "{name}"
    interface: "{interface}"
    vrid: 51
    advert_int: {advert_int}
    vips: [{{address: 10.0.0.1/24, dev: "{dev}"}}]
    track_scripts: [chk]
"""


@pytest.mark.parametrize("key,value,line", [
    ("name", "../x", 4), ("name", "a\\nb", 4), ("name", "", 4),
    ("interface", "eth0\\n    notify_master /bin/evil", 5), ("interface", "a" * 16, 5), ("interface", "-x", 5),
    ("advert_int", ".nan", 7), ("advert_int", ".inf", 7),
    ("script", "/bin/true\\ninclude /etc/shadow", 2),
    ("dev", "eth 0", 8),
])
def test_unsafe_vrrp_yaml_values_are_located(tmp_path: Path, key: str, value: str, line: int) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(TEXT.format(**{**GOOD, key: value}))
    with pytest.raises(InputError) as caught:
        read_yaml(str(path))
    assert caught.value.problems[0].line == line


def test_safe_vrrp_yaml_reads(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(TEXT.format(**GOOD))
    (inst,) = read_yaml(str(path)).instances
    assert (inst.name, inst.interface) == ("api", "eth0")
