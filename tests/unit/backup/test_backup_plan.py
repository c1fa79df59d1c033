"""The restore plan: refusals (all at once, nothing done) and the steps, with properties over
arbitrary target states."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.backup.manifest import DatabasePart, Entry, GaleraPosition, Manifest
from hakeeper.backup.plan import Datadir, plan_restore
from hakeeper.errors import InputError
from hakeeper.galera.bootstrap import ZERO_UUID, Position

UUID = "6f1e2d3c-4b5a-4968-8776-655443322110"
OTHER = "0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"


def manifest(secrets: str = "none", config: bool = True, files: tuple[str, ...] = ()) -> Manifest:
    entries = [Entry(path="database/ibdata1", kind="database", size=1, sha256="a")]
    if config:
        entries.append(Entry(path="config/cluster.json", kind="config", size=1, sha256="b"))
    entries += [Entry(path=f"files{f}", kind="file", size=1, sha256="c" + f, source=f) for f in files]
    return Manifest(id="b1", created_at="2026-12-06T00:00:00Z", host="h", hakeeper_version="0.1.0",
                    secrets=secrets,  # type: ignore[arg-type]
                    database=DatabasePart(method="mariabackup", position=GaleraPosition(uuid=UUID, seqno=42),
                                          source="g1"),
                    config_version=3, entries=entries)


FRESH = frozenset({"mysql", "performance_schema", "sys"})  # what mariadb-install-db leaves


def fresh(path: str) -> Datadir:
    return Datadir(path, exists=True, nonempty=True, schemas=FRESH)


def plan(**kw: object) -> object:
    args: dict[str, object] = {"datadirs": [fresh("/a"), fresh("/b"), fresh("/c")], "store": "empty",
                               "files": {}, "have_key": False, "force": False, "stamp": "T"}
    args.update(kw)
    m = args.pop("manifest", manifest())
    return plan_restore(m, **args)  # type: ignore[arg-type]


def test_fresh_controllers_get_the_database_on_the_first_which_bootstraps() -> None:
    p = plan()
    kinds = [(s.kind, s.target) for s in p.steps]  # type: ignore[attr-defined]
    assert kinds == [("set-aside", "/a"), ("copy-back", "/a"), ("write-grastate", "/a"), ("write-config", "the store")]
    assert p.bootstrap == "/a"  # type: ignore[attr-defined]
    assert p.steps[0].to == "/a.pre-restore-T"  # type: ignore[attr-defined]


def test_absent_datadir_needs_no_setting_aside() -> None:
    p = plan(datadirs=[Datadir("/a", exists=False)])
    assert [s.kind for s in p.steps][:1] == ["copy-back"]  # type: ignore[attr-defined]


def test_a_controller_holding_data_is_refused_without_force_and_set_aside_with_it() -> None:
    holding = Datadir("/b", exists=True, nonempty=True, schemas=FRESH | {"keystone"})
    with pytest.raises(InputError) as e:
        plan(datadirs=[fresh("/a"), holding])
    assert "/b: holds data" in str(e.value) and "--force" in str(e.value)
    p = plan(datadirs=[fresh("/a"), holding], force=True)
    assert ("set-aside", "/b") in [(s.kind, s.target) for s in p.steps]  # type: ignore[attr-defined]
    assert not any(s.kind == "copy-back" and s.target == "/b" for s in p.steps)  # type: ignore[attr-defined]


def test_a_galera_history_is_data_even_without_schemas() -> None:
    d = Datadir("/a", exists=True, nonempty=True, position=Position(OTHER, 7))
    assert d.holds_data
    assert not Datadir("/a", exists=True, nonempty=True, position=Position(ZERO_UUID, -1)).holds_data


def test_every_reason_to_refuse_is_given_at_once() -> None:
    with pytest.raises(InputError) as e:
        plan(manifest=manifest(secrets="encrypted", files=("/etc/x.conf",)),
             datadirs=[Datadir("/a", exists=True, nonempty=True, schemas=frozenset({"nova"}))],
             store="different", files={"/etc/x.conf": "other"})
    text = str(e.value)
    for part in ("--backup-key", "/a: holds data", "the store: holds another configuration", "/etc/x.conf: exists"):
        assert part in text


def test_same_configuration_and_same_files_are_left_alone() -> None:
    m = manifest(files=("/etc/x.conf",))
    p = plan(manifest=m, store="same", files={"/etc/x.conf": "c/etc/x.conf"})
    assert [s.kind for s in p.steps] == ["set-aside", "copy-back", "write-grastate"]  # type: ignore[attr-defined]


def test_a_differing_file_is_set_aside_only_with_force() -> None:
    m = manifest(files=("/etc/x.conf",))
    p = plan(manifest=m, files={"/etc/x.conf": "different"}, force=True)
    steps = [(s.kind, s.target, s.to) for s in p.steps if s.target == "/etc/x.conf"]  # type: ignore[attr-defined]
    assert steps == [("set-aside-file", "/etc/x.conf", "/etc/x.conf.pre-restore-T"), ("put-file", "/etc/x.conf", "")]


def test_no_store_given_when_the_backup_has_a_configuration() -> None:
    with pytest.raises(InputError, match="--etcd or --store"):
        plan(store="not-given")




@st.composite
def datadirs(draw: st.DrawFn) -> Datadir:
    """A datadir as read from disk: absent, or holding some files, schemas and a grastate.dat."""
    path = draw(st.sampled_from(["/a", "/b", "/c", "/d"]))
    if not draw(st.booleans()):
        return Datadir(path, exists=False)
    schemas = draw(st.frozensets(st.sampled_from(["mysql", "sys", "nova", "glance", "performance_schema"])))
    position = draw(st.none() | st.builds(Position, st.sampled_from([ZERO_UUID, OTHER, UUID]), st.integers(-1, 99)))
    files = draw(st.booleans())
    return Datadir(path, True, files or bool(schemas) or position is not None, schemas, position)



@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(datadirs(), min_size=1, max_size=4, unique_by=lambda d: d.path), st.booleans())
def test_property_data_is_never_overwritten_without_force_and_never_deleted(dirs: list[Datadir], force: bool) -> None:
    try:
        p = plan(datadirs=dirs, force=force)
    except InputError:
        assert not force and any(d.holds_data for d in dirs)
        return
    steps = p.steps  # type: ignore[attr-defined]
    assert force or not any(d.holds_data for d in dirs)
    # Whatever held data is renamed away, never written into.
    for d in dirs:
        if d.holds_data:
            assert ("set-aside", d.path) in [(s.kind, s.target) for s in steps]
    # The database goes to the first datadir only, into an empty place, and it bootstraps.
    first = dirs[0]
    copy = [s.target for s in steps if s.kind == "copy-back"]
    assert copy == [first.path] and p.bootstrap == first.path  # type: ignore[attr-defined]
    if first.nonempty:
        kinds = [(s.kind, s.target) for s in steps]
        assert kinds.index(("set-aside", first.path)) < kinds.index(("copy-back", first.path))
