"""The seed corpus: well-formed inputs of every kind a reader takes, from the repository.

Seeds come from examples/ and tests/data/, small hand-written files below, CIBs rendered from the
conformance generator, and (when the directory is there) the crm configuration printed in the shared
seed article ../shared/seeds/002_*.txt, read at test time and never copied into the repository.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SHARED_SEEDS = REPO.parent / "shared" / "seeds"

# Agents every host has (vip, process): `config apply` checks that each agent is installed.
SMALL_SPEC = """\
cluster:
  name: fuzz
  stonith-enabled: false
nodes:
  - name: n1
  - name: n2
  - name: n3
resources:
  primitives:
    - id: p_IP
      agent: vip
      params: {ip: 10.0.0.5/24, nic: lo}
      operations:
        - {name: monitor, interval: 10s, timeout: 20s}
    - id: p_web
      agent: process
      params: {command: "sleep 1000"}
      operations:
        - {name: monitor, interval: 30s, timeout: 30s}
      meta: {resource-stickiness: 100}
  groups:
    - id: g_front
      members: [p_web]
  clones:
    - id: cl_front
      child: g_front
      meta: {clone-max: 2, clone-node-max: 1}
constraints:
  colocation:
    - {id: co_ip, resource: p_IP, with: cl_front, score: INFINITY}
"""

SMALL_CRM = """\
node n1
node n2
node n3
primitive p_IP ocf:heartbeat:IPaddr2 params ip="10.0.0.5" cidr_netmask="24" op monitor interval="10s" timeout="20s"
primitive p_web systemd:nginx op monitor interval="30s" timeout="30s" meta resource-stickiness="100"
clone cl_web p_web meta clone-max="2" clone-node-max="1"
colocation co_ip inf: p_IP cl_web
order o_web inf: cl_web:start p_IP:start
property stonith-enabled="false"
"""

SMALL_CIB = """\
<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="opts">
        <nvpair id="opts-stonith" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="n1"/>
      <node id="2" uname="n2"/>
      <node id="3" uname="n3"/>
    </nodes>
    <resources>
      <primitive id="p_IP" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="p_IP-ia">
          <nvpair id="p_IP-ip" name="ip" value="10.0.0.5"/>
        </instance_attributes>
        <operations>
          <op id="p_IP-mon" name="monitor" interval="10s" timeout="20s"/>
        </operations>
      </primitive>
      <clone id="cl_web">
        <meta_attributes id="cl_web-meta">
          <nvpair id="cl_web-max" name="clone-max" value="2"/>
        </meta_attributes>
        <primitive id="p_web" class="systemd" type="nginx">
          <operations>
            <op id="p_web-mon" name="monitor" interval="30s" timeout="30s"/>
          </operations>
        </primitive>
      </clone>
    </resources>
    <constraints>
      <rsc_colocation id="co_ip" rsc="p_IP" with-rsc="cl_web" score="INFINITY"/>
    </constraints>
  </configuration>
  <status/>
</cib>
"""

SMALL_PROFILE = """\
name: fuzz
networks:
  management: 10.0.0.0/24
controllers:
  - name: controller01
    address: 10.0.0.11
  - name: controller02
    address: 10.0.0.12
vips:
  keystone-service-api: 10.0.0.22
  nova-api: 10.0.0.22
  mysql-db: 10.0.0.21
services:
  nova-api: {check-path: /healthcheck}
vrrp:
  interface: eth0
  advert-int: 1
haproxy:
  timeout-client: 1m
"""

SMALL_VRRP_YAML = """\
version: 3
instances:
  - name: fuzz
    interface: lo
    vrid: 200
    priority: 150
    advert_int: 1
    vips: ["10.91.0.200/24"]
"""


def _read(path: Path) -> bytes:
    return path.read_bytes()


def listing2_from_article() -> bytes | None:
    """The numbered crm listing in seed article 002, without its line numbers (None if absent)."""
    found = sorted(SHARED_SEEDS.glob("002_*.txt")) if SHARED_SEEDS.is_dir() else []
    if not found:
        return None
    lines = found[0].read_text(encoding="utf-8").splitlines()
    crm = [m[1] for ln in lines if (m := re.match(r"^\d\d (\w.*)$", ln))]
    return ("\n".join(crm) + "\n").encode() if crm else None


@functools.cache
def seeds(kind: str) -> tuple[bytes, ...]:
    """Well-formed inputs of `kind`: spec, applyspec, crm, cib, chef, profile, kaconf, vrrpyaml."""
    if kind == "applyspec":  # the examples name OCF agents this host may not have
        return (SMALL_SPEC.encode(),)
    if kind == "spec":
        return (SMALL_SPEC.encode(), _read(REPO / "examples" / "openstack-pacemaker.yaml"),
                _read(REPO / "examples" / "openstack-pacemaker.generated.yaml"))
    if kind == "crm":
        article = listing2_from_article()
        # The article's listing is the test data's origin; a copy that drifted is one more seed.
        found = (SMALL_CRM.encode(), _read(DATA / "openstack-listing2.crm"), *((article,) if article else ()))
        return tuple(dict.fromkeys(found))
    if kind == "cib":
        from hakeeper.conformance.cibgen import generate
        from hakeeper.conformance.cibxml import render_cib

        return (SMALL_CIB.encode(), *(render_cib(generate(seed)) for seed in (1, 2)))
    if kind == "chef":
        return (_read(DATA / "chef-cluster01.json"),)
    if kind == "profile":
        return (SMALL_PROFILE.encode(), _read(DATA / "profile-cluster01.yaml"))
    if kind == "kaconf":
        # The host running the suite may have no eth0; lo is everywhere.
        return tuple(_read(p).replace(b"interface eth0", b"interface lo")
                     for p in sorted((DATA / "vrrp").glob("*.conf")))
    if kind == "vrrpyaml":
        return (SMALL_VRRP_YAML.encode(),)
    raise ValueError(kind)
