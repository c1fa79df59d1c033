"""`hakeeper router create|delete|add-interface|remove-interface|set-gateway|add-floating-ip`
as pure edits of a RouterSpec: the spec in, the changed spec out, or an InputError that names the
command-line option at fault. Every result is checked as a whole (each router's own rules, then
the rules across routers), so nothing half-valid ever reaches the store."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from hakeeper.errors import InputError
from hakeeper.l3.model import Router, RouterSpec, check_ports, check_routers

Edit = Callable[[RouterSpec], RouterSpec]

# Which option names a field of a router, for error messages.
OPTION = {"id": "--id", "name": "NAME", "project": "--project", "interfaces": "--subnet/--address",
          "gateway": "--network/--address/--upstream", "floating-ips": "--external/--fixed"}


def _fail(option: str, message: str) -> InputError:
    if option.startswith("--"):
        return InputError.at(message, field=option)
    return InputError.at(message, file="command line", field=option)


def find(spec: RouterSpec, ref: str) -> int:
    """The index of the router with id or name `ref`."""
    for n, r in enumerate(spec.routers):
        if ref in (r.id, r.name):
            return n
    raise _fail("ROUTER", f"no router {ref!r}")


def _router(data: dict[str, Any], option: str) -> Router:
    try:
        return Router.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or option
        raise _fail(OPTION.get(str(first["loc"][0]) if first["loc"] else "", option),
                    f"{where}: {first['msg']}") from None


def _with(spec: RouterSpec, routers: list[Router], option: str) -> RouterSpec:
    problems = check_routers(routers)
    if problems:
        path, msg = problems[0]
        field = str(path[2]) if len(path) > 2 else "id"
        raise _fail(OPTION.get(field, option), msg)
    return _keeping_ports(spec, routers, option)


def _keeping_ports(spec: RouterSpec, routers: list[Router], option: str) -> RouterSpec:
    """The instance ports stay; a port left on a subnet no router has any more refuses the edit."""
    new = RouterSpec(settings=spec.settings, routers=routers, ports=spec.ports)
    problems = check_ports(new)
    if problems:
        raise _fail(option, f"port {problems[0][0][1]}: {problems[0][1]}")
    return new


def _data(r: Router) -> dict[str, Any]:
    return r.model_dump(mode="json", by_alias=True)


def create(router_id: str, name: str, project: str) -> Edit:
    def edit(spec: RouterSpec) -> RouterSpec:
        new = _router({"id": router_id, "name": name, "project": project}, "NAME")
        return _with(spec, [*spec.routers, new], "NAME")
    return edit


def delete(ref: str) -> Edit:
    def edit(spec: RouterSpec) -> RouterSpec:
        n = find(spec, ref)
        return _keeping_ports(spec, spec.routers[:n] + spec.routers[n + 1:], "ROUTER")
    return edit


def _change(ref: str, option: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(spec: RouterSpec) -> RouterSpec:
        n = find(spec, ref)
        data = _data(spec.routers[n])
        change(data)
        routers = list(spec.routers)
        routers[n] = _router(data, option)
        return _with(spec, routers, option)
    return edit


def add_interface(ref: str, subnet: str, address: str) -> Edit:
    def change(d: dict[str, Any]) -> None:
        if any(i["subnet"] == subnet for i in d["interfaces"]):
            raise _fail("--subnet", f"router {ref} already has an interface on {subnet}")
        d["interfaces"].append({"subnet": subnet, "address": address})
    return _change(ref, "--subnet/--address", change)


def remove_interface(ref: str, subnet: str) -> Edit:
    def change(d: dict[str, Any]) -> None:
        keep = [i for i in d["interfaces"] if i["subnet"] != subnet]
        if len(keep) == len(d["interfaces"]):
            raise _fail("--subnet", f"router {ref} has no interface on {subnet}")
        gone = [ipaddress.ip_interface(i["address"]).network for i in d["interfaces"] if i["subnet"] == subnet]
        used = [f["external"] for f in d["floating-ips"] if any(ipaddress.ip_address(f["fixed"]) in g for g in gone)]
        if used:
            raise _fail("--subnet", f"floating IP {used[0]} still points into {subnet}")
        d["interfaces"] = keep
    return _change(ref, "--subnet", change)


def set_gateway(ref: str, network: str, address: str, upstream: str) -> Edit:
    def change(d: dict[str, Any]) -> None:
        d["gateway"] = {"network": network, "address": address, "upstream": upstream}
    return _change(ref, "--network/--address/--upstream", change)


def add_floating_ip(ref: str, external: str, fixed: str) -> Edit:
    def change(d: dict[str, Any]) -> None:
        d["floating-ips"].append({"external": external, "fixed": fixed})
    return _change(ref, "--external/--fixed", change)
