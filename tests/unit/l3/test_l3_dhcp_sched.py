"""DHCP for project networks: the pure placement (rendezvous hashing over the alive network nodes),
the DHCP port addresses, the instance ports in the spec, and dnsmasq's configuration."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.errors import InputError
from hakeeper.l3 import edits
from hakeeper.l3.dhcp import dnsmasq_argv, hosts_text, layouts
from hakeeper.l3.dhcpsched import DhcpHost, DhcpNetwork, networks_of, place, schedule_dhcp, server_address
from hakeeper.l3.specfile import dump_router_spec, parse_router_spec

ALL_NODES = [f"network{i}" for i in range(8)]
node_lists = st.lists(st.sampled_from(ALL_NODES), min_size=1, max_size=6, unique=True)
network_names = st.lists(st.from_regex(r"subnet[0-9a-f]{1,3}", fullmatch=True), max_size=30, unique=True)

SPEC = """\
settings: {dhcp-agents-per-network: 2}
routers:
  - id: r80
    name: router80
    interfaces: [{subnet: vxlan-subnet80, address: 192.168.80.1/24}, {subnet: empty81, address: 10.81.0.1/24}]
ports:
  - {subnet: vxlan-subnet80, mac: "FA:16:3E:00:80:10", address: 192.168.80.10, name: vm80}
  - {subnet: vxlan-subnet80, mac: "fa:16:3e:00:80:11", address: 192.168.80.11}
