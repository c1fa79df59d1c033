"""`hakeeper vrrp` on bad input: a located error, exit status 2, nothing touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
SEED = Path(__file__).resolve().parents[1] / "data" / "vrrp" / "seed003-9lpo192.conf"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "hakeeper", "vrrp", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_typo_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "k.conf"
    bad.write_text(SEED.read_text().replace("advert_int 1", "advert_intt 1"))
    out = run("--check", "--keepalived-conf", str(bad))
    assert out.returncode == 2
    assert f"error: {bad}:15: nooip.advert_intt: unknown keyword" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_interface_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "k.conf"
    bad.write_text(SEED.read_text().replace("interface eth0", "interface hkvnope0"))
    out = run("--check", "--keepalived-conf", str(bad))
    assert out.returncode == 2
    assert f"{bad}:12: nooip.interface: interface 'hkvnope0' does not exist" in out.stderr


def test_seed_warnings_name_lines(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(SEED.read_text().replace("interface eth0", "interface lo"))
    out = run("--check", "--keepalived-conf", str(conf))
    assert out.returncode == 0, out.stderr
    assert f"warning: {conf}:6: global_defs.smtp_server: ignored" in out.stderr
    assert f"warning: {conf}:18: nooip.auth_pass: auth_pass is 20 characters" in out.stderr


def test_yaml_bad_vrid(tmp_path: Path) -> None:
    y = tmp_path / "v.yaml"
    y.write_text("instances:\n  - name: a\n    interface: lo\n    vrid: 0\n    vips: [10.91.0.1/24]\n")
    out = run("--check", "--config", str(y))
    assert out.returncode == 2 and f"{y}:4: a.virtual_router_id: VRID 0 is outside 1-255" in out.stderr
