"""The database/Ceph consistency diff: named rows and images, orphans reported with a reason."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.backup.consistency import Row, check, rbd_name


def test_seeded_rows_and_images_agree() -> None:
    r = check({"images": [Row("i1", "active", False)], "volumes": [Row("v1", "in-use", False)]},
              {"images": ["i1"], "volumes": ["volume-v1"]})
    assert r.ok and r.checked_rows == 2 and r.checked_images == 2


def test_missing_image_and_orphans_are_named() -> None:
    r = check(
        {"images": [Row("i1", "active", False), Row("i2", "deleted", True), Row("i3", "queued", False)],
         "volumes": [Row("v1", "available", False), Row("v2", "deleted", True)]},
        {"images": ["i2"], "volumes": ["volume-v2", "volume-x"]},
    )
    assert [(m.table, m.id, m.rbd_name) for m in r.missing] == [("images", "i1", "i1"), ("volumes", "v1", "volume-v1")]
    assert [(o.pool, o.rbd_name, o.reason) for o in r.orphans] == [
        ("images", "i2", "its images row is deleted"),
        ("volumes", "volume-v2", "its volumes row is deleted"),
        ("volumes", "volume-x", "no volumes row names it"),
    ]
    assert "reported, not deleted" in r.lines()[-1]


ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=4)
rows = st.lists(st.builds(Row, ids, st.sampled_from(["active", "available", "deleted"]), st.booleans()),
                unique_by=lambda r: r.id, max_size=8)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, rows, st.lists(ids, max_size=6), st.lists(ids, max_size=6))
def test_property_every_live_row_is_found_or_missing_and_every_image_known_or_orphan(
    images: list[Row], volumes: list[Row], extra_images: list[str], extra_volumes: list[str]
) -> None:
    rbd = {"images": set(extra_images) | {r.id for r in images[::2]},
           "volumes": {f"volume-{v}" for v in extra_volumes} | {f"volume-{r.id}" for r in volumes[::2]}}
    r = check({"images": images, "volumes": volumes}, rbd)
    missing = {(m.table, m.id) for m in r.missing}
    orphans = {(o.pool, o.rbd_name) for o in r.orphans}
    for table, table_rows in (("images", images), ("volumes", volumes)):
        for row in table_rows:
            live = not row.deleted and row.status in ("active", "available")
            present = rbd_name(table, row.id) in rbd[table]  # type: ignore[arg-type]
            assert ((table, row.id) in missing) == (live and not present)
        live_names = {rbd_name(table, x.id) for x in table_rows  # type: ignore[arg-type]
                      if not x.deleted and x.status in ("active", "available")}
        assert {n for p, n in orphans if p == table} == rbd[table] - live_names
    assert r.ok == (not missing and not orphans)
