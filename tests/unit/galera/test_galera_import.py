"""`hakeeper import crm` of a Galera setup as Pacemaker documents it and the seeds deploy it (the
galera agent as a promotable clone with wsrep_cluster_address, the MySQL VIP colocated with the
promoted instances), and the galera mistakes refused with file, line and field, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hakeeper.errors import InputError
from hakeeper.importers.crm import parse_crm
from hakeeper.spec.loader import parse_spec

GALERA_CRM = """\
node controller01
node controller02
node controller03
primitive p_galera ocf:heartbeat:galera \\
    params wsrep_cluster_address="gcomm://controller01,controller02,controller03" enable_creation="true" \\
    op monitor interval="20s" timeout="30s" \\
    op monitor interval="10s" role="Master" timeout="30s" \\
    op promote timeout="300s" interval="0"
primitive p_IP ocf:heartbeat:IPaddr2 params ip="192.168.122.130" cidr_netmask="24" op monitor interval="10s"
ms ms_galera p_galera meta master-max="3" clone-max="3" ordered="true" interleave="false" notify="true"
colocation co_ip_with_galera inf: p_IP ms_galera:Master
order o_galera_before_ip inf: ms_galera:promote p_IP:start
"""


def test_the_documented_galera_setup_imports_as_a_promotable_clone_with_the_vip() -> None:
    spec = parse_crm(GALERA_CRM, "cluster.crm")
    galera = next(p for p in spec.resources.primitives if p.id == "p_galera")
    assert str(galera.agent) == "ocf:heartbeat:galera"
    assert galera.params["wsrep_cluster_address"] == "gcomm://controller01,controller02,controller03"
    assert [(o.name, o.role) for o in galera.operations] == [("monitor", None), ("monitor", "Promoted"),
                                                             ("promote", None)]
    (clone,) = spec.resources.clones
    assert (clone.id, clone.child, clone.meta.promotable, clone.meta.promoted_max) == ("ms_galera", "p_galera", True, 3)
    (colocation,) = spec.constraints.colocation
    assert (colocation.resource, colocation.with_resource, colocation.with_role) == ("p_IP", "ms_galera", "Promoted")
    (order,) = spec.constraints.order
    assert (order.first, order.first_action, order.then, order.then_action) == ("ms_galera", "promote", "p_IP", "start")


def test_a_host_map_lets_the_members_be_addresses() -> None:
    text = GALERA_CRM.replace(
        'gcomm://controller01,controller02,controller03"',
        'gcomm://10.0.0.11,10.0.0.12,10.0.0.13" '
        'cluster_host_map="controller01:10.0.0.11;controller02:10.0.0.12;controller03:10.0.0.13"',
    )
    assert parse_crm(text, "cluster.crm").resources.primitives[0].params["cluster_host_map"]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (' wsrep_cluster_address="gcomm://controller01,controller02,controller03"', "",
         "params.wsrep_cluster_address", "a galera primitive needs wsrep_cluster_address"),
        ('"gcomm://controller01,', '"tcp://controller01,', "params.wsrep_cluster_address", "must start with gcomm://"),
        ("controller03\" enable", "controller04\" enable", "params.wsrep_cluster_address",
         "member 'controller04' is no node of the cluster"),
        ("controller02,controller03", "controller02,,controller03", "params.wsrep_cluster_address",
         "an empty member"),
        ('enable_creation="true"', 'cluster_host_map="controller01:10.0.0.1;controller09:10.0.0.9"',
         "params.cluster_host_map", "names 'controller09', which is not a node of the cluster"),
        ('enable_creation="true"', 'cluster_host_map="controller01"', "params.cluster_host_map",
         "entries are node:host"),
        ("ms ms_galera p_galera meta", "clone ms_galera p_galera meta", "resources.primitives.0",
         "runs only as a promotable clone"),
    ],
)
def test_galera_mistakes_name_file_line_and_field(old: str, new: str, field: str, message: str) -> None:
    text = GALERA_CRM.replace(old, new)
    assert text != GALERA_CRM
    with pytest.raises(InputError) as err:
        parse_crm(text, "cluster.crm")
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("cluster.crm", 4) and problem.field is not None
    assert problem.field.endswith(field) and message in problem.message, str(problem)


def test_the_command_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "galera.crm"
    bad.write_text(GALERA_CRM.replace("controller03\" enable", "controller04\" enable"))
    out_file = tmp_path / "spec.yaml"
    out = subprocess.run([sys.executable, "-m", "hakeeper", "import", "crm", str(bad), "-o", str(out_file)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: {bad}:4: resources.primitives.0.params.wsrep_cluster_address: member")
    assert not out_file.exists()


def test_a_native_spec_is_checked_the_same_way(tmp_path: Path) -> None:
    """`hakeeper validate` / `config apply` read YAML: the same galera mistakes, located in it."""
    good = parse_crm(GALERA_CRM, "cluster.crm").model_dump(mode="json", by_alias=True, exclude_none=True)
    text = yaml.safe_dump(good, sort_keys=False)
    assert parse_spec(text, "cluster.yaml").resources.primitives[0].id == "p_galera"
    assert "gcomm://controller01,controller02,controller03" in text
    bad = text.replace("gcomm://controller01,controller02,controller03", "gcomm://controller01,controller02,controller04")
    with pytest.raises(InputError) as err:
        parse_spec(bad, "cluster.yaml")
    (problem,) = err.value.problems
    lines = bad.splitlines()
    assert problem.file == "cluster.yaml" and problem.line is not None
    assert "wsrep_cluster_address" in lines[problem.line - 1]
    assert problem.field == "resources.primitives.0.params.wsrep_cluster_address"  # as written
    assert "member 'controller04' is no node of the cluster" in problem.message
    path = tmp_path / "cluster.yaml"
    path.write_text(bad)
    out = subprocess.run([sys.executable, "-m", "hakeeper", "validate", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr and f"{path}:{problem.line}:" in out.stderr
