"""`hakeeper demo`: a controller failover, live, in network namespaces.

Three controllers (hkd-c1..c3) and a client (hkd-client) on a bridge, 10.94.0.0/24. Each controller
runs stand-in APIs, haproxy and a VRRP speaker, all configured from one profile. The client sends a
request through the VIP every 20 ms. The VIP holder is crashed (its processes SIGKILLed, its link
taken down); the view shows the failure, the takeover, the VIP move, the first good request and the
requests lost, then the node comes back. Everything is removed at the end, on Ctrl-C or on a crash,
and a run starts by sweeping what an earlier one may have left.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from hakeeper.openstack.lab import Busy, Lab, exclusive, leftovers, sweep
from hakeeper.openstack.profile import Resolved, parse_profile
from hakeeper.openstack.stack import Stack, speaker_role
from hakeeper.openstack.timeline import Failover, Sample, analyse, count_lost, median, summary_line
from hakeeper.openstack.view import View

PREFIX = "hkd"
NETWORK = "10.94.0.0/24"
PROFILE = """\
name: demo
networks: {lab: 10.94.0.0/24}
controllers:
  - {name: c1, address: 10.94.0.11}
  - {name: c2, address: 10.94.0.12}
  - {name: c3, address: 10.94.0.13}
vips:
  keystone-service-api: 10.94.0.100
  nova-api: 10.94.0.100
