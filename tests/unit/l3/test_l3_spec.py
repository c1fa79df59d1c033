"""The router spec: seed 004's router80, and bad routers refused with their line."""

from __future__ import annotations

import pytest

from hakeeper.errors import InputError
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec

ROUTER80 = """\
routers:
  - id: 7a46dba8-8846-498c-9e10-588664558473
    name: router80
    project: service
    interfaces:
      - {subnet: vxlan-subnet80, address: 192.168.80.1/24}
    gateway: {network: ext-net80, address: 10.0.80.101/24, upstream: 10.0.80.1}
    floating-ips:
      - {external: 10.0.80.110, fixed: 192.168.80.10}
"""


def test_router80_round_trip() -> None:
    spec = parse_router_spec(ROUTER80)
    r = spec.routers[0]
    assert r.name == "router80" and str(r.gateway.address) == "10.0.80.101/24" if r.gateway else False
    again = parse_router_spec(dump_router_spec(spec))
    assert again == spec


@pytest.mark.parametrize(("old", "new", "line", "field", "why"), [
    ("upstream: 10.0.80.1", "upstream: 10.0.81.1", 7, "routers.0.gateway", "outside the gateway's subnet"),
    ("external: 10.0.80.110", "external: 10.0.90.110", 8, "routers.0", "not a free address"),
    ("fixed: 192.168.80.10", "fixed: 192.168.90.10", 8, "routers.0", "none of the router's internal subnets"),
    ("name: router80", "name: -x", 3, "routers.0.name", "not an id"),
])
def test_bad_router(old: str, new: str, line: int, field: str, why: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_router_spec(ROUTER80.replace(old, new), "r.yaml")
    p = exc.value.problems[0]
    assert (p.file, p.field) == ("r.yaml", field) and why in p.message
    assert p.line is not None and p.line <= line


def test_across_routers() -> None:
    second = ROUTER80.split("\n", 1)[1].replace("7a46dba8", "8b46dba8").replace("router80", "router81")
    with pytest.raises(InputError) as exc:
        parse_router_spec(ROUTER80 + second, "r.yaml")
    got = {(p.field, p.line) for p in exc.value.problems}
    assert ("routers.1.gateway.address", 15) in got  # same gateway on ext-net80
    assert ("routers.1.floating-ips.0.external", 17) in got  # floating IP used twice