"""


@settings(max_examples=300, deadline=None)
@given(network_names, node_lists, st.integers(1, 4))
def test_each_network_on_its_count_of_distinct_alive_nodes(nets: list[str], nodes: list[str], count: int) -> None:
    for net in nets:
        chosen = place(net, nodes, count)
        assert len(chosen) == min(count, len(nodes)) == len(set(chosen))
        assert set(chosen) <= set(nodes) and list(chosen) == sorted(chosen)
        assert place(net, list(reversed(nodes)), count) == chosen  # the order of nodes plays no part


@settings(max_examples=300, deadline=None)
@given(network_names, node_lists, st.integers(1, 4), st.data())
def test_a_lost_node_moves_only_its_own_servers_and_gets_them_back(
        nets: list[str], nodes: list[str], count: int, data: st.DataObject) -> None:
    lost = data.draw(st.sampled_from(nodes))
    survivors = [n for n in nodes if n != lost]
    for net in nets:
        before = place(net, nodes, count)
        after = place(net, survivors, count)
        # Every surviving server stays; the network is back to full count if nodes are left.
        assert set(before) - {lost} <= set(after)
        assert len(after) == min(count, len(survivors))
        if lost not in before:
            assert after == before  # networks the node did not serve never move
        assert place(net, nodes, count) == before  # the node back: exactly what it had


@settings(max_examples=100, deadline=None)
@given(network_names, node_lists, st.integers(1, 3))
def test_one_network_never_depends_on_the_others(nets: list[str], nodes: list[str], count: int) -> None:
    gw = ipaddress.IPv4Interface("10.0.0.1/24")
    host = (DhcpHost("fa:16:3e:00:00:01", ipaddress.IPv4Address("10.0.0.50"), "vm"),)
    full = schedule_dhcp([DhcpNetwork(n, gw, host) for n in nets], nodes, (), count)
    for n in nets:
        alone = schedule_dhcp([DhcpNetwork(n, gw, host)], nodes, (), count)
        assert alone.networks[n] == full.networks[n]


def test_dhcp_port_addresses_follow_neutron_after_the_gateway() -> None:
    nodes = ["network8", "network6", "network7"]
    gw = ipaddress.IPv4Interface("192.168.80.1/24")
    assert [str(server_address(gw, nodes, n)) for n in sorted(nodes)] == [
        "192.168.80.2/24", "192.168.80.3/24", "192.168.80.4/24"]
    # A gateway in the middle is skipped; a subnet too small gives no address.
    assert str(server_address(ipaddress.IPv4Interface("10.1.0.2/29"), nodes, "network6")) == "10.1.0.1/29"
    assert str(server_address(ipaddress.IPv4Interface("10.1.0.2/29"), nodes, "network7")) == "10.1.0.3/29"
    assert server_address(ipaddress.IPv4Interface("10.1.0.1/30"), nodes, "network7") is None


def test_a_node_whose_dhcp_address_is_a_port_s_serves_elsewhere_and_is_reported() -> None:
    gw = ipaddress.IPv4Interface("192.168.80.1/24")
    host = (DhcpHost("fa:16:3e:00:80:03", ipaddress.IPv4Address("192.168.80.3"), "vm"),)
    s = schedule_dhcp([DhcpNetwork("net", gw, host)], ["network6", "network7", "network8"], (), 2)
    assert s.networks["net"].nodes == ("network6", "network8")
    assert any("network7" in p and "192.168.80.3" in p for p in s.problems)


def test_spec_ports_round_trip_and_only_subnets_with_ports_get_dhcp() -> None:
    spec = parse_router_spec(SPEC)
    assert parse_router_spec(dump_router_spec(spec)) == spec
    assert spec.ports[0].mac == "fa:16:3e:00:80:10"  # MACs kept in lower case, as dnsmasq matches
    nets = networks_of(spec)
    assert [n.subnet for n in nets] == ["vxlan-subnet80"]
    assert [h.name for h in nets[0].hosts] == ["vm80", "host-192-168-80-11"]


def test_layout_and_dnsmasq_configuration(tmp_path: Path) -> None:
    spec = parse_router_spec(SPEC)
    nodes = ["network6", "network7", "network8"]
    sched = schedule_dhcp(networks_of(spec), nodes, ["network7"], 2)
    assert sched.networks["vxlan-subnet80"].nodes == ("network6", "network8")
    lays = {n: layouts(spec, sched, n, "p-", str(tmp_path)) for n in nodes}
    assert lays["network7"] == []
    a, b = lays["network6"][0], lays["network8"][0]
    assert a.namespace == "p-qdhcp-vxlan-subnet80" and len(a.port) <= 15 and len(a.peer) <= 15
    assert (str(a.address), str(b.address)) == ("192.168.80.2/24", "192.168.80.4/24")
    assert a.mac != b.mac and a.hosts == b.hosts  # two ports, one set of host entries
    assert hosts_text(a.hosts) == ("fa:16:3e:00:80:10,vm80,192.168.80.10\n"
                                   "fa:16:3e:00:80:11,host-192-168-80-11,192.168.80.11\n")
    argv = dnsmasq_argv(a)
    assert "--dhcp-range=set:net,192.168.80.0,static,255.255.255.0,86400s" in argv
    assert "--dhcp-option=tag:net,option:router,192.168.80.1" in argv and f"--interface={a.port}" in argv


@pytest.mark.parametrize(("old", "new", "line", "field", "why"), [
    ("{subnet: vxlan-subnet80, mac: \"fa", "{subnet: other, mac: \"fa", 8, "ports.1.subnet",
     "no router's internal subnet"),
    ("address: 192.168.80.11", "address: 192.168.81.11", 8, "ports.1.address", "not a host address"),
    ("address: 192.168.80.11}", "address: 192.168.80.1}", 8, "ports.1.address", "gateway"),
    ("address: 192.168.80.11", "address: 192.168.80.10", 8, "ports.1.address", "also port 0's"),
    ("fa:16:3e:00:80:11", "fa:16:3e:00:80:10", 8, "ports.1.mac", "also port 0's"),
    ("fa:16:3e:00:80:11", "01:16:3e:00:80:11", 8, "ports.1.mac", "not a unicast MAC"),
    ("fa:16:3e:00:80:11", "fa:16:3e:00:80", 8, "ports.1.mac", "not a unicast MAC"),
    ("dhcp-agents-per-network: 2", "dhcp-agents-per-network: 0", 1, "settings.dhcp-agents-per-network",
     "greater than or equal to 1"),
    ("dhcp-agents-per-network: 2", "dhcp-agents-per-network: -1", 1, "settings.dhcp-agents-per-network",
     "greater than or equal to 1"),
    ("dhcp-agents-per-network: 2", "dhcp-agents-per-network: two", 1, "settings.dhcp-agents-per-network",
     "integer"),
])
def test_bad_ports_and_settings_are_located(old: str, new: str, line: int, field: str, why: str) -> None:
    assert SPEC.count(old) == 1
    with pytest.raises(InputError) as exc:
        parse_router_spec(SPEC.replace(old, new), "r.yaml")
    p = exc.value.problems[0]
    assert (p.file, p.field, p.line) == ("r.yaml", field, line), p
    assert why in p.message


def test_router_edits_keep_the_ports_and_refuse_to_strand_them() -> None:
    spec = parse_router_spec(SPEC)
    spec = edits.add_interface("router80", "vxlan-subnet82", "192.168.82.1/24")(spec)
    assert spec.ports == parse_router_spec(SPEC).ports  # an edit of a router keeps every port
    with pytest.raises(InputError, match="port 0: vxlan-subnet80 is no router's internal subnet"):
        edits.remove_interface("router80", "vxlan-subnet80")(spec)
    with pytest.raises(InputError, match="port 0"):
        edits.delete("router80")(spec)
    assert edits.remove_interface("router80", "empty81")(spec).ports == spec.ports


def _hakeeper(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"))
    return subprocess.run([sys.executable, "-m", "hakeeper", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_the_agent_refuses_bad_dhcp_input_with_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "r.yaml"
    spec.write_text(SPEC.replace("dhcp-agents-per-network: 2", "dhcp-agents-per-network: 0"))
    res = _hakeeper("l3-agent", "--node", "n1", "--nodes", "n1,n2", "--spec", str(spec),
                    "--dhcp-dir", "/run/hakeeper/dhcp")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{spec}:1: settings.dhcp-agents-per-network:" in res.stderr, res.stderr
    tmp_path.chmod(0o700)  # dnsmasq (as nobody) could not read its hosts file below it
    res = _hakeeper("l3-agent", "--node", "n1", "--nodes", "n1,n2", "--spec", str(spec),
                    "--dhcp-dir", str(tmp_path / "dhcp"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    named = res.stderr.split(f"--dhcp-dir {tmp_path / 'dhcp'}: ", 1)[-1].split(" is not searchable", 1)[0]
    assert Path(named) in (tmp_path, *tmp_path.parents), res.stderr
    assert not (tmp_path / "dhcp").exists()
