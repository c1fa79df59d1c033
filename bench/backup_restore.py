"""Backup and restore of a 3-node Galera control plane with a database of a given size (root).

    python3 bench/backup_restore.py --size-mb 1024

Fills a table with incompressible rows (RANDOM_BYTES) until InnoDB holds --size-mb, then measures:
`hakeeper backup create` (mariabackup + prepare + sha256 of every file) on node 1 while a writer
keeps inserting, the same copy by bare mariabackup --backup/--prepare (the peer: what hakeeper adds
is checksums and the manifest), `hakeeper backup verify`; then the controllers are destroyed and
rebuilt, and `hakeeper backup restore` is timed, with the time until the restored cluster takes its
first write and until all three nodes are Synced. Prints one JSON line per figure set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)

import pymysql  # type: ignore[import-untyped]  # noqa: E402

from hakeeper.galera import checker  # noqa: E402
from hakeeper.galera.lab import CHECK_PASSWORD, CHECK_USER, MOUNT, GaleraLab, galera_spec  # noqa: E402

TAG, SUBNET = "bb", 13
BATCH_ROWS = 20_000  # ~20 MB a transaction: Galera replicates each as one write set


def hk_in(lab: GaleraLab, node: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": SRC, "no_proxy": "*"}
    began = time.monotonic()
    out = lab.hosts[node].run([sys.executable, "-m", "hakeeper", *args], timeout=7200, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"hakeeper {' '.join(args[:2])}: {out.stderr[-1000:]}")
    return time.monotonic() - began, out


def start(work: str, name: str) -> GaleraLab:
    lab = GaleraLab(os.path.join(work, name), tag=TAG, subnet=SUBNET)
    try:
        _start(lab)
    except BaseException:
        lab.close()  # namespaces, processes, node directories: nothing left behind
        raise
    return lab


def _start(lab: GaleraLab) -> None:
    lab.start()
    # GaleraLab.apply allows the CLI 60 s, which a machine at a load average of 60 exceeds.
    spec = Path(lab.workdir, "cluster.yaml")
    spec.write_text(galera_spec(lab))
    lab.hk("config", "apply", "--yes", str(spec), timeout=600)
    first = lab.wait_synced(1, 600)[0]
    lab.create_check_user(first)
    checker.prepare(lab.addr[first], CHECK_USER, CHECK_PASSWORD)
    lab.wait_quiet(600)


def fill(host: str, size_mb: int) -> tuple[int, float]:
    began = time.monotonic()
    conn = pymysql.connect(host=host, user=CHECK_USER, password=CHECK_PASSWORD, autocommit=True,
                           read_timeout=3600, write_timeout=3600)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS bench")
        cur.execute("CREATE TABLE IF NOT EXISTS bench.blobs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    "data VARBINARY(1024) NOT NULL) ENGINE=InnoDB")
        cur.execute("USE bench")  # the SEQUENCE engine's seq_1_to_N tables appear in the current database
        cur.execute("INSERT INTO bench.blobs (data) SELECT RANDOM_BYTES(1000) FROM seq_1_to_1000")
        while True:
            cur.execute("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                        "WHERE table_schema = 'bench'")
            size = int(cur.fetchone()[0])
            if size >= size_mb * 1024 * 1024:
                break
            cur.execute(f"INSERT INTO bench.blobs (data) SELECT RANDOM_BYTES(1000) FROM seq_1_to_{BATCH_ROWS}")
    conn.close()
    return size, time.monotonic() - began


def first_write(lab: GaleraLab, timeout: float) -> float:
    """Seconds until an INSERT through any node is acknowledged."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        for addr in lab.addr.values():
            try:
                conn = checker.connect(addr, CHECK_USER, CHECK_PASSWORD, timeout=1)
                with conn.cursor() as cur:
                    cur.execute(f"INSERT INTO {checker.TABLE} (id, at) VALUES (%s, %s)", (int(time.time() * 1e6), 0))
                conn.close()
                return time.monotonic() - began
            except pymysql.MySQLError:
                continue
        time.sleep(0.2)
    raise TimeoutError(f"no write acknowledged in {timeout:g}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256, help="InnoDB size of the bench table (default 256)")
    ap.add_argument("--workdir", default="/var/tmp", help="where the labs and the backup go")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hkbb-", dir=args.workdir)
    try:
        print(json.dumps(measure(work, args.size_mb)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the backup and both labs' directories
    return 0


def measure(work: str, size_mb: int) -> dict[str, object]:
    lab = start(work, "old")
    figures: dict[str, object] = {"size_mb_requested": size_mb}
    try:
        size, fill_s = fill(lab.addr[lab.names[0]], size_mb)
        figures.update(table_bytes=size, fill_s=round(fill_s, 1))
        node = lab.names[0]
        writer = checker.Writer(list(lab.addr.values()), CHECK_USER, CHECK_PASSWORD, interval=0.01)
        writer.start()
        try:
            backup_s, _ = hk_in(lab, node, "backup", "create", "--to", f"{work}/backups", "--mysql-config",
                                  f"{MOUNT}/my.cnf", "--mysql-socket", f"{MOUNT}/mysqld.sock", "--file",
                                  f"{MOUNT}/my.cnf", "--etcd", lab.endpoints(node), "--cluster", TAG)
            began = time.monotonic()
            peer = lab.hosts[node].run(["sh", "-c", f"mariabackup --defaults-file={MOUNT}/my.cnf --backup "
                                        f"--galera-info --target-dir={work}/peer --socket={MOUNT}/mysqld.sock "
                                        f"--user=root && mariabackup --prepare --target-dir={work}/peer"],
                                       timeout=7200)
            peer_s = time.monotonic() - began
            assert peer.returncode == 0, peer.stderr[-500:]
        finally:
            writer.stop()
        [backup] = [str(p) for p in Path(work, "backups").iterdir()]
        manifest = json.loads(Path(backup, "manifest.json").read_text())
        began = time.monotonic()
        verify = subprocess.run([sys.executable, "-m", "hakeeper", "backup", "verify", backup],
                                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC})
        verify_s = time.monotonic() - began
        assert verify.returncode == 0, verify.stderr
        figures.update(backup_s=round(backup_s, 1), backup_bytes=sum(e["size"] for e in manifest["entries"]),
                       files=len(manifest["entries"]), peer_mariabackup_s=round(peer_s, 1),
                       ratio_to_peer=round(backup_s / peer_s, 2), verify_s=round(verify_s, 1),
                       writes_during_backup=len(writer.acknowledged()))
        shutil.rmtree(f"{work}/peer", ignore_errors=True)
        print(json.dumps(figures), flush=True)  # the backup's figures, whatever the restore does
    finally:
        lab.close()
    lab = GaleraLab(os.path.join(work, "new"), tag=TAG, subnet=SUBNET)
    try:
        lab.etcd.start(timeout=60)
        node = lab.names[0]
        datadirs = [f"{MOUNT}/data"] + [f"{lab.node_dir(n)}/data" for n in lab.names[1:]]
        began = time.monotonic()
        restore_s, _ = hk_in(lab, node, "backup", "restore", backup, *(a for d in datadirs for a in ("--datadir", d)),
                             "--etcd", lab.endpoints(node), "--cluster", TAG)
        for n in lab.names:
            lab.start_agent(n)
        writable_s = first_write(lab, 1800) + restore_s
        lab.wait_synced(3, 1800)
        synced_s = time.monotonic() - began
        figures.update(restore_command_s=round(restore_s, 1), restore_to_writable_s=round(writable_s, 1),
                       restore_to_3_synced_s=round(synced_s, 1), load_average=os.getloadavg()[0])
    finally:
        lab.close()
    return figures


if __name__ == "__main__":
    sys.exit(main())
