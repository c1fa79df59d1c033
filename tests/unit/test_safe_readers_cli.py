"""Operator files through the command line: format detection, -o problems, JSON depth, and
keepalived.conf includes, numbers and nesting. Each answer is one located line, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.placement.commands import input_format

SRC = Path(__file__).resolve().parents[2] / "src"
DATA = Path(__file__).resolve().parents[1] / "data"

CIB = """<cib validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config/>
    <nodes><node id="1" uname="n1"/></nodes>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""
SPEC = "cluster:\n  stonith-enabled: false\nnodes:\n  - name: n1\n"
SECRET = "root:$6$S3cr3tSalt$hashOfThePassword:19000:0:99999:7:::"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def refused(*args: str) -> str:
    """The one error line of a command that must refuse its input."""
    done = run(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


# --- format detection -----------------------------------------------------------------------

_comment_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200).map(
    lambda t: t.replace("--", "- "))
_xml_prolog_part = st.one_of(
    st.just('<?xml version="1.0" encoding="UTF-8"?>'),
    _comment_text.map(lambda t: f"<!--{t}-->"),
    st.just('<?xml-stylesheet href="x.xsl"?>'),
    st.sampled_from([" ", "\n", "\t", "\r\n"]),
)


@given(bom=st.booleans(), prolog=st.lists(_xml_prolog_part, max_size=6))
def test_a_cib_after_any_prolog_is_xml(bom: bool, prolog: list[str]) -> None:
    head = ("\ufeff" if bom else "") + "".join(prolog) + CIB
    assert input_format(head) == "xml"


@given(comments=st.lists(_comment_text, min_size=1, max_size=5), blank=st.booleans())
def test_yaml_whose_comments_mention_a_cib_is_yaml(comments: list[str], blank: bool) -> None:
    head = "".join(f"# {c.replace(chr(10), ' ')} <cib>\n" for c in comments)
    head = ("\n" if blank else "") + head + SPEC
    assert input_format(head) == "yaml"


_names = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=10)
_values = st.recursive(st.one_of(st.integers(), st.booleans(), st.text(max_size=20)),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
                       max_leaves=10)


@given(data=st.dictionaries(_names, _values, min_size=1, max_size=5))
def test_any_yaml_mapping_is_yaml(data: dict[str, object]) -> None:
    # Values may hold "<cib" anywhere after the first key: only the first token counts.
    text = yaml.safe_dump(data) + "note: <cib> is not here\n"
    assert input_format(text) == "yaml"


def test_cib_behind_a_10k_license_comment_is_simulated(tmp_path: Path) -> None:
    path = tmp_path / "c.xml"
    path.write_text("\ufeff<?xml version='1.0'?>\n<!-- " + "license text " * 800 + "-->\n" + CIB)
    done = run("simulate", str(path), "--json")
    assert done.returncode == 0, done.stderr


