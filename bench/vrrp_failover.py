"""Failover time of hakeeper and keepalived, alternately, on the same namespaces in the same run.

Two controllers from seed 003 (priorities 200 and 100) and a client on one bridge. Each node runs a
UDP responder that answers with its name; the client probes the VIP every 10 ms. We kill the master
and time the first answer from the other node.

  failure "sigkill": SIGKILL of the master's VRRP process (keepalived: its VRRP child, then its
                     parent so it is not respawned; hakeeper: its speaker; its supervisor then
                     withdraws the VIP and sends priority 0).
  failure "link":    the master's link is cut (a dead host): nobody can say goodbye.

The RFC bound is Master_Down_Interval of the backup: 3 x advert_int + Skew_Time.

    sudo python3 bench/vrrp_failover.py [--trials 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "integration")]

from vrrp_lab import VIP, Cluster, Node, seed_conf, variant, wait_for  # noqa: E402

from hakeeper.vrrp.machine import master_down_interval  # noqa: E402

PORT = 7777
RESPONDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
name = sys.argv[1].encode()
while True:
    data, addr = s.recvfrom(64)
    s.sendto(name, addr)
"""

PROBE = """
import select, socket, struct, sys, time
vip, port, want, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
master = socket.inet_aton(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
# Also listen to VRRP: the time of the master's last advert (priority > 0) before it died.
a = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
mreqn = socket.inet_aton("224.0.0.18") + bytes(4) + struct.pack("@i", socket.if_nametoindex("eth0"))
a.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
last = 0.0
end = time.monotonic() + timeout
nxt = time.monotonic()
print("ready", flush=True)
while time.monotonic() < end:
    now = time.monotonic()
    if now >= nxt:
        try:
            s.sendto(b"?", (vip, port))
        except OSError:
            pass
        nxt += 0.01
    r, _, _ = select.select([s, a], [], [], max(0.0, nxt - time.monotonic()))
    if a in r:
        pkt = a.recv(2048)
        ihl = (pkt[0] & 15) * 4
        if pkt[12:16] == master and len(pkt) > ihl + 2 and pkt[ihl + 2] > 0:
            last = time.monotonic()
    if s in r:
        try:
            data = s.recv(64)
        except OSError:
            continue
        if data == want:
            print(f"{time.monotonic():.6f} {last:.6f}", flush=True)
            sys.exit(0)
print("timeout", flush=True)
"""

MASTER, BACKUP = "9lpo192", "9lpo134"


def start(node: Node, impl: str, hk_args: tuple[str, ...]) -> None:
    if impl == "hakeeper":
        node.start_hakeeper(*hk_args)
    else:
        node.start_keepalived()


def stop_all(c: Cluster) -> None:
    for n in c.nodes.values():
        if n.proc and n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait(5)
        for pidfile in (n.speaker_pid_path, n.pid_path):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
        n.host.ip("addr", "del", f"{VIP}/24", "dev", "eth0", check=False)
        n.host.restore("eth0")


def trial(c: Cluster, impl: str, failure: str, advert: str, tmp: Path) -> tuple[float, float] | None:
    """One failover: seconds from the failure, and from the master's last advert, to the backup's
    first answer."""
    master, backup = c.nodes[MASTER], c.nodes[BACKUP]
    stop_all(c)
    time.sleep(0.3)
    start(master, impl, ("--restart-delay", "-1"))
    wait_for(master.has_vip, 15, "master to take the VIP")
    start(backup, impl, ())
    # Let the backup settle in BACKUP and hear a few adverts.
    time.sleep(max(1.5, 3 * float(advert)))
    assert c.holders() == [MASTER], c.holders()
    bound = master_down_interval(3, 100, round(float(advert) * 100))
    probe_file = tmp / "probe.py"
    probe_file.write_text(PROBE)
    master_ip = "172.16.9.192"
    probe = c.client.spawn([sys.executable, str(probe_file), VIP, str(PORT), BACKUP, str(3 * bound + 3),
                            master_ip], stdout=subprocess.PIPE)
    assert probe.stdout is not None
    probe.stdout.readline()  # ready
    # Let the probe hear at least one advert, and fail at a random phase of the advert cycle.
    time.sleep(float(advert) + 0.2 + random.uniform(0, float(advert)))
    t0 = time.monotonic()
    if failure == "link":
        master.host.cut("eth0")
    elif impl == "hakeeper":
        master.kill_speaker(signal.SIGKILL)
    else:
        os.kill(int(master.speaker_pid_path.read_text()), signal.SIGKILL)
        master.kill_parent(signal.SIGKILL)
    line = probe.stdout.readline().decode().strip()
    probe.wait(10)
    if line in ("timeout", ""):
        return None
    answered, last_advert = (float(x) for x in line.split())
    return answered - t0, answered - last_advert


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="only advert_int 0.1 s (v3)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    scenarios = [(3, "0.1")] if args.quick else [(2, "1"), (3, "1"), (3, "0.1")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hkvb-") as tmpd, Cluster(Path(tmpd), prefix="hkvb") as c:
        tmp = Path(tmpd)
        responder = tmp / "responder.py"
        responder.write_text(RESPONDER)
        for n in c.nodes.values():
            n.host.spawn([sys.executable, str(responder), n.name, str(PORT)])
        c.nodes["9lpo135"].host.cut("eth0")  # two nodes are enough; keep the third out of the way
        for version, advert in scenarios:
            for n in c.nodes.values():
                n.write_conf(variant(seed_conf(n.name), version=version, advert_int=advert))
            bound = master_down_interval(version, 100, round(float(advert) * 100))
            for failure in ("sigkill", "link"):
                times: dict[str, list[float]] = {"hakeeper": [], "keepalived": []}
                since_adv: dict[str, list[float]] = {"hakeeper": [], "keepalived": []}
                misses = {"hakeeper": 0, "keepalived": 0}
                for _ in range(args.trials):
                    for impl in ("hakeeper", "keepalived"):
                        got = trial(c, impl, failure, advert, tmp)
                        if got is None:
                            misses[impl] += 1
                        else:
                            times[impl].append(got[0])
                            since_adv[impl].append(got[1])
                        shown = "timeout" if got is None else f"{got[0]:.3f}s ({got[1]:.3f}s after advert)"
                        print(f"  v{version} {advert}s {failure:7} {impl:10} {shown}", flush=True)
                stop_all(c)
                med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
                adv = {k: statistics.median(v) if v else float("nan") for k, v in since_adv.items()}
                rows.append((version, advert, failure, bound, med["hakeeper"], med["keepalived"],
                             adv["hakeeper"], adv["keepalived"], len(times["hakeeper"]),
                             misses["hakeeper"] + misses["keepalived"]))
    print()
    print("| VRRP | advert_int | failure | RFC bound | hakeeper | keepalived | ratio | "
          "hakeeper after last advert | keepalived after last advert | ratio | n |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for version, advert, failure, bound, hk, ka, hka, kaa, n, miss in rows:
        extra = f" ({miss} timeouts)" if miss else ""
        print(f"| v{version} | {advert} s | {failure} | {bound:.3f} s | {hk:.3f} s | {ka:.3f} s | "
              f"{_ratio(hk, ka)} | {hka:.3f} s | {kaa:.3f} s | {_ratio(hka, kaa)} | {n}{extra} |")
    print("(medians; time to the first answer from the new master, from the failure and from the "
          "old master's last advert)")
    return 0


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b == b and b else "n/a"


if __name__ == "__main__":
    sys.exit(main())
