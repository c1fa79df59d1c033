"""Does the restored database agree with Ceph? Pure: rows and RBD listings in, differences out.

Glance names an image's RBD image by the image id in pool `images`; Cinder names a volume's
`volume-<id>` in pool `volumes`. A live row (not deleted, in a state that has data) must name an
RBD image that exists; every RBD image in those pools must belong to a live row. Orphans are
reported, never deleted: an image the database forgot may be the only copy of someone's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Table = Literal["images", "volumes"]
POOL: dict[Table, str] = {"images": "images", "volumes": "volumes"}
# States in which the service has not (yet, or any more) written data to Ceph.
NO_DATA: dict[Table, frozenset[str]] = {
    "images": frozenset({"queued", "saving", "uploading", "importing", "killed", "deleted", "pending_delete"}),
    "volumes": frozenset({"creating", "error", "deleting", "deleted", "error_deleting"}),
}


@dataclass(frozen=True)
class Row:
    id: str
    status: str
    deleted: bool


@dataclass(frozen=True)
class Missing:
    table: Table
    id: str
    pool: str
    rbd_name: str


@dataclass(frozen=True)
class Orphan:
    pool: str
    rbd_name: str
    reason: str


@dataclass(frozen=True)
class Report:
    checked_rows: int
    checked_images: int
    missing: tuple[Missing, ...]
    orphans: tuple[Orphan, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.orphans

    def lines(self) -> list[str]:
        out = [f"missing: {m.table} row {m.id} names {m.pool}/{m.rbd_name}, which does not exist" for m in self.missing]
        out += [f"orphan: {o.pool}/{o.rbd_name}: {o.reason} (reported, not deleted)" for o in self.orphans]
        return out


def rbd_name(table: Table, row_id: str) -> str:
    return row_id if table == "images" else f"volume-{row_id}"


def _live(table: Table, row: Row) -> bool:
    return not row.deleted and row.status.lower() not in NO_DATA[table]


def check(rows: Mapping[Table, Iterable[Row]], rbd: Mapping[str, Iterable[str]]) -> Report:
    """`rows`: each table's rows; `rbd`: each pool's RBD image names."""
    missing: list[Missing] = []
    orphans: list[Orphan] = []
    n_rows = n_images = 0
    for table, pool in POOL.items():
        table_rows = list(rows.get(table, ()))
        n_rows += len(table_rows)
        present = set(rbd.get(pool, ()))
        n_images += len(present)
        live = {rbd_name(table, r.id) for r in table_rows if _live(table, r)}
        dead = {rbd_name(table, r.id): r for r in table_rows if not _live(table, r)}
        missing += [Missing(table, r.id, pool, rbd_name(table, r.id))
                    for r in sorted(table_rows, key=lambda r: r.id) if _live(table, r)
                    and rbd_name(table, r.id) not in present]
        for name in sorted(present - live):
            row = dead.get(name)
            why = (f"its {table} row is {'deleted' if row.deleted else row.status}" if row is not None
                   else f"no {table} row names it")
            orphans.append(Orphan(pool, name, why))
    return Report(n_rows, n_images, tuple(missing), tuple(orphans))
