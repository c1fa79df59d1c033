"""HA routers in Neutron's words: the L3 HA settings and the routers, as hakeeper's YAML holds them.

    settings:                      # `hakeeper import neutron` writes this part from Neutron's files
      l3-ha: true
      l3-ha-net-cidr: 169.254.192.0/18
      max-l3-agents-per-router: 3
      ha-vrrp-auth-type: PASS
      ha-vrrp-auth-password: openstack
      ha-vrrp-advert-int: 2
    routers:
      - id: 7a46dba8-8846-498c-9e10-588664558473
        name: router80
        project: service
        interfaces: [{subnet: vxlan-subnet80, address: 192.168.80.1/24}]
        gateway: {network: ext-net80, address: 10.0.80.101/24, upstream: 10.0.80.1}
        floating-ips: [{external: 10.0.80.110, fixed: 192.168.80.10}]
    ports:                         # Neutron's instance ports: what DHCP hands out (l3/dhcp.py)
      - {subnet: vxlan-subnet80, mac: "fa:16:3e:00:80:10", address: 192.168.80.10, name: vm80}

Cross-router checks (a floating IP used twice, two routers with one gateway address) live in
`check_routers`, which names the path of the offending value so the YAML reader can give its line.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

# Neutron ids are UUIDs; names are free text there. Here both become namespace and interface name
# parts, so they are held to a safe shape: no '/', no whitespace, no leading '-'.
_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,62}")
MAX_VRID = 255
# keepalived (and so Neutron) sends VRRPv2, whose advert interval is a byte of whole seconds.
MAX_ADVERT_INT = 255


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"{value[:40]!r} is not an id: 1-63 of letters, digits, '_', '.', ':', '-', "
                         "starting with a letter, a digit or '_'")
    return value


Id = Annotated[str, AfterValidator(_check_id)]


def _hyphenate(name: str) -> str:
    return name.replace("_", "-")


class L3Model(BaseModel):
    """Hyphenated keys in YAML (as the rest of hakeeper), unknown keys refused."""

    model_config = ConfigDict(alias_generator=_hyphenate, populate_by_name=True, extra="forbid", frozen=True)


class Settings(L3Model):
    """Neutron's L3 HA options (neutron.conf and l3_agent.ini [DEFAULT]), with Neutron's defaults."""

    l3_ha: bool = False
    l3_ha_net_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("169.254.192.0/18")
    # 0 = every network node, as Neutron.
    max_l3_agents_per_router: Annotated[int, Field(ge=0, le=1024)] = 3
    # Removed from Neutron in Ocata; kept here as the replica count below which a router is degraded.
    min_l3_agents_per_router: Annotated[int, Field(ge=0, le=1024)] = 2
    dhcp_agents_per_network: Annotated[int, Field(ge=1, le=1024)] = 1
    ha_vrrp_auth_type: Literal["PASS"] | None = "PASS"
    ha_vrrp_auth_password: SecretStr | None = None
    ha_vrrp_advert_int: Annotated[int, Field(ge=1, le=MAX_ADVERT_INT)] = 2
    ha_vrrp_health_check_interval: Annotated[int, Field(ge=0)] = 0

    def replicas(self, nodes: int) -> int:
        """How many network nodes each router runs on, given how many there are."""
        if not self.l3_ha:
            return min(1, nodes)
        if self.max_l3_agents_per_router == 0:
            return nodes
        return min(self.max_l3_agents_per_router, nodes)


class Interface(L3Model):
    """A router interface on a project subnet: `address` is the subnet's gateway (qr- holds it)."""

    subnet: Id
    address: ipaddress.IPv4Interface


class Gateway(L3Model):
    """The external gateway: the router's address on the external network (qg-) and its next hop."""

    network: Id
    address: ipaddress.IPv4Interface
    upstream: ipaddress.IPv4Address

    @model_validator(mode="after")
    def _upstream_on_link(self) -> Gateway:
        if self.upstream not in self.address.network:
            raise ValueError(f"upstream {self.upstream} is outside the gateway's subnet {self.address.network}")
        if self.upstream == self.address.ip:
            raise ValueError(f"upstream {self.upstream} is the router's own address")
        return self


class FloatingIp(L3Model):
    external: ipaddress.IPv4Address
    fixed: ipaddress.IPv4Address


