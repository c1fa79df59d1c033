"""Every command that reads an operator's file answers a binary or missing file with exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

COMMANDS = [
    ["validate", "{f}"],
    ["vrrp", "--check", "--keepalived-conf", "{f}"],
    ["import", "crm", "{f}"],
    ["import", "chef-env", "{f}", "--controller", "c1=10.0.0.11"],
]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_binary_file_is_a_located_error(command: list[str], tmp_path: Path) -> None:
    binary = tmp_path / "input.conf"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    done = run([part.format(f=binary) for part in command])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{binary}: not UTF-8 text" in done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_missing_file_is_a_located_error(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    done = run([part.format(f=missing) for part in command])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert str(missing) in done.stderr and "cannot read" in done.stderr