vrrp: {version: 3, advert-int: 0.1, first-vrid: 94, check-interval: 1}
haproxy: {check-inter: 200ms, timeout-connect: 100ms}
"""
PORT = 8774  # nova-api through the VIP


@dataclass
class Phases:
    steady: float
    after_move: float
    after_return: float

    @classmethod
    def pick(cls, quick: bool) -> Phases:
        return cls(1.5, 1.5, 2.0) if quick else cls(4.0, 3.0, 4.0)


@dataclass
class Samples:
    items: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[Sample]:
        with self.lock:
            return list(self.items)


class _Stop(Exception):
    """SIGTERM or SIGHUP: leave through the same cleanup as Ctrl-C."""


@contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    main_pid = os.getpid()

    def raise_stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main_pid:
            # A forked helper (pyroute2 forks) inherits this handler: it must just go, never
            # unwind into the demo's cleanup.
            os._exit(128 + signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, raise_stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _missing(speaker: str) -> list[str]:
    need = ["haproxy", "curl", "ip"]
    from hakeeper.openstack.stack import hakeeper_speaker_available

    if speaker == "hakeeper" and not hakeeper_speaker_available():
        return ["hakeeper's VRRP speaker (hakeeper.vrrp) in this build"]
    if speaker == "keepalived" or not hakeeper_speaker_available():
        need.append("keepalived")
    return [b for b in need if shutil.which(b) is None and not os.path.exists(f"/usr/sbin/{b}")]


def _read_probe(p: subprocess.Popen[bytes], samples: Samples, view: View) -> None:
    assert p.stdout is not None
    for raw in p.stdout:
        try:
            s = Sample.from_json(json.loads(raw))
        except (ValueError, KeyError):
            continue
        with samples.lock:
            samples.items.append(s)
        view.sample(s)


def _one_failover(stack: Stack, resolved: Resolved, view: View, samples: Samples, phases: Phases,
                  n: int) -> Failover:
    vip = resolved.vip_addresses()[0]
    holder = stack.wait_holder(vip)
    view.note(f"round {n}: steady traffic, {holder} holds {vip}")
    time.sleep(phases.steady)
    crash_at = time.monotonic()
    view.mark_crash(holder, crash_at)
    stack.crash(holder)
    new = stack.wait_holder(vip, timeout=30, exclude=holder)
    moved_at = view.moved_at(new, crash_at) or time.monotonic()
    detected_at = next((e.t for e in stack.events if e.t >= crash_at and e.node != holder
                        and e.source == "vrrp" and speaker_role(e.text) == "MASTER"), None)
    # Wait for traffic to flow again, then a while longer so the window holds the recovery.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        after = [s for s in samples.snapshot() if s.t > moved_at]
        if any(s.ok for s in after):
            break
        time.sleep(0.05)
    time.sleep(phases.after_move)
    result = analyse(samples.snapshot(), holder, crash_at, time.monotonic(), detected_at, new, moved_at)
    view.failover(result)
    view.note(f"bringing {holder} back")
    back_at = time.monotonic()
    view.new_phase()
    stack.restore(holder)
    stack.wait_speakers(since=back_at, names=[holder])
    time.sleep(phases.after_return)
    result = dataclasses.replace(result, rejoin_lost=count_lost(samples.snapshot(), back_at, time.monotonic()))
    view.note(f"{holder} is back: {result.rejoin_lost} requests lost while it rejoined")
    return result


def run_demo(*, live: bool, quick: bool, rounds: int = 1, workdir: str | None = None,
             speaker: str = "auto") -> int:
    if os.geteuid() != 0:
        print("hakeeper demo: needs root (it builds network namespaces)", file=sys.stderr)
        return 1
    missing = _missing(speaker)
    if missing:
        print(f"hakeeper demo: missing programs: {', '.join(missing)} (see scripts/setup)", file=sys.stderr)
        return 1
    try:
        with exclusive(PREFIX):
            return _run(live=live, quick=quick, rounds=rounds, workdir=workdir, speaker=speaker)
    except Busy as exc:
        print(f"hakeeper demo: another demo is running: {exc}", file=sys.stderr)
        return 1


def _run(*, live: bool, quick: bool, rounds: int, workdir: str | None, speaker: str) -> int:
    swept = sweep(PREFIX)
    resolved = parse_profile(PROFILE, "<demo profile>")
    phases = Phases.pick(quick)
    base = Path(workdir or tempfile.mkdtemp(prefix="hakeeper-demo-"))
    view = View(live=live, controllers=[c.name for c in resolved.profile.controllers],
                vip=str(resolved.vip_addresses()[0]))
    if swept:
        view.note(f"removed leftovers of an earlier run: {', '.join(swept)}")
    results: list[Failover] = []
    speaker_kind = speaker
    status = 0
    probe: subprocess.Popen[bytes] | None = None
    with _signals_as_exceptions(), view:
        lab = Lab(PREFIX, NETWORK, base / "lab")
        try:
            lab.__enter__()
            stack = Stack(lab, resolved, speaker=speaker, on_event=lambda e: view.event(e), watch=True)
            speaker_kind = stack.speaker_kind
            view.note(f"building 3 controllers and a client in namespaces {PREFIX}-*; VRRP by {stack.speaker_kind}")
            stack.start()
            client = lab.add_host("client", "10.94.0.50")
            stack.wait_holder(resolved.vip_addresses()[0])
            stack.wait_speakers()
            view.note(f"haproxy on every controller; requests to http://{resolved.vip_addresses()[0]}:{PORT}/ "
                      "every 20 ms")
            samples = Samples()
            env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": os.environ.get("PATH", "")}
            probe = client.start([sys.executable, "-m", "hakeeper.openstack.probe", "--url",
                                  f"http://{resolved.vip_addresses()[0]}:{PORT}/", "--interval", "0.02",
                                  "--timeout", "0.25"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            threading.Thread(target=_read_probe, args=(probe, samples, view), daemon=True).start()
            for n in range(1, rounds + 1):
                results.append(_one_failover(stack, resolved, view, samples, phases, n))
        except (KeyboardInterrupt, _Stop) as exc:
            view.note(f"interrupted ({type(exc).__name__}): cleaning up")
            status = 130
        except Exception as exc:  # the demo must never leave namespaces behind
            view.note(f"failed: {type(exc).__name__}: {exc}: cleaning up")
            status = 1
        finally:
            # A second Ctrl-C must not cut the cleanup short.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            view.note("cleaning up: stopping every process, removing namespaces and the bridge")
            view.closing = True
            if probe is not None and probe.poll() is None:
                probe.terminate()
            lab.close()
            if workdir is None:
                shutil.rmtree(base, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    left = leftovers(PREFIX)
    if results:
        print(summary_line(results))
        print(f"RESULT outage_ms={median(r.outage_ms for r in results):.0f} "
              f"lost={median(r.lost for r in results):.0f} rounds={len(results)} "
              f"leftovers={len(left)} speaker={speaker_kind}")
    if left:
        print(f"hakeeper demo: left behind: {', '.join(left)}", file=sys.stderr)
        status = status or 1
    return status
