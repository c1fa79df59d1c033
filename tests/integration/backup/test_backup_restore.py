"""Backup and restore of a real control plane: a 3-node Galera cluster under hakeeper agents taking
writes (counted by the independent checker), its store configuration and rendered files, and a
real one-host Ceph cluster holding the images and volumes the database names.

The module runs in order: the backup is taken under load; a tampered copy fails verify; the
controllers are destroyed (namespaces, data directories, store); a restore onto a node holding
data is refused without --force; the restore into new controllers bootstraps a cluster that takes
writes again with every row acknowledged before the backup present and no row the checker does
not know; the consistency check between the database and Ceph finds the seeded rows and images
and reports the planted orphan and the planted missing image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import needs_binary, needs_ocf_agent, needs_root
from hakeeper.ceph.lab import CephLab
from hakeeper.galera import checker
from hakeeper.galera.lab import CHECK_PASSWORD, CHECK_USER, MOUNT, GaleraLab, galera_spec

# A test's timeout counts its fixture's setup: a Ceph cluster and a Galera cluster started on a
# shared, loaded machine can take minutes before the first test runs.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(1200)]

TAG, SUBNET, CEPH_SUBNET = "bk", 10, 50
SRC = str(Path(__file__).resolve().parents[3] / "src")
IMAGES = {"1b7e0c1e-0000-4000-8000-000000000001": "active", "1b7e0c1e-0000-4000-8000-000000000002": "active"}
MISSING_IMAGE = "1b7e0c1e-0000-4000-8000-0000000000ff"  # an active row whose RBD image is gone
DELETED_IMAGE = "1b7e0c1e-0000-4000-8000-000000000003"
VOLUMES = {"2c8f1d2f-0000-4000-8000-000000000001": "available", "2c8f1d2f-0000-4000-8000-000000000002": "in-use"}
ORPHAN = "volume-2c8f1d2f-0000-4000-8000-0000000000ee"  # an RBD image no row names


@dataclass
class World:
    work: Path
    ceph: CephLab
    lab: GaleraLab
    backup: str = ""
    key: str = ""
    etc: Path = field(default_factory=Path)  # a controller's configuration files (rendered)
    acked_before: set[int] = field(default_factory=set)
    acked_after: set[int] = field(default_factory=set)  # acknowledged after the backup finished
    attempted: range = range(0)


def hk_in(lab: GaleraLab, node: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """hakeeper run on a controller (inside its namespace, where /etc/hkgalera is its own)."""
    env = {**os.environ, "PYTHONPATH": SRC, "no_proxy": "*"}
    return lab.hosts[node].run([sys.executable, "-m", "hakeeper", *args], timeout=timeout, env=env)


def hk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def ceph_args(ceph: CephLab) -> list[str]:
    return ["--ceph-conf", ceph.conf_path, "--ceph-id", "admin", "--ceph-keyring", ceph.admin_keyring]


def new_galera(work: Path, name: str) -> GaleraLab:
    needs_root()
    for tool, package in (("etcd", "etcd-server"), ("mariadbd", "mariadb-server"),
                          ("mariadb-install-db", "mariadb-server"), ("mariabackup", "mariadb-backup")):
        needs_binary(tool, package)
    needs_ocf_agent("heartbeat/galera", "resource-agents")
    return GaleraLab(str(work / name), tag=TAG, subnet=SUBNET)


def start_galera(lab: GaleraLab) -> None:
    lab.start()
    # GaleraLab.apply allows the CLI 60 s, which a machine at a load average of 60 exceeds.
    spec = Path(lab.workdir, "cluster.yaml")
    spec.write_text(galera_spec(lab))
    lab.hk("config", "apply", "--yes", str(spec), timeout=600)
    first = lab.wait_synced(1, 240)[0]
    lab.create_check_user(first)
    checker.prepare(lab.addr[first], CHECK_USER, CHECK_PASSWORD)
    lab.wait_quiet(240)


def seed_openstack_tables(lab: GaleraLab, ceph: CephLab) -> None:
    """Minimal glance `images` and cinder `volumes` tables, and the RBD images they name."""
    conn = checker.connect(lab.addr[lab.names[0]], CHECK_USER, CHECK_PASSWORD, timeout=5)
    with conn.cursor() as cur:
        for schema, table in (("glance", "images"), ("cinder", "volumes")):
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {schema}")
            cur.execute(f"CREATE TABLE {schema}.{table} (id VARCHAR(36) PRIMARY KEY, status VARCHAR(30) NOT NULL, "
                        "deleted TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB")
        for image, status in [*IMAGES.items(), (MISSING_IMAGE, "active")]:
            cur.execute("INSERT INTO glance.images VALUES (%s, %s, 0)", (image, status))
        cur.execute("INSERT INTO glance.images VALUES (%s, 'deleted', 1)", (DELETED_IMAGE,))
        for volume, status in VOLUMES.items():
            cur.execute("INSERT INTO cinder.volumes VALUES (%s, %s, 0)", (volume, status))
    conn.close()
    names = [f"images/{i}" for i in IMAGES] + [f"volumes/volume-{v}" for v in VOLUMES] + [f"volumes/{ORPHAN}"]
    for name in names:
        out = ceph.rbd("create", "--size", "4", name, fmt=False)
        assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    needs_root()
    for tool, package in (("ceph-mon", "ceph-mon"), ("ceph-osd", "ceph-osd"), ("rbd", "ceph-common"),
                          ("rados", "ceph-common")):
        needs_binary(tool, package)
    work = tmp_path_factory.mktemp("hkbk")
    with CephLab(subnet=CEPH_SUBNET, keep_logs=str(work / "ceph-logs")) as ceph:
        # The lab plugs the test itself into the Ceph network (10.87.<subnet>.254): its own subnet,
        # so that clashes with no other suite's cluster.
        for pool in ("images", "volumes", "backups"):
            ceph.check("osd", "pool", "create", pool, "8")
            ceph.check("osd", "pool", "application", "enable", pool, "rbd" if pool != "backups" else "hakeeper")
        lab = new_galera(work, "old")
        w = World(work, ceph, lab)
        try:
            start_galera(lab)
            seed_openstack_tables(lab, ceph)
            yield w
        finally:
            w.lab.close()


def test_backup_taken_under_write_load(world: World) -> None:
    lab = world.lab
    world.etc = world.work / "ctl-etc"
    (world.etc / "ceph").mkdir(parents=True)
    (world.etc / "glance-api.conf").write_text("[glance_store]\ndefault_store = rbd\nrbd_store_pool = images\n")
    keyring = world.etc / "ceph" / "ceph.client.volumes.keyring"
    keyring.write_text("[client.volumes]\n\tkey = AQBSeKjkbWMtKRAAsecretsecretsecret000000==\n")
    keyring.chmod(0o640)
    world.key = str(world.work / "backup.key")
    assert hk("backup", "keygen", world.key).returncode == 0
    writer = checker.Writer(list(lab.addr.values()), CHECK_USER, CHECK_PASSWORD, interval=0.005)
    first = writer.next_id
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while len(writer.acknowledged()) < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        world.acked_before = writer.acknowledged()
        node = lab.names[0]
        out = hk_in(lab, node, "backup", "create", "--to", str(world.work / "backups"),
                    "--mysql-config", f"{MOUNT}/my.cnf", "--mysql-socket", f"{MOUNT}/mysqld.sock",
                    "--file", f"{MOUNT}/my.cnf", "--file", str(world.etc / "glance-api.conf"),
                    "--file", str(keyring), "--backup-key", world.key,
                    "--etcd", lab.endpoints(node), "--cluster", TAG)
        assert out.returncode == 0, out.stderr
        done = writer.acknowledged()
        # Writes go on after the backup; none of them may appear in the restore.
        deadline = time.monotonic() + 30
        while len(writer.acknowledged()) < len(done) + 50 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        writer.stop()
    world.acked_after = writer.acknowledged() - done
    world.attempted = range(first, writer.next_id)
    assert world.acked_after, "no write was acknowledged after the backup: the cluster stopped taking writes"
    [world.backup] = [str(p) for p in (world.work / "backups").iterdir()]
    manifest = json.loads(Path(world.backup, "manifest.json").read_text())
    pos = manifest["database"]["position"]
    assert pos["seqno"] > 0 and pos["uuid"] != "00000000-0000-0000-0000-000000000000"
    assert manifest["secrets"] == "encrypted" and manifest["config_version"] >= 1
    # The keyring is only there encrypted; its key text appears nowhere in the backup.
    for path in Path(world.backup).rglob("*"):
        if path.is_file():
            assert b"secretsecretsecret" not in path.read_bytes(), path
    listed = hk("backup", "list", str(world.work / "backups"))
    assert listed.returncode == 0 and manifest["id"] in listed.stdout
    assert hk("backup", "verify", world.backup).returncode == 0


def test_a_tampered_backup_fails_verify_naming_the_file(world: World) -> None:
    copy = world.work / "tampered" / Path(world.backup).name
    shutil.copytree(world.backup, copy)
    victim = next(p for p in sorted((copy / "database").rglob("*.ibd")))
    with open(victim, "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    out = hk("backup", "verify", str(copy))
    assert out.returncode == 2, out
    assert str(victim) in out.stderr and "sha256" in out.stderr and "Traceback" not in out.stderr
    # Restore checks the same before touching anything.
    target = world.work / "untouched"
    target.mkdir()
    out = hk("backup", "restore", str(copy), "--datadir", str(target), "--skip-config",
             "--backup-key", world.key, "--root", str(world.work / "root-unused"))
    assert out.returncode == 2 and str(victim) in out.stderr
    assert list(target.iterdir()) == [] and not (world.work / "root-unused").exists()


def test_backup_to_ceph_lists_and_verifies(world: World) -> None:
    out = hk("backup", "create", "--to", "ceph:backups", "--file", str(world.etc / "glance-api.conf"),
             "--skip-config", *ceph_args(world.ceph))
    assert out.returncode == 0, out.stderr
    listed = hk("backup", "list", "ceph:backups", *ceph_args(world.ceph))
    assert listed.returncode == 0, listed.stderr
    backup_id = json.loads(listed.stdout.splitlines()[-1])["id"]
    out = hk("backup", "verify", f"ceph:backups/{backup_id}", *ceph_args(world.ceph))
    assert out.returncode == 0, out.stderr
    missing = hk("backup", "verify", "ceph:backups/no-such-backup", *ceph_args(world.ceph))
    assert missing.returncode == 2 and "no such backup" in missing.stderr


def test_restore_into_new_controllers(world: World) -> None:
    # The controllers are destroyed: processes, namespaces, data directories, the store's data,
    # and the configuration files on their disks.
    world.lab.close()
    for d in (f"/etc/netns/{h.ns}" for h in world.lab.hosts.values()):
        assert not os.path.exists(d)
    shutil.rmtree(world.etc)
    lab = world.lab = new_galera(world.work, "new")
    lab.etcd.start(timeout=30)
    node = lab.names[0]
    datadirs = [f"{MOUNT}/data"] + [f"{lab.node_dir(n)}/data" for n in lab.names[1:]]
    restore = ["backup", "restore", world.backup, *(a for d in datadirs for a in ("--datadir", d)),
               "--backup-key", world.key, "--etcd", lab.endpoints(node), "--cluster", TAG]
    # A controller that holds data is refused, and nothing at all is done.
    planted = Path(lab.node_dir(lab.names[1]), "data", "keystone")
    planted.mkdir()
    out = hk_in(lab, node, *restore)
    assert out.returncode == 2, out
    assert f"{lab.node_dir(lab.names[1])}/data" in out.stderr and "--force" in out.stderr
    assert not Path(lab.node_dir(node), "data", "grastate.dat").exists() and not world.etc.exists()
    assert json.loads(lab.hk("status", "--json").stdout)["config_version"] is None
    planted.rmdir()
    began = time.monotonic()
    out = hk_in(lab, node, *restore)
    assert out.returncode == 0, out.stderr + out.stdout
    assert (world.etc / "ceph" / "ceph.client.volumes.keyring").read_text().count("secretsecretsecret") == 1
    assert oct((world.etc / "ceph" / "ceph.client.volumes.keyring").stat().st_mode & 0o777) == "0o640"
    assert json.loads(lab.hk("status", "--json").stdout)["config_version"] == 1  # the backup's, restored
    for n in lab.names:
        lab.start_agent(n)
    lab.wait_synced(3, 300)
    writable = time.monotonic() - began
    lab.wait_quiet(240)
    writer = checker.Writer(list(lab.addr.values()), CHECK_USER, CHECK_PASSWORD, interval=0.005)
    writer.start()
    deadline = time.monotonic() + 60
    while len(writer.acknowledged()) < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    writer.stop()
    verdict = checker.verify(lab.addr, world.acked_before | writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    assert verdict.ok, verdict.describe()
    assert len(writer.acknowledged()) >= 50, "the restored cluster does not take writes"
    rows = checker.node_rows(lab.addr[lab.names[2]], CHECK_USER, CHECK_PASSWORD) - writer.acknowledged()
    unknown = {r for r in rows if r not in world.attempted}
    assert not unknown, f"rows nobody wrote: {sorted(unknown)[:5]}"
    late = rows & world.acked_after
    assert not late, f"{len(late)} rows acknowledged after the backup finished are in it"
    print(f"restored to a writable 3-node cluster in {writable:.1f}s; {len(world.acked_before)} rows "
          f"acknowledged before the backup, {len(rows)} restored")


def test_consistency_between_database_and_ceph(world: World) -> None:
    lab = world.lab
    defaults = world.work / "db.cnf"
    defaults.write_text(f"[client]\nhost = {lab.addr[lab.names[0]]}\nuser = {CHECK_USER}\n"
                        f"password = {CHECK_PASSWORD}\n")
    out = hk("backup", "check", "--db-defaults", str(defaults), "--json", *ceph_args(world.ceph))
    assert out.returncode == 1, out
    report = json.loads(out.stdout)
    assert report["rows"] == len(IMAGES) + 2 + len(VOLUMES)
    assert report["rbd_images"] == len(IMAGES) + len(VOLUMES) + 1
    assert [(m["table"], m["id"], m["pool"]) for m in report["missing"]] == [("images", MISSING_IMAGE, "images")]
    assert [(o["pool"], o["rbd_name"]) for o in report["orphans"]] == [("volumes", ORPHAN)]
    # Reported, never deleted.
    assert ORPHAN in world.ceph.rbd("ls", "volumes", fmt=False).stdout
    text = hk("backup", "check", "--db-defaults", str(defaults), *ceph_args(world.ceph))
    assert f"volumes/{ORPHAN}" in text.stdout and f"images row {MISSING_IMAGE}" in text.stdout
