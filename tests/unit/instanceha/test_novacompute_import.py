"""`hakeeper import crm` of seed 002's Listing 2: the `ocf:openstack:nova-compute` primitives
become instanceha:nova-compute (params translated, the meaningless ones dropped with a warning
naming file, line and primitive). Run on the seed article's own text when it is on this machine,
and always on the repository's copy of the listing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper.importers.crm import CrmReader, read_crm_with_warnings
from hakeeper.instanceha import novacompute as nc
from hakeeper.resources.base import make_agent

ROOT = Path(__file__).resolve().parents[3]
LISTING2 = ROOT / "tests" / "data" / "openstack-listing2.crm"
SEEDS = ROOT.parent / "shared" / "seeds"


def seed_listing2() -> str | None:
    """Listing 2 as printed in seed article 002, without its line numbers (None if absent)."""
    found = sorted(SEEDS.glob("002_*.txt")) if SEEDS.is_dir() else []
    if not found:
        return None
    lines = found[0].read_text(encoding="utf-8").splitlines()
    crm = [m[1] for line in lines if (m := re.match(r"^\d\d (\w.*)$", line))]
    return "\n".join(crm) + "\n" if crm else None


SOURCES = {"repository copy": LISTING2.read_text(), **({"seed article": t} if (t := seed_listing2()) else {})}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_listing2_compute_primitives_become_native(source: str) -> None:
    reader = CrmReader(source)
    spec = reader.read(SOURCES[source])
    computes = {p.id: p for p in spec.resources.primitives if p.id.startswith("p_nova-compute-")}
    assert sorted(computes) == ["p_nova-compute-host1", "p_nova-compute-host2", "p_nova-compute-host3"]
    for n, prim in enumerate(sorted(computes.values(), key=lambda p: p.id), start=1):
        assert str(prim.agent) == nc.NATIVE_AGENT
        assert prim.params == {"additional_config": f"/etc/nova/nova-compute-host{n}.conf"}
        assert [(o.name, o.interval, o.timeout) for o in prim.operations] == [("monitor", 30.0, 30.0)]
    assert reader.warnings == []  # the listing gives only additional_config
    # Nothing else changed: the other OpenStack agents stay what they were.
    assert str(next(p for p in spec.resources.primitives if p.id == "p_nova-cert").agent) == "ocf:openstack:nova-cert"
    loc = spec.constraints.location[0]
    assert (loc.resource, loc.node, loc.score) == ("p_nova-compute-host1", "alice", 10000)


def test_imported_primitive_says_what_it_misses_on_this_host(tmp_path: Path) -> None:
    spec, _ = read_crm_with_warnings(LISTING2)
    prim = next(p for p in spec.resources.primitives if p.id == "p_nova-compute-host1")
    agent = make_agent(prim.id, str(prim.agent), prim.params, str(tmp_path))
    reason = agent.installed()
    assert reason is not None and "/etc/nova/nova-compute-host1.conf" in reason


def _import(kind: str, source: Path) -> tuple[Path, list[str]]:
    """`hakeeper import KIND SOURCE -o out.yaml` beside it: the output and the warnings printed."""
    out = source.parent / "out.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run([sys.executable, "-m", "hakeeper", "import", kind, str(source), "-o", str(out)],
                         capture_output=True, text=True, env=env, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    return out, [line for line in run.stderr.splitlines() if line.startswith("warning:")]


def test_import_cli_warns_about_dropped_params(tmp_path: Path) -> None:
    crm = tmp_path / "host1.crm"
    crm.write_text("node alice\nnode bob\n"
                   'primitive p_nova-compute-host1 ocf:openstack:nova-compute params user="nova" \\\n'
                   '    additional_config="/etc/nova/nova-compute-host1.conf" pid="/run/nova/c.pid" \\\n'
                   '    op monitor interval="30s" timeout="30s"\n'
                   "location lo_host1_prefer_alice p_nova-compute-host1 10000: alice\n")
    out, warnings = _import("crm", crm)
    where = f"warning: {crm}:3: p_nova-compute-host1: param"
    assert warnings == [
        f"{where} user dropped: hakeeper runs nova-compute as the agent's user",
        f"{where} pid dropped: hakeeper tracks the process itself",
    ]
    text = out.read_text()
    assert "agent: instanceha:nova-compute" in text and "additional_config" in text and "user" not in text


def test_import_cib_maps_the_same_primitive_and_warns_the_same_way(tmp_path: Path) -> None:
    """The CIB importer does what the crm importer does for seed 002's primitive (the same
    configuration as `cibadmin --query` would print it), per-node params included."""
    cib = tmp_path / "cib.xml"
    cib.write_text(
        '<cib crm_feature_set="3.0.14" validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0">\n'
        "  <configuration>\n"
        "    <crm_config/>\n"
        '    <nodes><node id="1" uname="alice"/><node id="2" uname="bob"/></nodes>\n'
        "    <resources>\n"
        '      <primitive id="p_nova-compute-host1" class="ocf" provider="openstack" type="nova-compute">\n'
        '        <instance_attributes id="p_nova-compute-host1-ia">\n'
        '          <nvpair id="p1" name="user" value="nova"/>\n'
        '          <nvpair id="p2" name="additional_config" value="/etc/nova/nova-compute-host1.conf"/>\n'
        "        </instance_attributes>\n"
        '        <instance_attributes id="p_nova-compute-host1-bob">\n'
        '          <rule id="r1" score="INFINITY"><expression id="e1" attribute="#uname" operation="eq" value="bob"/>'
        "</rule>\n"
        '          <nvpair id="p3" name="pid" value="/run/nova/bob.pid"/>\n'
        '          <nvpair id="p4" name="config" value="/etc/nova/bob.conf"/>\n'
        "        </instance_attributes>\n"
        '        <operations><op id="m" name="monitor" interval="30s" timeout="30s"/></operations>\n'
        "      </primitive>\n"
        "    </resources>\n"
        "    <constraints/>\n"
        "  </configuration>\n"
        "  <status/>\n"
        "</cib>\n"
    )
    out, warnings = _import("cib", cib)
    assert warnings == [f"warning: {cib}:6: p_nova-compute-host1: param user dropped: hakeeper runs nova-compute "
                        "as the agent's user"]
    text = out.read_text()
    assert "agent: instanceha:nova-compute" in text and "additional_config" in text
    assert "user" not in text and "pid" not in text and "/etc/nova/bob.conf" in text  # bob's config kept
