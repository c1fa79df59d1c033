"""`hakeeper config show`, `status` and `events` as real processes never print a secret
parameter, and a masked configuration copied from `config show` is refused by `config apply`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.agent import state as st
from hakeeper.coord.localserver import RemoteStore

PASSWORD = "Gal3ra-Sup3r-S3cret"
VRRP_PASSWORD = "vrrpPw77"
SPEC = f"""\
cluster: {{stonith-enabled: false}}
nodes: [{{name: n1}}]
resources:
  primitives:
    - id: db
      agent: process
      params: {{command: "sleep 1000", check_passwd: "{PASSWORD}"}}
    - id: vip
      agent: process
      params: {{command: "sleep 1001", vrrp_key: "{VRRP_PASSWORD}"}}
      secret: [vrrp_key]
"""
ENV = {k: v for k, v in os.environ.items() if not k.startswith("HAKEEPER_")} | {"HAKEEPER_CLUSTER": "sec"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("secrets")
    sock = str(d / "store.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", sock, "--data", str(d / "data")],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        assert proc.stdout is not None and b"serving" in proc.stdout.readline()
        yield sock
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def hk(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakeeper", *args, "--store", store],
        env=ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def test_secrets_stay_out_of_what_operators_print(store: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    applied = hk("config", "apply", str(spec), store=store)
    assert applied.returncode == 0, applied
    assert PASSWORD not in applied.stdout + applied.stderr

    async def agent_event() -> None:  # what an agent writes when a monitor fails, quoting its command
        keys = st.Keys("sec")
        doc = {"at": time.time(), "node": "n1", "kind": "monitor-failed", "rsc": "db",
               "message": f"mysql --password={PASSWORD} failed", "vrrp": {"auth_pass": VRRP_PASSWORD}}
        async with RemoteStore(store) as s:
            await s.put(keys.event(time.time_ns(), "n1"), st.dumps(doc))

    asyncio.run(agent_event())
    # (config show --crm and the JSON forms share these paths; tests/unit/test_store_secrets.py)
    printed = {}
    for args in (("config", "show"), ("status", "--json"), ("events",)):
        out = hk(*args, store=store)
        assert out.returncode == 0, (args, out)
        assert PASSWORD not in out.stdout + out.stderr and VRRP_PASSWORD not in out.stdout + out.stderr, (args, out)
        printed[args[0]] = out.stdout
    assert "mysql --password=********" in printed["events"] and "check_passwd: '********'" in printed["config"]
    revealed = hk("config", "show", "--show-secrets", store=store)
    assert PASSWORD in revealed.stdout and VRRP_PASSWORD in revealed.stdout

    # What `config show` printed, applied back: refused, naming the parameters, nothing applied.
    shown = tmp_path / "shown.yaml"
    shown.write_text(hk("config", "show", store=store).stdout)
    refused = hk("config", "apply", str(shown), store=store)
    assert refused.returncode == 2 and "params.check_passwd" in refused.stderr and "--show-secrets" in refused.stderr
    assert PASSWORD in hk("config", "show", "--show-secrets", store=store).stdout
