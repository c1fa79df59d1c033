"""`hakeeper demo routers`: Neutron-style L3 HA, live, on seed 004's router80 (root).

Two network nodes in namespaces, each served by one `hakeeper l3-agent` (one VRRP speaker process
for all of a node's routers), an external client (the upstream gateway 10.0.80.1) and an instance
(192.168.80.10, floating IP 10.0.80.110). The client pings the floating IP every 0.2 s and keeps
an SSH-like TCP session open to the instance (a line every 0.2 s, echoed back); a line every
second shows `router list-hosting router80` as the store has it. Then the active node dies (its
processes SIGKILLed, its links cut): the standby takes over within the VRRP bound, the table
shows the dead node `xxx`/`unknown`, and the figures say what the client lost. Last the dead node
comes back: a standby, no failback (nopreempt), never two actives.

`run_scenario` is the demo without its setup, so a test can run it on a lab it already has.
"""

from __future__ import annotations

import time
from pathlib import Path

from hakeeper.l3.demofigures import (
    Outcome,
    first_at,
    longest_dual_active,
    longest_gap,
    ping_loss,
)
from hakeeper.l3.hosting import hosting_table
from hakeeper.l3.lab import ADVERT, BOUND, ECHO_PORT, FLOATING_IP, Router80Lab
from hakeeper.l3.liveprobes import HostingWatch, Pinger, TcpSession
from hakeeper.netlab.livedemo import Closable, Say, first_within, run_lab_demo, seconds, ticker

PREFIX = "hkrdm"  # namespaces hkrdm-<pid>.<n>-*: apart from the l3 test modules' (hkl3, hkl3d, ...)
NEEDED = ("nft", "socat", "nsenter", "ping")


def status_line(watch: HostingWatch, pinger: Pinger, session: TcpSession) -> str:
    """One line: list-hosting's rows, the pings answered and lost, the TCP session's echoes."""
    states = watch.latest()
    rows = ", ".join(f"{h} {':-)' if alive else 'xxx'} {st}" for h, (alive, st) in sorted(states.items()))
    answered = len(pinger.replies)
    echoes = list(session.echoes)
    last = f"last {time.monotonic() - echoes[-1]:.1f} s ago" if echoes else "none yet"
    tcp = f"session error: {session.error}" if session.error else f"{len(echoes)} lines echoed, {last}"
    return (f"list-hosting router80: {rows or '(no report)'} | ping: {answered} answered, "
            f"{pinger.last_seq - answered} lost | TCP session: {tcp}")


def _table(lab: Router80Lab) -> str:
    try:
        return hosting_table(lab.hosting()).rstrip()
    except Exception as exc:  # the store may be busy: the table is for the eye only
        return f"(list-hosting failed: {exc})"


def _come_back(lab: Router80Lab, old: str, new: str, say: Say) -> bool:
    """The dead node returns; True if it is a standby and `new` stays the only active for the bound."""
    assert lab.nodes is not None
    lab.nodes.agents[old].wait(timeout=60)
    say(f"{old} comes back: its agent first (it withdraws the master addresses the SIGKILL left in its "
        "router namespace), then its links")
    lab.start_agent(old)
    lab.nodes.wait_for(lambda: lab.ha_state(old) == "standby", 120, f"{old}'s agent up")
    lab.restore_links(old)
    end = time.monotonic() + BOUND + 1
    while time.monotonic() < end:
        if lab.active() != [new]:
            say(f"{old} back: active nodes {lab.active()}: a failback or two actives")
            return False
        time.sleep(0.2)
    say(f"{old} is back as a standby; {new} stays active (nopreempt): no failback, no second active "
        f"for {BOUND + 1:.1f} s")
    return True


