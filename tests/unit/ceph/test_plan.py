"""The plan (pure): what it proposes for seed 001, that carrying it out leaves nothing to do, and that
each kind of drift comes back as exactly the change that repairs it. A small model of apply
(`carry_out`) plays the changes onto the observed state, as the real apply does on the cluster."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.ceph.ini import set_keys
from hakeeper.ceph.model import parse_wiring
from hakeeper.ceph.plan import (
    ClusterFacts,
    FileChange,
    FileState,
    HostState,
    IniChange,
    Observed,
    Plan,
    PoolChange,
    PoolState,
    SecretChange,
    UserChange,
    UserState,
    desired,
    plan,
)

PROFILE = """\
networks: {management: 10.0.0.0/24}
controllers:
  - {name: controller01, address: 10.0.0.11}
  - {name: controller02, address: 10.0.0.12}
vips: {glance-api: 10.0.0.20}
storage:
  pools:
    volumes: {pg-num: 128}
    images: {pg-num: 128}
    vms: {pg-num: autoscale}
  computes: [{name: compute1, address: 10.0.0.31}, {name: compute2, address: 10.0.0.32}]
  glance: {hosts: [controller01, controller02]}
  cinder: {hosts: [controller01]}
  nova: {hosts: [compute1, compute2]}
"""
WIRING = parse_wiring(PROFILE, "p.yaml")
FACTS = ClusterFacts("8d0f0cf4-0000-4000-8000-000000000001", "[v2:10.0.0.5:3300,v1:10.0.0.5:6789]")
UUID = "5b0e2a5e-0000-4000-8000-0000000000aa"
EMPTY = Observed({}, {}, {})


def carry_out(have: Observed, p: Plan, libvirt: bool = True) -> Observed:
    """What apply leaves behind: pools and users made (a new user gets a key), files written with
    their owner and mode, INI keys set, secrets defined with the user's key."""
    pools = dict(have.pools)
    users = dict(have.users)
    hosts = {h: (dict(s.files), None if s.libvirt is None else dict(s.libvirt)) for h, s in have.hosts.items()}
    for c in p.changes:
        if isinstance(c, PoolChange):
            old = pools.get(c.pool, PoolState(32, False, False))
            pg = old.pg_num if c.pg_num == "autoscale" else c.pg_num
            pools[c.pool] = PoolState(pg, c.pg_num == "autoscale", True)
        elif isinstance(c, UserChange):
            key = users[c.entity].key if c.entity in users else f"KEY-{c.entity}"
            users[c.entity] = UserState(key, c.caps)
    keys = {e: u.key for e, u in users.items()}
    again = plan(desired(WIRING, FACTS, keys, UUID), Observed(pools, users, have.hosts), keys)  # as apply does
    for c in again.changes:
        if c.host is None:
            continue
        files, secrets = hosts.setdefault(c.host, ({}, {} if libvirt else None))
        if isinstance(c, FileChange):
            text = c.file.text if c.file.text is not None else files[c.file.path].content  # type: ignore[union-attr]
            files[c.file.path] = FileState(text, c.file.owner, c.file.group, c.file.mode)
        elif isinstance(c, IniChange):
            old_state = files.get(c.ini.path)
            base = old_state or FileState("", c.ini.owner, c.ini.group, c.ini.mode)
            files[c.ini.path] = replace(base, content=set_keys(base.content, {(c.section, c.key): c.value}))
        elif isinstance(c, SecretChange) and secrets is not None:
            secrets[c.uuid] = keys[c.entity]
    return Observed(pools, users, {h: HostState(f, s) for h, (f, s) in hosts.items()})


def plan_for(have: Observed) -> Plan:
    keys = {e: u.key for e, u in have.users.items()}
    return plan(desired(WIRING, FACTS, keys, UUID), have, keys)


def with_libvirt(have: Observed) -> Observed:
    hosts = dict(have.hosts)
    for h in ("compute1", "compute2"):
        hosts[h] = HostState(hosts[h].files if h in hosts else {}, {})
    return Observed(have.pools, have.users, hosts)


def settled() -> Observed:
    return carry_out(with_libvirt(EMPTY), plan_for(with_libvirt(EMPTY)))


def test_first_plan_holds_the_seed_wiring() -> None:
    p = plan_for(EMPTY)
    text = "\n".join(c.describe() for c in p.changes)
    assert "create pool volumes (pg-num 128)" in text
    assert ("create client.volumes with mon 'allow r' osd 'allow class-read object_prefix rbd_children, "
            "allow rwx pool=volumes, allow rx pool=images'") in text
    assert "create client.nova with mon 'profile rbd'" in text
    assert "write /etc/ceph/ceph.client.images.keyring (key of client.images) glance:glance 0600" in text
    assert f"set [ceph] rbd_secret_uuid = {UUID} in /etc/cinder/cinder.conf" in text
    assert f"set [libvirt] rbd_secret_uuid = {UUID} in /etc/nova/nova.conf" in text
    assert "set [libvirt] images_type = rbd" in text
    # What goes into files is shown (keys never are): the CEPH_ARGS drop-in, the secret's XML.
    assert "    | Environment=CEPH_ARGS=--id volumes" in text
    assert f"    |   <uuid>{UUID}</uuid>" in text
    assert p.hosts() == ["compute1", "compute2", "controller01", "controller02"]
    # Without libvirt on the computes: a note each, not a change that would never go away.
    assert [h for h, _ in p.notes] == ["compute1", "compute2"]
    keys_shown = [c for c in p.changes if "KEY-" in c.describe()]
    assert keys_shown == []


