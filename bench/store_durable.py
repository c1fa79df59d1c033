"""The durable embedded store: write latency through its socket (against the in-memory store and
a single-member etcd on the same disk, the real peer) and restart time with N keys.

    python3 bench/store_durable.py [--writes 2000] [--keys 10000,100000]

Every write is acknowledged only after SQLite's write-ahead log is fsynced (synchronous=FULL);
etcd also fsyncs its WAL before it acknowledges, so the two are compared like for like.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hakeeper.coord.durable import DurableStore
from hakeeper.coord.etcd import EtcdStore
from hakeeper.coord.etcdproc import loopback_cluster
from hakeeper.coord.localserver import RemoteStore
from hakeeper.coord.store import Put, Store


def serve(sock: str, data: str | None) -> tuple[subprocess.Popen[bytes], float]:
    """Start `hakeeper store serve`; (process, seconds until it serves)."""
    started = time.monotonic()
    cmd = [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", sock, "--cluster", "bench"]
    proc = subprocess.Popen(
        [*cmd, *(["--data", data] if data else ["--memory"])], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None and b"serving" in proc.stdout.readline()
    return proc, time.monotonic() - started


async def latencies(store: Store, writes: int) -> list[float]:
    out = []
    value = b"x" * 200
    for i in range(writes):
        t = time.perf_counter()
        await store.put(f"/bench/{i % 500}", value)
        out.append(time.perf_counter() - t)
    return out


def summary(name: str, lat: list[float]) -> float:
    lat = sorted(lat)
    p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
    print(f"  {name:<22} p50 {p50 * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms   {len(lat) / sum(lat):7.0f} writes/s")
    return p50


def bench_writes(base: Path, writes: int) -> None:
    print(f"write latency, {writes} sequential puts of 200 bytes, one client:")
    results = {}
    for name, data in (("embedded, memory", None), ("embedded, --data", str(base / "data-w"))):
        sock = str(base / f"{name[-4:]}.sock")
        proc, _ = serve(sock, data)
        try:

            async def run(sock: str = sock) -> list[float]:
                async with RemoteStore(sock) as s:
                    return await latencies(s, writes)

            results[name] = summary(name, asyncio.run(run()))
        finally:
            proc.terminate()
            proc.wait(10)
    cluster = loopback_cluster(str(base / "etcd"), 1)
    cluster.start()
    try:

        async def run_etcd() -> list[float]:
            async with EtcdStore(cluster.endpoints) as s:
                return await latencies(s, writes)

        results["etcd 3.4 (1 member)"] = summary("etcd 3.4 (1 member)", asyncio.run(run_etcd()))
    finally:
        cluster.stop()
    print(f"  ratio p50 embedded --data / etcd: {results['embedded, --data'] / results['etcd 3.4 (1 member)']:.2f}")


def bench_restart(base: Path, counts: list[int]) -> None:
    print("restart: `store serve --data` until it serves (process start included), and the file's size:")
    for n in counts:
        data = base / f"data-{n}"

        async def fill(data: Path = data, n: int = n) -> None:
            store = DurableStore.open(data, "bench")
            for start in range(0, n, 1000):  # 1000 keys per transaction: filling is not what is measured
                await store.txn(
                    [], [Put(f"/hakeeper/bench/k{i:07}", b"v" * 200) for i in range(start, min(n, start + 1000))]
                )
            for i in range(200):  # and some leases, as agents hold them
                await store.put(f"/hakeeper/bench/members/n{i}", b"up", await store.grant(10))
            await store.close()

        asyncio.run(fill())
        size = sum(f.stat().st_size for f in data.iterdir())
        t = time.monotonic()
        reopened = DurableStore.open(data, "bench")
        load = time.monotonic() - t
        asyncio.run(reopened.close())
        proc, seconds = serve(str(base / f"r{n}.sock"), str(data))
        proc.terminate()
        proc.wait(10)
        baseline_proc, baseline = serve(str(base / f"m{n}.sock"), None)
        baseline_proc.terminate()
        baseline_proc.wait(10)
        print(
            f"  {n:>8} keys: {seconds:5.2f} s (an empty in-memory store: {baseline:4.2f} s; reading the file: "
            f"{load:4.2f} s), {size / 1e6:6.1f} MB"
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--writes", type=int, default=2000)
    p.add_argument("--keys", default="10000,100000")
    args = p.parse_args()
    # On the same disk as /var/lib (not a tmpfs), so fsync costs what it costs in production.
    with tempfile.TemporaryDirectory(prefix="hk-store-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp")) as d:
        bench_writes(Path(d), args.writes)
        bench_restart(Path(d), [int(n) for n in args.keys.split(",")])


if __name__ == "__main__":
    main()
