"""`hakeeper demo routers --quick`, run as an operator runs it (root): seed 004's router80 on two
network nodes, pings and a TCP session through the floating IP, the active node killed and brought
back. Its figures must show a real takeover within the VRRP bound, the session surviving, the dead
node shown `xxx`/`unknown` within about an advert interval, no failback and no second active; and
nothing may be left behind. About 40 s (the first node's Master_Down_Interval, the takeover's, and
the returning node's watch are most of it)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import needs_binary, needs_root
from hakeeper.l3 import netns
from hakeeper.l3.demo import PREFIX
from hakeeper.l3.lab import ADVERT, BOUND, env


def test_demo_routers(tmp_path: Path) -> None:
    needs_root()
    for program, package in (("nft", "nftables"), ("socat", "socat"), ("nsenter", "util-linux"),
                             ("ping", "iputils-ping")):
        needs_binary(program, package)
    started = time.monotonic()
    demo = subprocess.Popen([sys.executable, "-m", "hakeeper", "demo", "routers", "--quick", "--workdir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        stdout, stderr = demo.communicate(timeout=600)
    finally:
        if demo.poll() is None:  # SIGTERM: the demo cleans up as after Ctrl-C
            demo.terminate()
            demo.communicate(timeout=120)
    out = subprocess.CompletedProcess(demo.args, demo.returncode, stdout, stderr)
    print(out.stdout[-6000:], f"\n(demo ran {time.monotonic() - started:.1f} s)")
    logs = "".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp_path.glob("*.log")))
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}\n{logs}"
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    got = dict(re.findall(r"(\w+)=(\S+)", line))
    takeover, back = float(got["takeover_s"]), float(got["traffic_back_s"])
    lost, sent = (int(x) for x in got["pings_lost"].split("/"))
    # The kill was real (pings were lost) and the router came back through the standby within
    # the VRRP bound (a second of margin for a loaded machine, as test_l3_router80).
    assert 0 < takeover <= BOUND + 1.0 and 0 < back <= BOUND + 1.0, line
    assert 0 < lost <= (BOUND + 1.0) / 0.2 + 2 and sent > lost, line
    assert got["tcp_survived"] == "yes" and float(got["tcp_gap_s"]) > 1.0, line
    # A dead node's report turns stale one advert interval after it was written, before the kill.
    assert float(got["dead_unknown_s"]) <= ADVERT + 0.5, line
    assert float(got["table_active_s"]) <= BOUND + 1.0 + ADVERT, line
    assert got["dual_active_s"] == "0.00" and got["returned_standby"] == "True", line
    left = netns.names(f"{PREFIX}-{demo.pid}.")  # the demo's lab names carry its pid
    assert not left, f"the demo left namespaces behind: {left}\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftover.stdout == "", f"the demo left processes behind: {leftover.stdout}"


if __name__ == "__main__":
    pytest.main([__file__, "-s"])
