"""CPU and memory of one process holding many VRRP instances: hakeeper and keepalived, same config.

One namespace host with 250 VRIDs per interface (VRRPv2, advert_int 1 s, one /32 VIP each) and a
second host running the same instances at a lower priority, so the measured master also receives
the backup's traffic at startup and sends N adverts per second. After every VIP is up we sample the
measured host's processes' CPU time over a window and their RSS.

    sudo python3 bench/vrrp_scale.py [--counts 100 1000] [--window 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from hakeeper.netlab import Host, Lab  # noqa: E402

PER_IF = 250
TICK = os.sysconf("SC_CLK_TCK")


def conf(n: int, priority: int) -> str:
    out = []
    for i in range(n):
        k, vrid = divmod(i, PER_IF)
        out.append(f"""vrrp_instance vi{i} {{
    state BACKUP
    interface eth{k}
    virtual_router_id {vrid + 1}
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        10.91.{100 + k}.{vrid + 1}/32
    }}
}}
""")
    return "\n".join(out)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pss_kib(pid: int) -> int:
    """Proportional set size: pages shared between processes (a fork) counted once in total."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def vip_count(h: Host, ifs: int) -> int:
    out = h.ip("-o", "-4", "addr", "show", check=False).stdout
    return sum(1 for line in out.splitlines() if "/32" in line)


def start(h: Host, impl: str, cfg: Path, work: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    pid, spid = work / f"{h.name}.{impl}.pid", work / f"{h.name}.{impl}.speaker.pid"
    for p in (pid, spid):
        p.unlink(missing_ok=True)
    if impl == "hakeeper":
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        proc = h.spawn([sys.executable, "-m", "hakeeper", "vrrp", "--keepalived-conf", str(cfg),
                        "--speaker-pid-file", str(spid), "--log-level", "warning"],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        argv = ["/usr/sbin/keepalived", "-n", "-P", "-f", str(cfg), "-p", str(pid), "-r", str(spid)]
        proc = h.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not spid.exists() or not spid.read_text().strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{impl} did not start")
        time.sleep(0.1)
    return proc, [proc.pid, int(spid.read_text())]


def measure(hosts: list[Host], impl: str, n: int, window: float,
            work: Path) -> tuple[float, int, int, float]:
    ifs = (n + PER_IF - 1) // PER_IF
    master_cfg, backup_cfg = work / f"m{n}.conf", work / f"b{n}.conf"
    master_cfg.write_text(conf(n, 200))
    backup_cfg.write_text(conf(n, 100))
    t0 = time.monotonic()
    mproc, pids = start(hosts[0], impl, master_cfg, work)
    bproc, bpids = start(hosts[1], impl, backup_cfg, work)
    deadline = time.monotonic() + 60
    while vip_count(hosts[0], ifs) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{impl}: only {vip_count(hosts[0], ifs)} of {n} VIPs after 60 s")
        time.sleep(0.2)
    converge = time.monotonic() - t0
    time.sleep(2)
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(window)
    cpu = (sum(cpu_seconds(p) for p in pids) - before) / window * 100
    rss = sum(rss_kib(p) for p in pids)
    pss = sum(pss_kib(p) for p in pids)
    for proc, ps in ((mproc, pids), (bproc, bpids)):
        for p in reversed(ps):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        proc.wait(10)
    for h in hosts:
        for k in range(ifs):
            # keepalived leaves its VIPs after SIGKILL; clear them for the next run.
            h.ip("addr", "flush", "dev", f"eth{k}", "to", f"10.91.{100 + k}.0/24", check=False)
    return cpu, rss, pss, converge


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--window", type=float, default=20.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    rows = []
    ifs = (max(args.counts) + PER_IF - 1) // PER_IF
    with tempfile.TemporaryDirectory(prefix="hkvs-") as tmpd, Lab("hkvs") as lab:
        work = Path(tmpd)
        hosts = [lab.host(name, {f"eth{k}": [f"10.91.{k + 1}.{last}/24"] for k in range(ifs)})
                 for name, last in (("a", 1), ("b", 2))]
        for n in args.counts:
            res = {}
            for impl in ("hakeeper", "keepalived"):
                res[impl] = measure(hosts, impl, n, args.window, work)
                cpu, rss, pss, conv = res[impl]
                print(f"  {n:5} instances {impl:10} CPU {cpu:6.2f}%  RSS {rss / 1024:7.1f} MiB  "
                      f"PSS {pss / 1024:7.1f} MiB  "
                      f"all VIPs up after {conv:.1f} s", flush=True)
            rows.append((n, res))
    print()
    print("| instances | hakeeper CPU | keepalived CPU | ratio | hakeeper RSS (PSS) | keepalived RSS (PSS) |"
          " RSS ratio |")
    print("|---|---|---|---|---|---|---|")
    for n, res in rows:
        (hc, hr, hp, _), (kc, kr, kp, _) = res["hakeeper"], res["keepalived"]
        print(f"| {n} | {hc:.2f} % | {kc:.2f} % | {hc / kc if kc else float('inf'):.1f} | "
              f"{hr / 1024:.1f} ({hp / 1024:.1f}) MiB | {kr / 1024:.1f} ({kp / 1024:.1f}) MiB | "
              f"{hr / kr if kr else float('inf'):.1f} |")
    print("(CPU: % of one core over the window, both processes of each implementation on the measured "
          "host; RSS and PSS: their sums)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