class Router(L3Model):
    id: Id
    name: Id
    project: Id = "admin"
    admin_state_up: bool = True
    interfaces: list[Interface] = Field(default_factory=list)
    gateway: Gateway | None = None
    floating_ips: list[FloatingIp] = Field(default_factory=list)

    @model_validator(mode="after")
    def _own_consistency(self) -> Router:
        nets = [i.address.network for i in self.interfaces]
        for n, net in enumerate(nets):
            for other in nets[:n]:
                if net.overlaps(other):
                    raise ValueError(f"interfaces {other} and {net} overlap")
        for fip in self.floating_ips:
            if self.gateway is None:
                raise ValueError(f"floating IP {fip.external} needs an external gateway")
            if fip.external not in self.gateway.address.network or fip.external in (
                self.gateway.address.ip, self.gateway.upstream
            ):
                raise ValueError(f"floating IP {fip.external} is not a free address of the external "
                                 f"network {self.gateway.address.network}")
            if not any(fip.fixed in net and fip.fixed != i.address.ip for net, i in zip(nets, self.interfaces,
                                                                                       strict=True)):
                raise ValueError(f"floating IP {fip.external}: fixed address {fip.fixed} is on none of the "
                                 "router's internal subnets")
        return self


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _check_mac(value: str) -> str:
    mac = value.lower()
    if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
        raise ValueError(f"{value[:40]!r} is not a unicast MAC address (six hex pairs with ':')")
    return mac


class InstancePort(L3Model):
    """A Neutron port of an instance on a project subnet: its MAC and fixed address. Both DHCP
    servers of the subnet hand this address to this MAC and nothing to unknown MACs, as
    Neutron's dnsmasq does (static host entries), so they always agree."""

    subnet: Id
    mac: Annotated[str, AfterValidator(_check_mac)]
    address: ipaddress.IPv4Address
    name: Id | None = None  # the host name DHCP gives; default host-<address with '-'>


class RouterSpec(L3Model):
    settings: Settings = Field(default_factory=Settings)
    routers: list[Router] = Field(default_factory=list)
    ports: list[InstancePort] = Field(default_factory=list)


Path = tuple[str | int, ...]


def check_routers(routers: list[Router]) -> list[tuple[Path, str]]:
    """Problems across routers, each with the path of the value at fault (for its line)."""
    problems: list[tuple[Path, str]] = []
    ids: dict[str, int] = {}
    names: dict[str, int] = {}
    gateways: dict[tuple[str, ipaddress.IPv4Address], int] = {}
    fips: dict[ipaddress.IPv4Address, int] = {}
    for n, r in enumerate(routers):
        if r.id in ids:
            problems.append((("routers", n, "id"), f"router id {r.id} is also router {ids[r.id]}'s"))
        ids.setdefault(r.id, n)
        if r.name in names:
            problems.append((("routers", n, "name"), f"router name {r.name} is also router {names[r.name]}'s"))
        names.setdefault(r.name, n)
        if r.gateway is not None:
            key = (r.gateway.network, r.gateway.address.ip)
            if key in gateways:
                problems.append((("routers", n, "gateway", "address"),
                                 f"{r.gateway.address.ip} on {r.gateway.network} is already router "
                                 f"{routers[gateways[key]].name}'s gateway"))
            gateways.setdefault(key, n)
        for k, fip in enumerate(r.floating_ips):
            if fip.external in fips:
                user = routers[fips[fip.external]].name
                problems.append((("routers", n, "floating-ips", k, "external"),
                                 f"floating IP {fip.external} is already used by router {user}"))
            fips.setdefault(fip.external, n)
    for n, r in enumerate(routers):
        if r.gateway is None:
            continue
        for m, other in enumerate(routers):
            if other.gateway is None or m == n or other.gateway.network != r.gateway.network:
                continue
            for k, fip in enumerate(r.floating_ips):
                if fip.external == other.gateway.address.ip:
                    problems.append((("routers", n, "floating-ips", k, "external"),
                                     f"floating IP {fip.external} is router {other.name}'s gateway address"))
    return problems


def check_ports(spec: RouterSpec) -> list[tuple[Path, str]]:
    """Each instance port on a router's internal subnet, on a free host address of it, and no
    address or MAC twice on one subnet."""
    subnets: dict[str, Interface] = {}
    for r in spec.routers:
        for i in r.interfaces:
            subnets.setdefault(i.subnet, i)
    problems: list[tuple[Path, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for n, port in enumerate(spec.ports):
        iface = subnets.get(port.subnet)
        if iface is None:
            problems.append((("ports", n, "subnet"), f"{port.subnet} is no router's internal subnet"))
            continue
        net = iface.address.network
        if port.address not in net or port.address in (net.network_address, net.broadcast_address):
            problems.append((("ports", n, "address"), f"{port.address} is not a host address of {port.subnet} {net}"))
        elif port.address == iface.address.ip:
            problems.append((("ports", n, "address"), f"{port.address} is {port.subnet}'s gateway"))
        for what, value in (("address", str(port.address)), ("mac", port.mac)):
            key = (port.subnet, what + value)
            if key in seen:
                problems.append((("ports", n, what), f"{what} {value} is also port {seen[key]}'s on {port.subnet}"))
            seen.setdefault(key, n)
    return problems