def test_second_plan_after_apply_is_empty() -> None:
    assert settled() != EMPTY
    assert plan_for(settled()).changes == ()


def test_a_capability_edited_by_hand_is_one_change() -> None:
    have = settled()
    users = dict(have.users)
    users["client.images"] = UserState(users["client.images"].key, (("mon", "allow r"), ("osd", "allow *")))
    p = plan_for(Observed(have.pools, users, have.hosts))
    assert [(type(c).__name__, getattr(c, "entity", None)) for c in p.changes] == [("UserChange", "client.images")]


def test_spacing_alone_is_not_drift() -> None:
    have = settled()
    users = dict(have.users)
    u = users["client.volumes"]
    users["client.volumes"] = UserState(u.key, tuple((s, c.replace(", ", ",")) for s, c in u.caps))
    assert plan_for(Observed(have.pools, users, have.hosts)).changes == ()


def test_a_keyring_with_the_wrong_owner_is_one_change() -> None:
    have = settled()
    files = dict(have.hosts["controller01"].files)
    path = "/etc/ceph/ceph.client.volumes.keyring"
    files[path] = replace(files[path], owner="root", group="root")  # type: ignore[type-var]
    hosts = {**have.hosts, "controller01": HostState(files)}
    p = plan_for(Observed(have.pools, have.users, hosts))
    assert [(c.host, c.describe()) for c in p.changes] == [
        ("controller01", f"write {path} (key of client.volumes) cinder:cinder 0600: owner root:root")]


def test_a_secret_holding_a_stale_key_is_redefined() -> None:
    have = settled()
    hosts = dict(have.hosts)
    hosts["compute2"] = HostState(hosts["compute2"].files, {UUID: "OLD"})
    p = plan_for(Observed(have.pools, have.users, hosts))
    assert [(type(c).__name__, c.host) for c in p.changes] == [("SecretChange", "compute2")]


DRIFTS = st.lists(st.sampled_from(["pool-gone", "pg", "autoscale", "no-rbd", "user-gone", "caps", "file-gone",
                                   "mode", "owner", "content", "ini", "secret-gone"]), max_size=6, unique=True)


def drift(have: Observed, kinds: list[str]) -> Observed:
    pools, users = dict(have.pools), dict(have.users)
    hosts = {h: (dict(s.files), None if s.libvirt is None else dict(s.libvirt)) for h, s in have.hosts.items()}
    ctl, _ = hosts["controller01"]
    cmp_secrets = hosts["compute1"][1]
    for k in kinds:
        if k == "pool-gone":
            del pools["images"]
        elif k == "pg":
            pools["volumes"] = replace(pools["volumes"], pg_num=64)
        elif k == "autoscale":
            pools["vms"] = replace(pools["vms"], autoscale=False)
        elif k == "no-rbd":
            pools["volumes"] = replace(pools["volumes"], rbd=False)
        elif k == "user-gone":
            del users["client.nova"]
        elif k == "caps":
            users["client.volumes"] = replace(users["client.volumes"], caps=(("mon", "allow r"),))
        elif k == "file-gone":
            del ctl["/etc/systemd/system/cinder-volume.service.d/hakeeper-ceph.conf"]
        elif k in ("mode", "owner", "content"):
            path = "/etc/ceph/ceph.client.images.keyring"
            f = ctl[path]
            assert f is not None
            ctl[path] = (replace(f, mode=0o644) if k == "mode" else replace(f, owner="nobody") if k == "owner"
                         else replace(f, content="[client.images]\n\tkey = WRONG\n"))
        elif k == "ini":
            f = ctl["/etc/cinder/cinder.conf"]
            assert f is not None
            ctl["/etc/cinder/cinder.conf"] = replace(f, content=set_keys(f.content, {("ceph", "rbd_pool"): "x"}))
        elif k == "secret-gone" and cmp_secrets is not None:
            cmp_secrets.clear()
    return Observed(pools, users, {h: HostState(f, s) for h, (f, s) in hosts.items()})


@settings(max_examples=60, deadline=None)
@given(DRIFTS)
def test_any_drift_is_planned_and_repaired_by_carrying_the_plan_out(kinds: list[str]) -> None:
    drifted = drift(settled(), kinds)
    p = plan_for(drifted)
    assert bool(p.changes) == bool(kinds)
    repaired = carry_out(drifted, p)
    assert plan_for(repaired).changes == ()
    # Nothing hakeeper did not plan was touched: the keys of users that stayed are the same.
    for entity, u in drifted.users.items():
        assert repaired.users[entity].key == u.key
