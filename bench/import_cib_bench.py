"""Import speed on a large CIB with full status, against Pacemaker's own reader of the same file.

Generates a CIB with N nodes and R resources: every resource has history on every node (a probe
that found it stopped), plus start and monitor where it runs, and a failed monitor on every 997th.
Times `read_cib` on it, then times `crm_mon -1` reading the same file (CIB_file=..., which unpacks
the status with Pacemaker's own code) and prints the ratio. Both must agree on how many resources
are active and how many failed, or the run reports the mismatch.

    python3 bench/import_cib_bench.py [--nodes 64] [--resources 10000] [--peer-timeout 900]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from hakeeper.importers.cib import read_cib  # noqa: E402

_KEY = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


def generate(path: Path, nodes: int, resources: int) -> tuple[int, int]:
    """Write the CIB; returns (active instances, failed instances) it encodes."""
    names = [f"node{i:02d}" for i in range(1, nodes + 1)]
    active = failed = 0
    with open(path, "w") as out:
        w = out.write
        w('<cib admin_epoch="0" epoch="1" num_updates="1" have-quorum="1" dc-uuid="1" '
          'validate-with="pacemaker-3.7">\n<configuration>\n<crm_config><cluster_property_set id="o">'
          '<nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>\n<nodes>\n')
        for i, name in enumerate(names, start=1):
            w(f'<node id="{i}" uname="{name}"/>\n')
        w("</nodes>\n<resources>\n")
        for r in range(resources):
            w(f'<primitive id="r{r}" class="ocf" provider="pacemaker" type="Dummy"><operations>'
              f'<op id="r{r}-m" name="monitor" interval="10s" timeout="20s"/></operations></primitive>\n')
        w("</resources>\n<constraints/>\n</configuration>\n<status>\n")
        for i, name in enumerate(names, start=1):
            w(f'<node_state id="{i}" uname="{name}" in_ccm="true" crmd="online" join="member" '
              f'expected="member">\n<transient_attributes id="{i}"><instance_attributes id="t{i}">'
              f'<nvpair id="t{i}-p" name="pingd" value="100"/></instance_attributes></transient_attributes>\n'
              f'<lrm id="{i}"><lrm_resources>\n')
            for r in range(resources):
                w(f'<lrm_resource id="r{r}" class="ocf" provider="pacemaker" type="Dummy">')
                if r % nodes == i - 1:
                    bad = r % 997 == 0
                    active += 1
                    failed += bad
                    w(f'<lrm_rsc_op id="r{r}_last_0" operation_key="r{r}_start_0" operation="start" '
                      f'interval="0" op-status="0" rc-code="0" call-id="{2 * r + 1}" '
                      f'transition-key="1:1:0:{_KEY}" transition-magic="0:0;1:1:0:{_KEY}" '
                      f'last-rc-change="1700000000" exec-time="10" queue-time="0"/>'
                      f'<lrm_rsc_op id="r{r}_monitor_10000" operation_key="r{r}_monitor_10000" '
                      f'operation="monitor" interval="10000" op-status="{4 if bad else 0}" '
                      f'rc-code="{1 if bad else 0}" call-id="{2 * r + 2}" transition-key="2:1:0:{_KEY}" '
                      f'transition-magic="0:0;2:1:0:{_KEY}" last-rc-change="1700000000" exec-time="5" '
                      f'queue-time="0"/>')
                else:
                    w(f'<lrm_rsc_op id="r{r}_last_0" operation_key="r{r}_monitor_0" operation="monitor" '
                      f'interval="0" op-status="0" rc-code="7" call-id="{2 * r + 1}" '
                      f'transition-key="3:1:7:{_KEY}" transition-magic="0:7;3:1:7:{_KEY}" '
                      f'last-rc-change="1700000000" exec-time="5" queue-time="0"/>')
                w("</lrm_resource>\n")
            w("</lrm_resources></lrm>\n</node_state>\n")
        w("</status>\n</cib>\n")
    return active, failed


def run_peer(path: Path, timeout: float) -> tuple[float | None, str]:
    crm_mon = shutil.which("crm_mon")
    if crm_mon is None:
        return None, "crm_mon not installed (Debian: pacemaker-cli-utils)"
    env = dict(os.environ, CIB_file=str(path), LC_ALL="C")
    started = time.perf_counter()
    try:
        run = subprocess.run([crm_mon, "-1", "--output-as=xml"], env=env, capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"crm_mon did not finish within {timeout:.0f} s"
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        return None, f"crm_mon failed: {run.stderr.strip()[:200]}"
    return elapsed, run.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--peer-timeout", type=float, default=900.0)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hk-import-bench-") as tmp:
        path = Path(tmp) / "cib.xml"
        started = time.perf_counter()
        active, failed = generate(path, args.nodes, args.resources)
        size = path.stat().st_size
        print(f"generated {args.nodes} nodes x {args.resources} resources: {size / 1e6:.0f} MB, "
              f"{args.nodes * args.resources} histories, in {time.perf_counter() - started:.1f} s")
        started, cpu = time.perf_counter(), time.process_time()
        spec = read_cib(path)
        ours, cpu = time.perf_counter() - started, time.process_time() - cpu
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        state = spec.state
        assert state is not None
        got_active = sum(1 for s in state.resources if s.role != "Stopped")
        got_failed = sum(1 for s in state.resources if s.failed)
        # CPU time too: on a shared machine the wall time mostly measures the neighbours.
        print(f"hakeeper read_cib: {ours:.2f} s (cpu {cpu:.2f} s, {size / 1e6 / ours:.0f} MB/s), "
              f"peak RSS {rss:.0f} MB, "
              f"{got_active} active ({active} expected), {got_failed} failed ({failed} expected)")
        ok = (got_active, got_failed) == (active, failed)
        if not args.no_peer:
            peer, output = run_peer(path, args.peer_timeout)
            if peer is None:
                print(f"peer: {output}")
            else:
                peer_active = len(re.findall(r'<resource [^>]*active="true"', output))
                peer_failed = len(re.findall(r'<resource [^>]*failed="true"', output))
                print(f"crm_mon -1 (Pacemaker {_version()}): {peer:.2f} s, {peer_active} active, "
                      f"{peer_failed} failed; ratio crm_mon/hakeeper = {peer / ours:.1f}x")
                ok = ok and (peer_active, peer_failed) == (got_active, got_failed)
        print("agreement:", "yes" if ok else "NO")
        return 0 if ok else 1


def _version() -> str:
    try:
        out = subprocess.run(["crm_mon", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.split()[1] if out.stdout.split()[1:] else "?"


if __name__ == "__main__":
    raise SystemExit(main())
