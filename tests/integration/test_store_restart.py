"""`hakeeper store serve --data DIR` across SIGKILL: every acknowledged write is there after a
restart, revisions continue, watches resume from a revision, and leases keep their remaining TTL.

The server is the real command in its own process; the client keeps its own record of what was
acknowledged (an independent checker), and any acknowledged write missing afterwards fails."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hakeeper.coord.localserver import RemoteStore
from hakeeper.coord.store import Compare, LeaseExpired, Put, StoreUnavailable


class Server:
    def __init__(self, tmp: Path) -> None:
        self.socket = str(tmp / "store.sock")
        self.data = tmp / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, cluster: str = "restart") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", self.socket,
             "--data", str(self.data), "--cluster", cluster],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once it serves
        assert b"serving" in line, (line, self.proc.stderr.read() if self.proc.stderr else b"")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(10) == 0
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Server(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def test_sigkill_mid_writes_loses_no_acknowledged_write(server: Server) -> None:
    server.start()
    acked: dict[str, tuple[bytes, int]] = {}  # key -> (value, revision) as the server acknowledged
    counters: dict[str, int] = {}

    async def writer(n: int, store: RemoteStore) -> None:
        i = 0
        while True:
            key, value = f"/c/w{n}/{i}", f"{n}-{i}".encode()
            if i % 3 == 0:  # a compare-and-set transaction touching a shared counter too
                seen = counters.get(f"/c/count{n}", 0)
                res = await store.txn(
                    [Compare(f"/c/count{n}", "version", "==", seen)],
                    [Put(key, value), Put(f"/c/count{n}", str(i).encode())],
                )
                assert res.succeeded
                counters[f"/c/count{n}"] = seen + 1
                acked[f"/c/count{n}"] = (str(i).encode(), res.revision)
                rev = res.revision
            else:
                rev = await store.put(key, value)
            acked[key] = (value, rev)
            i += 1

    async def write_then_kill() -> None:
        stores = [RemoteStore(server.socket, timeout=2) for _ in range(4)]
        tasks = [asyncio.create_task(writer(n, s)) for n, s in enumerate(stores)]
        while len(acked) < 400:
            await asyncio.sleep(0.01)
        server.kill()  # while all four writers have requests in flight
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        for s in stores:
            await s.close()

    asyncio.run(write_then_kill())
    server.start()
    top = max(rev for _, rev in acked.values())

    async def check() -> None:
        async with RemoteStore(server.socket) as store:
            kvs, revision = await store.get_prefix("/c/")
            found = {kv.key: (kv.value, kv.mod_revision) for kv in kvs}
            lost = {k: v for k, v in acked.items() if found.get(k) != v and not k.startswith("/c/count")}
            assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {sorted(lost.items())[:3]}"
            for key, (_value, rev) in acked.items():  # a counter may be one write ahead, never behind
                if key.startswith("/c/count"):
                    assert found[key][1] >= rev
            assert revision >= top
            assert await store.put("/c/after", b"x") == revision + 1  # revisions continue
            # A watch from an acknowledged revision replays every later change, in order.
            events = []
            async for batch in store.watch_prefix("/c/", top):
                events += batch
                if events[-1].key == "/c/after":
                    break
            assert events[0].revision == top and [e.revision for e in events] == sorted(e.revision for e in events)

    asyncio.run(check())


def test_leases_resume_with_their_remaining_ttl(server: Server) -> None:
    server.start()

    async def grant() -> tuple[int, int]:
        async with RemoteStore(server.socket) as store:
            long, short = await store.grant(30), await store.grant(4)
            await store.put("/l/long", b"x", long)
            await store.put("/l/short", b"x", short)
            return long, short

    long, short = asyncio.run(grant())
    server.kill()
    time.sleep(6)  # longer than the short lease's TTL: the downtime must not count against it
    server.start()
    restarted = time.monotonic()

    async def check() -> None:
        async with RemoteStore(server.socket) as store:
            assert await store.get("/l/short") is not None, "a store restart expired a live lease"
            assert await store.keepalive(long) == 30
            # Not refreshed after the restart, the short lease runs out what it had left (< 4 s).
            while await store.get("/l/short") is not None:
                assert time.monotonic() - restarted < 4 + 2, "the short lease outlived its TTL"
                await asyncio.sleep(0.1)
            with pytest.raises(LeaseExpired):
                await store.keepalive(short)
            assert await store.get("/l/long") is not None

    asyncio.run(check())


def test_data_file_is_private_and_foreign_files_are_refused(server: Server, tmp_path: Path) -> None:
    server.start("alpha")
    server.kill()
    db = server.data / "store.db"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.data).st_mode) == 0o700
    before = db.read_bytes(), (server.data / "store.db-wal").read_bytes()
    sock_before = os.lstat(server.socket).st_ino  # the killed server's socket, left as it was
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", server.socket,
         "--data", str(server.data), "--cluster", "beta"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2, out
    assert "belongs to cluster 'alpha', not 'beta'" in out.stderr and "Traceback" not in out.stderr
    assert (db.read_bytes(), (server.data / "store.db-wal").read_bytes()) == before
    assert os.lstat(server.socket).st_ino == sock_before
    server.start("alpha")  # recovers the killed server's log; a clean stop folds it into the file
    server.terminate()
    assert not os.path.exists(server.socket) and not os.path.exists(server.data / "store.db-wal")
    # A corrupt file: refused, not a byte changed.
    corrupt = bytearray(db.read_bytes())
    corrupt[:16] = b"not sqlite at al"
    db.write_bytes(bytes(corrupt))
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", server.socket,
         "--data", str(server.data), "--cluster", "alpha"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2 and "corrupt" in out.stderr and "Traceback" not in out.stderr, out
    assert db.read_bytes() == bytes(corrupt)


def test_two_servers_never_share_a_data_directory(server: Server, tmp_path: Path) -> None:
    server.start()
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", str(tmp_path / "other.sock"),
         "--data", str(server.data), "--cluster", "restart"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2 and "another hakeeper store is serving this data directory" in out.stderr, out

    async def still_serving() -> None:
        async with RemoteStore(server.socket) as store:
            assert await store.put("/x", b"1") > 1

    asyncio.run(still_serving())




def test_memory_and_data_exclude_each_other_and_the_default_is_on_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-m", "hakeeper", "store", "serve", "--socket", str(tmp_path / "s.sock"),
         "--memory", "--data", str(data)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2 and "not allowed with argument" in out.stderr, out
    assert not data.exists() and not (tmp_path / "s.sock").exists()
    usage = subprocess.run([sys.executable, "-m", "hakeeper", "store", "serve", "--help"],
                           capture_output=True, text=True, timeout=120)
    assert "(default /var/lib/hakeeper/store)" in " ".join(usage.stdout.split()), usage.stdout
