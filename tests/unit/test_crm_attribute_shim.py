"""hakeeper's crm_attribute / crm_master / crm_node, as promotable OCF agents call them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from hakeeper.agent import state as st
from hakeeper.resources.crm_attribute import EX_NOSUCH, EX_USAGE, crm_attribute, crm_node, install_shims
from hakeeper.resources.pacemaker_cli import read_outbox
from hakeeper.spec import parse_spec


def _env(tmp: Path) -> dict[str, str]:
    return {
        "HAKEEPER_NODE": "n1",
        "HAKEEPER_ATTRS_DIR": str(tmp / "attrs"),
        "HAKEEPER_ATTRS_VIEW": str(tmp / "view.json"),
        "OCF_RESOURCE_INSTANCE": "db:2",
    }


def test_promotion_score_set_read_and_deleted(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert crm_attribute(["--promotion", "-v", "10"], env)[0] == 0
    assert (tmp_path / "attrs" / "master-db").read_text() == "10"  # the clone suffix is dropped
    assert crm_attribute(["-p", "-G", "-q"], env) == (0, "10\n", "")
    assert crm_attribute(["-n", "master-db", "-G"], env)[1] == "scope=status  name=master-db value=10\n"
    assert crm_attribute(["--promotion", "-D"], env)[0] == 0
    status, _, err = crm_attribute(["-p", "-G", "-q"], env)
    assert status == EX_NOSUCH and "master-db" in err
    assert crm_attribute(["-p", "-G", "-q", "-d", "0"], env) == (0, "0\n", "")


def test_other_nodes_are_read_from_the_view_and_written_through_the_outbox(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "view.json").write_text(json.dumps({"n2": {"db-last-committed": "42"}}))
    (tmp_path / "cluster-view.json").write_text(json.dumps({"nodes": ["n1", "n2", "n3"], "online": ["n1", "n2"]}))
    assert crm_attribute(["-N", "n2", "-l", "reboot", "-n", "db-last-committed", "-G", "-q"], env) == (0, "42\n", "")
    assert crm_attribute(["-N", "n3", "-n", "db-last-committed", "-G", "-q"], env)[0] == EX_NOSUCH
    # galera: set_bootstrap_node and promote_everyone write other nodes' attributes
    assert crm_attribute(["-N", "n2", "-l", "reboot", "--name", "db-bootstrap", "-v", "true"], env)[0] == 0
    assert crm_attribute(["-p", "-N", "n2", "-v", "100"], env)[0] == 0
    assert crm_attribute(["-p", "-N", "n2", "-D"], env)[0] == 0
    assert not (tmp_path / "attrs").exists()  # nothing of n1's own changed
    assert read_outbox(str(tmp_path)) == {("n2", "db-bootstrap"): "true", ("n2", "master-db"): None}
    assert read_outbox(str(tmp_path)) == {}  # consumed
    # a node that is down (or unknown) takes no request: it would outlive the node's reboot
    status, _, err = crm_attribute(["-N", "n3", "--name", "db-bootstrap", "-v", "true"], env)
    assert status == EX_NOSUCH and "n3" in err
    assert crm_attribute(["-N", "../x", "--name", "a", "-v", "1"], env)[0] == EX_USAGE


def test_bad_use_is_a_usage_error(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert crm_attribute(["--bogus"], env)[0] == EX_USAGE
    assert crm_attribute(["-n", "../escape", "-v", "1"], env)[0] == EX_USAGE
    assert crm_attribute(["-t", "crm_config", "-n", "stonith-enabled", "-v", "false"], env)[0] == EX_USAGE
    assert crm_node(["-n"], env) == (0, "n1\n", "")
    assert crm_node(["-l"], env)[0] == EX_NOSUCH  # no cluster view yet
    assert crm_node(["--bogus"], env)[0] == EX_USAGE


def test_installed_wrappers_run_as_agents_call_them(tmp_path: Path) -> None:
    sbin = install_shims(str(tmp_path / "sbin"))
    env = {**os.environ, **_env(tmp_path)}
    # ocf_promotion_score's older form: crm_master -l reboot -v SCORE
    subprocess.run([f"{sbin}/crm_master", "-l", "reboot", "-v", "5"], env=env, check=True, timeout=30)
    out = subprocess.run([f"{sbin}/crm_attribute", "-p", "-G", "-q"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert (out.returncode, out.stdout) == (0, "5\n")
    node = subprocess.run([f"{sbin}/crm_node", "-n"], env=env, capture_output=True, text=True, timeout=30)
    assert node.stdout == "n1\n"


def test_ocf_meta_for_a_promotable_clone_instance() -> None:
    spec = parse_spec("""
nodes: [{name: n1}, {name: n2}]
resources:
  primitives: [{id: db, agent: "ocf:pacemaker:Stateful"}, {id: web, agent: process, params: {command: x}}]
  clones: [{id: db-clone, child: db, meta: {promotable: true, promoted-max: 1}}]
""")
    meta = st.ocf_meta(spec, "db:1", "n2")
    assert meta["on_node"] == "n2" and meta["clone"] == "1" and meta["clone_max"] == "2"
    assert meta["promotable"] == "true" and meta["promoted_max"] == meta["master_max"] == "1"
    assert meta["globally_unique"] == "false"
    assert st.ocf_meta(spec, "web", "n1") == {"on_node": "n1"}
    # An anonymous clone's instances are one resource per node, known by the primitive's id.
    assert st.local_id(spec, "db:1") == "db" and st.local_id(spec, "web") == "web"
    unique = spec.model_copy(deep=True)
    unique.resources.clones[0].meta.globally_unique = True
    assert st.local_id(unique, "db:1") == "db:1"
