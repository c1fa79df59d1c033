"""cephx capability checks and the INI key editing (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.ceph.caps import cap_problem, normalize
from hakeeper.ceph.ini import read_keys, set_keys

SEED_VOLUMES = "allow class-read object_prefix rbd_children, allow rwx pool=volumes, allow rx pool=images"


@pytest.mark.parametrize(("service", "cap"), [
    ("mon", "allow r"), ("osd", SEED_VOLUMES), ("mon", "profile rbd"), ("osd", "profile rbd pool=vms"),
    ("osd", "profile rbd-read-only pool=images"), ("mgr", "profile rbd pool=vms"), ("osd", "allow *"),
    ("osd", "allow pool images rwx"), ("mon", "allow profile rbd"),
])
def test_caps_ceph_accepts(service: str, cap: str) -> None:
    assert cap_problem(service, cap) is None


@pytest.mark.parametrize(("service", "cap", "why"), [
    ("osd", "allow rwz pool=volumes", "'rwz'"),
    ("osd", "permit rwx", "starts with 'allow'"),
    ("osd", "allow pool=volumes", "without permissions"),
    ("mon", "profile nosuch", "unknown mon profile"),
    ("osd", "allow rwx pool=", "pool= needs a name"),
    ("osd", "allow r, , allow w", "empty grant"),
    ("mds", "allow r", "unknown capability service"),
    ("osd", "allow class-read object_prefix", "needs a name"),
])
def test_caps_refused_with_the_word_that_did_not_parse(service: str, cap: str, why: str) -> None:
    problem = cap_problem(service, cap)
    assert problem is not None and why in problem


def test_normalize_folds_spacing_only() -> None:
    assert normalize("allow r,allow   w") == normalize("allow r, allow w") == "allow r, allow w"
    assert normalize("allow rw") != normalize("allow rwx")


_key = st.sampled_from(["rbd_user", "rbd_pool", "debug", "stores", "default_store", "fsid", "mon_host", "x1"])
_value = st.text(alphabet="abcXYZ019/=.,:[]-", min_size=1, max_size=12)
_section = st.sampled_from(["DEFAULT", "glance_store", "ceph", "libvirt"])
_settings = st.dictionaries(st.tuples(_section, _key), _value, max_size=8)


@st.composite
def _ini(draw: st.DrawFn) -> str:
    lines = []
    for (section, key), value in draw(_settings).items():
        lines += [f"[{section}]", f"# about {key}", f"{key} = {value}"]
    return "\n".join(lines) + "\n"


@given(_ini(), _settings)
def test_set_keys_sets_what_was_asked_and_keeps_everything_else(text: str, settings: dict) -> None:
    out = set_keys(text, settings)
    got = read_keys(out)
    for k, v in settings.items():
        assert got[k] == v
    for k, v in read_keys(text).items():
        if k not in settings:
            assert got[k] == v
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert [line for line in out.splitlines() if line.startswith("#")] == comments
    assert set_keys(out, settings) == out  # a second time changes nothing


def test_set_keys_in_place_and_in_new_sections() -> None:
    text = "[DEFAULT]\ndebug = true\n\n[glance_store]\ndefault_store=file\n"
    out = set_keys(text, {("glance_store", "default_store"): "rbd", ("DEFAULT", "show_image_direct_url"): "True",
                          ("libvirt", "images_type"): "rbd"})
    assert out == ("[DEFAULT]\ndebug = true\nshow_image_direct_url = True\n\n[glance_store]\n"
                   "default_store = rbd\n\n[libvirt]\nimages_type = rbd\n")
