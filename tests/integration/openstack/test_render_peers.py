"""The generated files are accepted by the real programs: `haproxy -c`, `keepalived -t`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import needs_binary

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "tests" / "data" / "chef-cluster01.json"


def hakeeper(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_seed_environment_to_haproxy_and_keepalived(tmp_path: Path) -> None:
    haproxy = needs_binary("haproxy")
    keepalived = needs_binary("keepalived")
    profile = tmp_path / "cluster01.yaml"
    r = hakeeper("import", "chef-env", str(SEED), "--controller", "controller01=10.0.0.11",
                 "--controller", "controller02=10.0.0.12", "--controller", "controller03=10.0.0.13",
                 "-o", str(profile))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    r = hakeeper("openstack", "render", "--check", str(profile), "-o", str(out))
    assert r.returncode == 0, r.stderr
    cfg = out / "haproxy.cfg"
    # Point the runtime files somewhere writable so `-c` checks exactly this file.
    checked = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "listen keystone-service-api" in cfg.read_text()
    v = hakeeper("validate", str(out / "cluster.yaml"))
    assert v.returncode == 0 and "3 nodes" in v.stdout, v.stdout + v.stderr
    for name in ("controller01", "controller02", "controller03"):
        conf = out / f"keepalived-{name}.conf"
        t = subprocess.run([keepalived, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30)
        assert t.returncode == 0, t.stdout + t.stderr


def test_bad_environment_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "env.json"
    bad.write_text('{"name": "x", "chef_type": "node", "json_class": "Chef::Node"}\n')
    r = hakeeper("import", "chef-env", str(bad), "--controller", "a=10.0.0.1")
    assert r.returncode == 2
    assert "not a Chef environment" in r.stderr and "Traceback" not in r.stderr