def run_scenario(lab: Router80Lab, say: Say, *, tick: float = 1.0, before: float = 3.0,
                 after: float = 3.0, come_back: bool = True) -> Outcome:
    """On a started Router80Lab: traffic through the floating IP, the active node killed, its
    takeover watched and measured; then (`come_back`) the node's return."""
    assert lab.client is not None
    pinger = Pinger(lab.client, FLOATING_IP)
    session = TcpSession(lab.client, FLOATING_IP, ECHO_PORT)
    watch = HostingWatch(lab.hosting)
    old, = lab.active()
    new = next(n for n in lab.names if n != old)
    say(f"router80 is active on {old}, standby on {new}:\n{_table(lab)}")
    pinger.start()
    session.start()
    watch.start()
    takeover = traffic = None
    killed = cut = time.monotonic()
    returned: bool | None = None
    try:
        with ticker(say, lambda: status_line(watch, pinger, session), tick):
            say(f"the client pings the floating IP {FLOATING_IP} every 0.2 s and keeps a TCP session to "
                f"the instance open through it (a line every 0.2 s, echoed back)")
            started = time.monotonic()
            if (first_within(lambda: session.first_echo_after(started), 30) is None
                    or first_within(lambda: pinger.first_reply_after(started), 30) is None):
                raise RuntimeError(f"no traffic through the floating IP {FLOATING_IP} before the fault "
                                   f"(TCP session: {session.error or 'no echo'}; {len(pinger.replies)} pings answered)")
            time.sleep(before)  # traffic flowing, for the eye, before the fault
            say(f"{old} dies: SIGKILL of its processes (its l3-agent) and its links cut")
            killed = time.monotonic()
            lab.kill(old)
            cut = time.monotonic()  # from here on, whatever reaches the client went through {new}
            at = first_within(lambda: time.monotonic() if lab.ha_state(new) == "active" else None, BOUND + 20)
            takeover = None if at is None else at - killed
            say(f"{new} took over router80 {takeover:.2f} s after the kill (VRRP bound {BOUND:.3f} s)"
                if takeover is not None else f"{new} did not take over within {BOUND + 20:.0f} s")
            at = first_within(lambda: pinger.first_reply_after(cut), 30)
            traffic = None if at is None else at - killed
            say(f"pings through {new}: answered again {traffic:.2f} s after the kill" if traffic is not None
                else "no ping answered within 30 s of the kill")
            at = first_within(lambda: session.first_echo_after(cut), 60)
            say(f"TCP session: echoes again {at - killed:.2f} s after the kill, on the same connection"
                if at is not None else f"TCP session: no echo within 60 s of the kill ({session.error})")
            first_within(lambda: first_at(watch.samples, killed, lambda s: s.get(old) == (False, "unknown")), 10)
            time.sleep(after)
            say(f"list-hosting router80 now:\n{_table(lab)}")
            if come_back and takeover is not None:
                returned = _come_back(lab, old, new, say)
            session.quiet.set()  # the last lines' echoes are still due
            first_within(lambda: 0.0 if session.all_echoed() else None, 15)
    finally:
        pinger.stop()
        session.stop()
        watch.stop()
    end = time.monotonic()
    sent, lost = ping_loss(pinger.replies)
    dead = first_at(watch.samples, killed, lambda s: s.get(old) == (False, "unknown"))
    table_new = first_at(watch.samples, killed, lambda s: s.get(new) == (True, "active"))
    echoes = list(session.echoes)
    return Outcome(
        bound=BOUND, advert=ADVERT, resolution=watch.every, takeover_s=takeover, traffic_back_s=traffic,
        pings_sent=sent, pings_lost=lost, ping_gap_s=longest_gap(list(pinger.replies.values()), killed, end),
        tcp_lines=len(session.sent), tcp_survived=session.all_echoed(),
        tcp_gap_s=longest_gap(echoes, killed, echoes[-1]) if echoes and echoes[-1] > killed else None,
        dead_unknown_s=dead, table_active_s=table_new, dual_active_s=longest_dual_active(watch.samples),
        returned_standby=returned)


def describe(outcome: Outcome) -> list[str]:
    """The figures, in sentences."""
    tcp = (f"survived, longest pause {outcome.tcp_gap_s:.2f} s (TCP's retransmission backoff after the "
           "outage)" if outcome.tcp_survived and outcome.tcp_gap_s is not None else "did not survive")
    in_time = "within" if outcome.dead_shown_in_time() else "NOT within"
    dual = "fine" if outcome.dual_active_s <= outcome.bound else "PAST the VRRP bound"
    return [
        f"time to takeover: {seconds(outcome.takeover_s)} s (VRRP bound {outcome.bound:.3f} s: "
        f"3 x advert_int {outcome.advert:g} s + skew); pings answered again after "
        f"{seconds(outcome.traffic_back_s)} s",
        f"pings through the floating IP: {outcome.pings_lost} of {outcome.pings_sent} lost, longest "
        f"gap {outcome.ping_gap_s:.2f} s",
        f"TCP session ({outcome.tcp_lines} lines): {tcp}",
        f"list-hosting: the dead node `xxx`/`unknown` {seconds(outcome.dead_unknown_s)} s after the kill "
        f"({in_time} one advert interval, read every {outcome.resolution:g} s), the new node active after "
        f"{seconds(outcome.table_active_s)} s",
        f"two nodes active at once: longest {outcome.dual_active_s:.2f} s ({dual})",
    ]


def run_demo(*, workdir: str | None = None, quick: bool = False, say: Say = print) -> int:
    """`quick`: a second of traffic before the kill and after the takeover instead of three."""
    pause = 1.0 if quick else 3.0

    def body(base: str, timed: Say, labs: list[Closable]) -> Outcome:
        timed("building two network nodes (network7, network8), an external client and an instance in "
              "network namespaces; one hakeeper l3-agent per node serves router80 (seed 004's settings: "
              "VRRPv2, PASS, advert_int 2, nopreempt)")
        lab = Router80Lab(Path(base), PREFIX)
        labs.append(lab)
        lab.start()
        outcome = run_scenario(lab, timed, before=pause, after=pause)
        for line in describe(outcome):
            timed(line)
        return outcome

    return run_lab_demo("routers", list(NEEDED), body, workdir=workdir, say=say)
