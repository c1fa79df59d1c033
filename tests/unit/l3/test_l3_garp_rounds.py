"""A mass takeover in the speaker: the state is reported before any gratuitous ARP goes out, and
the ARP rounds are sent in slices that let the loop run in between.

Gratuitous ARPs are broadcast and the node's bridge floods each one to every router on the
network, so one round for hundreds of routers held the loop for 0.2 s (300 routers) to seconds
(1000), and the state report waited behind the rounds. Here every send costs 0.3 ms, standing in
for that flood, and `netio.send_quietly` is wrapped to count the sends (the speaker's sockets are
local stand-ins: only the order of the sends and the loop's turns are under test).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Iterator

import pytest

from hakeeper.l3.dataplane import layout
from hakeeper.l3.events import Change
from hakeeper.l3.model import Settings
from hakeeper.l3.scheduler import RouterWant, schedule
from hakeeper.l3.speaker import NEUTRON_PRIORITY, RouterRun, RouterSpeaker, VrrpSettings
from hakeeper.l3.specfile import parse_router_spec
from hakeeper.vrrp import netio
from hakeeper.vrrp.machine import Machine, Params, State
from hakeeper.vrrp.packet import AUTH_NONE, Expect

N = 120
FLOOD = 0.0003  # seconds per gratuitous ARP (the bridge's flood to every router, measured ~0.27 ms at 300)


def router_id(i: int) -> str:
    return f"{i:08x}-9a49-4e00-8f60-{i:012x}"


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for s in opened:
        s.close()


def _runs(sockets: list[socket.socket]) -> list[RouterRun]:
    spec = parse_router_spec("routers:\n" + "".join(
        f"  - {{id: {router_id(i)}, name: g{i}, gateway: {{network: ext, address: 10.97.0.{i + 1}/16,"
        " upstream: 10.97.255.254}}\n" for i in range(N)))
    sched = schedule([RouterWant(r.id, "p") for r in spec.routers], ["n1", "n2"], 2)
    runs = []
    for r in spec.routers:
        lay = layout(r, sched.routers[r.id], "n1", Settings(), "t-")
        pair = socket.socketpair()
        sockets.extend(pair)
        params = Params(2, NEUTRON_PRIORITY, 200, int(lay.ha_address.ip), preempt=False)
        run = RouterRun(lay, Machine(params), Expect(2, lay.vrid, AUTH_NONE, b"", 200), pair[0], pair[0], {}, pair[0])
        run.garp_frames = [(p.name, b"garp") for p in lay.ports if p.addresses]
        runs.append(run)
    return runs


def test_a_mass_takeover_is_reported_before_its_arps_and_the_arps_yield_to_the_loop(
        sockets: list[socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    garps: list[str] = []  # the router of each gratuitous ARP, in order

    def send(s: socket.socket, data: bytes, addr: object = None) -> bool:
        if data == b"garp":
            time.sleep(FLOOD)
            garps.append(owner[s.fileno()])
        return True

    monkeypatch.setattr(netio, "send_quietly", send)
    runs = _runs(sockets)
    owner = {run.arp.fileno(): run.lay.router_id for run in runs}
    reported: list[int] = []  # how many ARPs had gone out when each report ran
    between: list[int] = []  # ARPs sent so far, each time the loop's other work got a turn

    async def main() -> None:
        loop = asyncio.get_running_loop()
        report_due = False

        def report() -> None:
            nonlocal report_due
            report_due = False
            reported.append(len(garps))
            assert sum(1 for st in sp.states().values() if st == State.MASTER) == N

        def changed(c: Change) -> None:  # as the agent does: one report per batch of transitions
            nonlocal report_due
            if c.new == State.MASTER and not report_due:
                report_due = True
                loop.call_soon(report)

        sp = RouterSpeaker(VrrpSettings(2, None, garp_master_delay=0, garp_repeat=3), on_change=changed)
        now = loop.time()
        for run in runs:
            sp.runs[run.lay.router_id] = run
            sp._apply(run, run.machine.start(now), "started")

        def probe() -> None:
            between.append(len(garps))
            if len(garps) < 3 * N or sp.garp_due:
                loop.call_soon(probe)

        # Every router times out in the same turn of the loop (a lost node's masters).
        for run in runs:
            sp._apply(run, run.machine.force(now, State.MASTER), "master-down")
        loop.call_soon(probe)
        for _ in range(400):
            if not sp.garp_due and sp.garp_handle is None:
                break
            await asyncio.sleep(0.01)
        sp.runs.clear()  # the routers' next timer slots find no router

    asyncio.run(main())
    assert reported == [0], "the takeover's report must come once, before any gratuitous ARP"
    # Each router's burst: garp_repeat rounds of one ARP per port with master addresses.
    assert sorted(garps) == sorted(r.lay.router_id for r in runs for _ in range(3))
    # The loop had turns while a round was under way: no stretch without one covers a whole round.
    steps = [b - a for a, b in itertools.pairwise(between)]
    assert max(steps) < N, f"{max(steps)} ARPs went out without the loop getting a turn (a round is {N})"
    assert len([s for s in steps if s]) >= 3 * 2, "each round should be sent in several slices"
