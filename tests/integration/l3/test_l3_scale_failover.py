"""300 routers on two network nodes fail over together (issue 13's scale test).

Node A serves 300 routers as master (each with a qr- and a qg- port, NAT, 150 routers per project
HA network), node B as backup, each with one `hakeeper l3-agent`. A dies (its agent stopped, its
links cut, then killed: no last advert): every router's VIP must be on B within the VRRP bound
(3 x advert_int + skew) plus a margin for reading it, B's state report must say active, and A's
addresses are nowhere else. Then A returns: every router stays master on B and A is a backup of
each (no second master, no failback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from l3procs import BOUND, AgentNodes, torn_down, two_node_settings, write_spec

from conftest import needs_binary, needs_root
from hakeeper.netlab import Lab

pytestmark = pytest.mark.timeout(1500)  # building the routers takes minutes on a loaded machine
N = 300
PER_HA = 150
NODES = ("netA", "netB")
MARGIN = 1.5  # reading state files every 20 ms on a loaded 2-core machine
PHYSICAL = {"ha:p0": "ha0", "ha:p1": "ha1", "ext": "ex0", "int": "in0"}


def router_id(i: int) -> str:
    return f"{i:08x}-5ca1-4e00-8f60-{i:012x}"


def spec_text() -> str:
    out = ["routers:"]
    for i in range(N):
        hi, lo = divmod(i, 250)
        out += [f"  - {{id: {router_id(i)}, name: s{i}, project: p{i // PER_HA},",
                f"     interfaces: [{{subnet: int, address: 10.{110 + hi}.{lo}.1/24}}],",
                f"     gateway: {{network: ext, address: 10.109.{hi}.{lo + 1}/16, upstream: 10.109.255.254}}}}"]
    return "\n".join(out) + "\n"


@dataclass
class Pair(AgentNodes):
    spec_file: Path

    def count(self, node: str, state: str) -> int:
        return list(self.states(node).values()).count(state)

    def start(self, node: str) -> None:
        self.start_agent(node, PHYSICAL, "--nodes", ",".join(NODES), "--spec", str(self.spec_file))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    needs_root()
    needs_binary("nft", "nftables")
    needs_binary("nsenter", "util-linux")
    workdir = tmp_path_factory.mktemp("l3scale")
    _, spec_file = write_spec(workdir, spec_text(), two_node_settings())
    segments = {dev: f"b{dev}" for dev in PHYSICAL.values()}
    with Lab("hkl3x") as lab:
        p: Pair | None = None
        with torn_down(lambda: p):
            hosts = {n: lab.host(n, {key: [] for key in PHYSICAL.values()}, segments=segments) for n in NODES}
            p = Pair(lab, hosts, workdir, spec_file)
            a, b = NODES
            p.start(a)
            took = p.wait_for(lambda: p.count(a, "active") == N, 600, f"{N} routers master on {a}")
            print(f"\n{a}: {N} routers built and master in {took:.1f} s (load {os.getloadavg()[0]:.1f})")
            p.start(b)
            took = p.wait_for(lambda: p.count(b, "standby") == N, 600, f"{N} routers backup on {b}")
            print(f"{b}: {N} routers built and backup in {took:.1f} s")
            yield p


def test_300_routers_fail_over_together_within_the_bound(pair: Pair) -> None:
    a, b = NODES
    agent = pair.agents[a]
    agent.send_signal(signal.SIGSTOP)  # no last advert from a process being killed
    t0 = time.monotonic()
    for dev in PHYSICAL.values():
        pair.hosts[a].cut(dev)
    agent.kill()
    # B's report is read while the kernel reaps A: closing a killed agent's sockets takes seconds
    # (an RCU grace period per packet socket), and waiting for that first made the reap time
    # (8.6-8.9 s at 300 routers) look like B's report arriving late.
    seen: dict[str, float] = {}
    reaped = None
    end = t0 + BOUND + 30
    while len(seen) < N and time.monotonic() < end:
        now = time.monotonic()
        for rid, st in pair.states(b).items():
            if st == "active":
                seen.setdefault(rid, now - t0)
        if reaped is None and agent.poll() is not None:
            reaped = now - t0
        time.sleep(0.02)
    agent.wait(timeout=120)
    times = sorted(seen.values() or [float("nan")])
    print(f"\n{len(seen)}/{N} routers active on {b}: first {times[0]:.2f} s, median {times[len(times) // 2]:.2f} s, "
          f"last {times[-1]:.2f} s after the kill (bound {BOUND:.3f} s; load {os.getloadavg()[0]:.1f}); "
          f"{a} reaped after {reaped or time.monotonic() - t0:.2f} s")
    assert len(seen) == N, f"{N - len(seen)} routers never taken over; {pair.logs()}"
    assert times[-1] <= BOUND + MARGIN, f"the last router took {times[-1]:.2f} s"
    # The addresses really are on B: a sample of router namespaces holds VIP and gateway address.
    for i in range(0, N, 37):
        out = subprocess.run(["ip", "-n", f"{pair.prefix(b)}qrouter-{router_id(i)}", "-4", "-o", "addr"],
                             capture_output=True, text=True, check=True).stdout
        assert "169.254.0." in out and f" 10.109.{i // 250}.{i % 250 + 1}/16 " in out, out

    # A returns (links, then its agent): a backup of every router, no second master, no failback.
    for dev in PHYSICAL.values():
        pair.hosts[a].restore(dev)
    pair.start(a)
    pair.wait_for(lambda: pair.count(a, "standby") == N, 600, f"{a} back as a backup of every router")
    end = time.monotonic() + BOUND + 2
    while time.monotonic() < end:
        assert pair.count(a, "active") == 0 and pair.count(b, "active") == N
        time.sleep(0.2)