def test_yaml_mentioning_cib_in_a_comment_is_simulated(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("# converted by hand from the old <cib> of the cluster\n" + SPEC)
    done = run("simulate", str(path), "--json")
    assert done.returncode == 0, done.stderr


def test_xml_that_is_not_a_cib_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x.xml"
    path.write_text("<?xml version='1.0'?>\n<!-- x -->\n<config/>\n")
    assert f"{path}:1: not a CIB" in refused("simulate", str(path))


# --- -o to a place that cannot be written ---------------------------------------------------

@pytest.fixture
def crm_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.crm"
    path.write_text("primitive p ocf:heartbeat:Dummy\n")
    return path


def test_import_into_a_missing_directory(tmp_path: Path, crm_file: Path) -> None:
    out = tmp_path / "nope" / "out.yaml"
    err = refused("import", "crm", str(crm_file), "-o", str(out))
    assert err == f"error: {out}: --output: cannot write: the directory {out.parent} does not exist\n"
    assert not out.parent.exists()


def test_import_onto_a_directory_leaves_nothing(tmp_path: Path, crm_file: Path) -> None:
    out = tmp_path / "adir"
    out.mkdir()
    err = refused("import", "crm", str(crm_file), "-o", str(out))
    assert f"{out}: --output: cannot write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "in.crm"]  # no temporary file left
    assert list(out.iterdir()) == []


def test_import_under_a_file(tmp_path: Path, crm_file: Path) -> None:
    err = refused("import", "crm", str(crm_file), "-o", str(crm_file / "x.yaml"))
    assert err == f"error: {crm_file / 'x.yaml'}: --output: cannot write: {crm_file} is not a directory\n"


def test_chef_env_into_a_missing_directory(tmp_path: Path) -> None:
    out = tmp_path / "nope" / "profile.yaml"
    err = refused("import", "chef-env", str(DATA / "chef-cluster01.json"), "--controller",
                  "c1=10.0.0.11", "--controller", "c2=10.0.0.12", "-o", str(out))
    assert f"{out}: --output: cannot write: the directory" in err and err.count("\n") == 1


def test_render_into_a_missing_parent_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "nope" / "out"
    err = refused("openstack", "render", str(DATA / "profile-cluster01.yaml"), "-o", str(out))
    assert err == f"error: {out}: --output: cannot write: the directory {out.parent} does not exist\n"
    assert list(tmp_path.iterdir()) == []


def test_render_onto_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("keep me")
    assert "--output: not a directory" in refused("openstack", "render",
                                                  str(DATA / "profile-cluster01.yaml"), "-o", str(out))
    assert out.read_text() == "keep me"


def test_render_where_an_output_name_is_a_directory_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "haproxy.cfg").mkdir(parents=True)
    err = refused("openstack", "render", str(DATA / "profile-cluster01.yaml"), "-o", str(out))
    assert "haproxy.cfg is a directory there" in err
    assert sorted(p.name for p in out.iterdir()) == ["haproxy.cfg"]


# --- JSON -----------------------------------------------------------------------------------

def test_deeply_nested_chef_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    path.write_text('{"override_attributes":\n' + "[" * 50_000 + "]" * 50_000 + "}")
    err = refused("import", "chef-env", str(path), "--controller", "c1=10.0.0.11")
    assert err == f"error: {path}:2: override_attributes: nested more than 100 levels deep\n"


