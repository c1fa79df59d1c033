"""`hakeeper backup keygen|create|list|verify|restore|check`."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from cryptography.fernet import Fernet

from hakeeper.agent import operator as op
from hakeeper.agent import state as st
from hakeeper.agent.commands import _run, _store_args, _store_choice, operator_identity
from hakeeper.backup import archive, cephio, consistency
from hakeeper.backup.create import Sources, create
from hakeeper.backup.mariadb import Connection, table_rows
from hakeeper.backup.plan import StoreState
from hakeeper.backup.restore import Prepared, carry_out, prepare
from hakeeper.backup.secretbox import BackupKey, generate_key, load_key
from hakeeper.coord.store import Store
from hakeeper.errors import InputError
from hakeeper.spec import ClusterSpec


def _ceph_target(args: argparse.Namespace, pool: str) -> cephio.CephTarget:
    return cephio.CephTarget(pool, args.ceph_conf, args.ceph_id, args.ceph_keyring)


def _key(args: argparse.Namespace) -> BackupKey | None:
    return load_key(args.backup_key) if getattr(args, "backup_key", None) else None


def _read_config(args: argparse.Namespace) -> tuple[ClusterSpec, int] | None:
    if args.skip_config or _store_choice(args) is None:
        return None
    found: list[tuple[ClusterSpec, int] | None] = [None]

    async def body(store: Store, keys: st.Keys) -> int:
        _, version, spec = await op.current_config(store, keys)
        found[0] = (spec, version) if spec is not None else None
        return 0

    if _run(args, body) != 0:
        raise InputError.at("the store cannot be read: nothing backed up", field="--etcd/--store")
    return found[0]


def _keygen(args: argparse.Namespace) -> int:
    generate_key(args.file)
    print(f"wrote a new backup key to {args.file} (mode 600): keep a copy apart from the backups")
    return 0


def _create(args: argparse.Namespace) -> int:
    dest = cephio.parse_destination(args.to)
    database = Connection(args.mysql_config, args.mysql_socket, args.mysql_user) if args.mysql_config else None
    sources = Sources(database, _read_config(args), args.file or [], args.secret_file or [])
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hkbackup-", dir=args.staging) as staging:
        directory = dest if isinstance(dest, str) else staging
        path, manifest = create(directory, sources, _key(args), args.include_plaintext_secrets, time.time())
        if not isinstance(dest, str):
            parts = cephio.upload(_ceph_target(args, dest[0]), path, manifest.id, staging)
            path = f"ceph:{dest[0]}/{manifest.id} ({parts} data objects)"
    pos = manifest.database.position if manifest.database else None
    print(f"backup {manifest.id}: {len(manifest.entries)} files, {manifest.total_size} bytes, secrets "
          f"{manifest.secrets}, galera {f'{pos.uuid}:{pos.seqno}' if pos else '-'}, "
          f"{time.monotonic() - began:.1f}s -> {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    where = cephio.parse_destination(args.source)
    found = (archive.list_backups(where) if isinstance(where, str)
             else cephio.manifests(_ceph_target(args, where[0])))
    for path, manifest in found:
        print(archive.summary(manifest) if manifest is not None else json.dumps({"path": path, "error": "unreadable"}))
    return 0


def _fetched(args: argparse.Namespace, staging: str) -> str:
    where = cephio.parse_destination(args.backup)
    if isinstance(where, str):
        return where.rstrip("/")
    if where[1] is None:
        raise InputError.at("name the backup: ceph:POOL/ID (hakeeper backup list ceph:POOL)", field=args.backup)
    return cephio.download(_ceph_target(args, where[0]), where[1], staging)


def _verify(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="hkbackup-", dir=args.staging) as staging:
        backup = _fetched(args, staging)
        manifest, problems = archive.verify(backup, _key(args))
    if problems:
        raise InputError(problems)
    print(f"backup {manifest.id}: all {len(manifest.entries)} files match the manifest ({manifest.total_size} bytes)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    key = _key(args)
    box = key.box if key is not None else None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    use_store = not args.skip_config and _store_choice(args) is not None
    with tempfile.TemporaryDirectory(prefix="hkbackup-", dir=args.staging) as staging:
        backup = _fetched(args, staging)
        if not use_store:
            return _restore_files(prepare(backup, args.datadir or [], "not-given" if not args.skip_config
                                          else "empty", None, args.root, key, args.force, stamp), args, box)

        async def body(store: Store, keys: st.Keys) -> int:
            raw, version, current = await op.current_config(store, keys)
            state: StoreState = "empty"
            p = prepare(backup, args.datadir or [], state, current, args.root, key, args.force, stamp)
            status = _restore_files(p, args, box)
            if status != 0 or args.dry_run or not any(s.kind == "write-config" for s in p.plan.steps):
                return status
            assert p.spec is not None
            source = f"hakeeper backup restore {p.manifest.id}"
            if not await op.write_config(store, keys, raw, p.spec, version, source, operator_identity()):
                print("error: the store's configuration changed while restoring; it was not written", file=sys.stderr)
                return 1
            print(f"restored hakeeper's configuration as version {version + 1}")
            return 0

        return _run(args, body)


def _restore_files(p: Prepared, args: argparse.Namespace, box: Fernet | None) -> int:
    print(f"restore of backup {p.manifest.id} ({p.manifest.created_at}, from {p.manifest.host}):")
    for line in p.plan.describe():
        print(f"  {line}")
    if args.dry_run:
        print("dry run: nothing done")
        return 0
    carry_out(p, args.root, box)
    if p.plan.bootstrap and p.manifest.database and p.manifest.database.position:
        pos = p.manifest.database.position
        print(f"database restored into {p.plan.bootstrap} at {pos.uuid}:{pos.seqno} (safe_to_bootstrap): start "
              "the cluster; that node bootstraps and the others join it by SST")
    return 0


def _check(args: argparse.Namespace) -> int:
    rows = {
        "images": [consistency.Row(*r) for r in table_rows(args.db_defaults, args.images_table, args.db_host)],
        "volumes": [consistency.Row(*r) for r in table_rows(args.db_defaults, args.volumes_table, args.db_host)],
    }
    target = _ceph_target(args, "")
    rbd = {pool: cephio.rbd_images(target, pool) for pool in consistency.POOL.values()}
    report = consistency.check(rows, rbd)  # type: ignore[arg-type]
    if args.json:
        print(json.dumps({"ok": report.ok, "rows": report.checked_rows, "rbd_images": report.checked_images,
                          "missing": [vars(m) for m in report.missing], "orphans": [vars(o) for o in report.orphans]}))
    else:
        for line in report.lines():
            print(line)
        print(f"{report.checked_rows} rows, {report.checked_images} RBD images: "
              + ("consistent" if report.ok else f"{len(report.missing)} missing, {len(report.orphans)} orphans"))
    return 0 if report.ok else 1


def _ceph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ceph-conf", help="ceph.conf for ceph:POOL destinations and the check")
    p.add_argument("--ceph-id", help="cephx user id (client.ID)")
    p.add_argument("--ceph-keyring", help="its keyring file")
    p.add_argument("--staging", default=None, help="where a Ceph backup is assembled (default $TMPDIR)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("backup", help="back up and restore the control plane")
    sub = p.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    a = sub.add_parser("keygen", help="make a key file that encrypts backups' secrets")
    a.add_argument("file")
    a.set_defaults(handler=_keygen)
    a = sub.add_parser("create", help="a consistent backup: database, configuration, files")
    a.add_argument("--to", required=True, help="a directory, or ceph:POOL (RADOS objects)")
    a.add_argument("--mysql-config", help="the Galera node's my.cnf (its datadir); omit for no database")
    a.add_argument("--mysql-socket", help="its socket (default: what my.cnf says)")
    a.add_argument("--mysql-user", default="root")
    a.add_argument("--file", action="append", help="a rendered configuration file to keep (repeatable)")
    a.add_argument("--secret-file", action="append", help="a file kept only encrypted (repeatable)")
    a.add_argument("--backup-key", help="key file (hakeeper backup keygen) that encrypts the secrets")
    a.add_argument("--include-plaintext-secrets", action="store_true", help="store secrets readable (no key)")
    a.add_argument("--skip-config", action="store_true", help="leave hakeeper's configuration out")
    _store_args(a)
    _ceph_args(a)
    a.set_defaults(handler=_create)
    a = sub.add_parser("list", help="the backups in a directory or a Ceph pool")
    a.add_argument("source", help="a directory, or ceph:POOL")
    _ceph_args(a)
    a.set_defaults(handler=_list)
    a = sub.add_parser("verify", help="recompute every checksum; exit 2 naming each file that differs")
    a.add_argument("backup", help="a backup directory, or ceph:POOL/ID")
    a.add_argument("--backup-key", help="also check the manifest's signature with this key")
    _ceph_args(a)
    a.set_defaults(handler=_verify)
    a = sub.add_parser("restore", help="into freshly built controllers (refuses ones holding data without --force)")
    a.add_argument("backup", help="a backup directory, or ceph:POOL/ID")
    a.add_argument("--datadir", action="append", help="a new controller's datadir; the first receives the "
                   "database and bootstraps, the others join (repeatable)")
    a.add_argument("--root", default="/", help="where the configuration files go (default /)")
    a.add_argument("--backup-key", help="the key the backup's secrets were encrypted with")
    a.add_argument("--force", action="store_true", help="set aside (never delete) what targets hold")
    a.add_argument("--dry-run", action="store_true", help="print the plan, do nothing")
    a.add_argument("--skip-config", action="store_true", help="leave the store alone")
    _store_args(a)
    _ceph_args(a)
    a.set_defaults(handler=_restore)
    a = sub.add_parser("check", help="consistency between the database's images/volumes and Ceph's RBD images")
    a.add_argument("--db-defaults", required=True, help="a my.cnf whose [client] section reaches the database")
    a.add_argument("--db-host", help="overrides the host in --db-defaults")
    a.add_argument("--images-table", default="glance.images")
    a.add_argument("--volumes-table", default="cinder.volumes")
    a.add_argument("--json", action="store_true")
    _ceph_args(a)
    a.set_defaults(handler=_check)