def test_chef_environment_with_an_endless_number(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    path.write_text('{"a": ' + "9" * 5000 + "}")
    assert f"{path}:1: not valid JSON: a number too long" in refused(
        "import", "chef-env", str(path), "--controller", "c1=10.0.0.11")


def test_oversized_input_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as fh:
        fh.truncate(11 * 1024 * 1024)  # sparse: 11 MB of NULs
    assert "larger than 10,485,760 bytes" in refused("import", "chef-env", str(path),
                                                     "--controller", "c1=10.0.0.11")


# --- keepalived.conf ------------------------------------------------------------------------

INSTANCE = """vrrp_instance vi {{
    interface eth0
    virtual_router_id 5
    priority 100
    advert_int {advert}
{extra}
    virtual_ipaddress {{
        10.0.0.100/24
    }}
}}
"""


def kaconf(tmp_path: Path, advert: str = "1", extra: str = "", head: str = "") -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(head + INSTANCE.format(advert=advert, extra=extra))
    return path


@pytest.mark.parametrize("where", ["top", "virtual_ipaddress", "track_script", "unicast_peer",
                                   "track_interface"])
def test_an_included_secret_is_never_quoted(tmp_path: Path, where: str) -> None:
    secret = tmp_path / "shadow"
    secret.write_text(f"{SECRET}\npassword = hunter2\n")
    include = f"include {secret}\n"
    if where == "top":
        path = kaconf(tmp_path, head=include)
    else:
        path = kaconf(tmp_path, extra=f"    {where} {{\n        {include}    }}\n")
    err = refused("vrrp", "--check", "--keepalived-conf", str(path))
    assert f"{secret}:1:" in err and f"{secret}:2:" in err
    for word in ("S3cr3t", "hashOf", "19000", "hunter2", "password"):
        assert word not in err, err
    assert "column" in err


def test_the_main_file_is_still_quoted_for_typos(tmp_path: Path) -> None:
    path = kaconf(tmp_path, extra="    priorty 100\n")
    assert "vi.priorty: unknown keyword" in refused("vrrp", "--check", "--keepalived-conf", str(path))


def test_auth_pass_is_never_quoted(tmp_path: Path) -> None:
    path = kaconf(tmp_path, advert="nan", extra=(
        "    authentication {\n        auth_type PASS\n        auth_pass TopSecretPassword\n    }\n"))
    err = refused("vrrp", "--check", "--keepalived-conf", str(path))
    assert "TopSecr" not in err


@pytest.mark.parametrize("advert", ["nan", "inf", "-inf", "1e400"])
def test_advert_int_must_be_finite(tmp_path: Path, advert: str) -> None:
    path = kaconf(tmp_path, advert=advert)
    err = refused("vrrp", "--check", "--keepalived-conf", str(path))
    assert f"{path}:5: advert_int: " in err and "not a finite number" in err


@pytest.mark.parametrize(("line", "message"), [
    ("preempt_delay -3", "preempt_delay: -3 is outside 0..1000"),
    ("garp_master_repeat 0", "garp_master_repeat: 0 is outside 1..10000"),
    ("garp_master_delay nan", "garp_master_delay: 'nan' is not a finite number"),
    ("garp_master_refresh 1e9", "garp_master_refresh: 1000000000 is outside 0..86400"),
    ("priority " + "9" * 5000, "priority: '" + "9" * 5000 + "' is not a whole number"),
])
def test_numbers_in_range(tmp_path: Path, line: str, message: str) -> None:
    path = kaconf(tmp_path, extra=f"    {line}\n")
    assert f"{path}:6: {message}" in refused("vrrp", "--check", "--keepalived-conf", str(path))


def test_script_numbers_in_range(tmp_path: Path) -> None:
    path = kaconf(tmp_path, head='vrrp_script chk {\n    script "/bin/true"\n    interval inf\n'
                                  "    fall 0\n}\n")
    err = refused("vrrp", "--check", "--keepalived-conf", str(path))
    assert f"{path}:3: interval: 'inf' is not a finite number" in err
    assert f"{path}:4: fall: 0 is outside 1..1000000" in err


def test_global_vrrp_version_in_range(tmp_path: Path) -> None:
    path = kaconf(tmp_path, head="global_defs {\n    vrrp_version 0\n}\n")
    assert f"{path}:2: vrrp_version: 0 is outside 2..3" in refused("vrrp", "--check",
                                                                  "--keepalived-conf", str(path))


def test_deeply_nested_blocks(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("a {\n" * 50_000)
    assert refused("vrrp", "--check", "--keepalived-conf", str(path)) == (
        f"error: {path}:17: blocks nested more than 16 deep\n")


# --- CIB ------------------------------------------------------------------------------------

def test_deeply_nested_cib_rules(tmp_path: Path) -> None:
    n = 1500  # within libxml2's 2048, beyond Python's recursion limit
    rules = "".join(f'<rule id="r{i}" boolean-op="and" score="INFINITY">' for i in range(n))
    rules += '<expression id="e" attribute="#uname" operation="eq" value="n1"/>' + "</rule>" * n
    constraint = f'<constraints><rsc_location id="l" rsc="p">{rules}</rsc_location></constraints>'
    path = tmp_path / "cib.xml"
    path.write_text(CIB.replace("<constraints/>", constraint).replace(
        "<resources/>", '<resources><primitive id="p" class="ocf" provider="heartbeat" type="Dummy"/>'
                        "</resources>"))
    err = refused("import", "cib", str(path))
    assert err == f"error: {path}:6: r62: nested more than 64 elements deep inside <configuration>\n"
