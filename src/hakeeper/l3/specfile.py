"""Reading and writing the router spec YAML (see `hakeeper.l3.model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hakeeper.errors import InputError, Problem
from hakeeper.l3.model import RouterSpec, Settings, check_ports, check_routers
from hakeeper.yamlsource import load_yaml, parse_yaml


def _checked(doc: Any) -> RouterSpec:
    spec: RouterSpec = doc.validate(RouterSpec)
    problems = [Problem(msg, doc.file, doc.line_of(path), ".".join(str(p) for p in path))
                for path, msg in check_routers(spec.routers) + check_ports(spec)]
    if problems:
        raise InputError(problems)
    return spec


def load_router_spec(path: str | Path) -> RouterSpec:
    """The spec in `path`, checked as a whole; InputError with file, line and field otherwise."""
    return _checked(load_yaml(path))


def parse_router_spec(text: str, file: str = "<input>") -> RouterSpec:
    return _checked(parse_yaml(text, file))


def settings_data(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = settings.model_dump(mode="json", by_alias=True)
    secret = settings.ha_vrrp_auth_password
    # The file is the configuration: the password is written out (the file is created mode 0600).
    data["ha-vrrp-auth-password"] = secret.get_secret_value() if secret is not None else None
    return data


def dump_router_spec(spec: RouterSpec) -> str:
    data: dict[str, Any] = {"settings": settings_data(spec.settings)}
    data["routers"] = [r.model_dump(mode="json", by_alias=True, exclude_defaults=True) for r in spec.routers]
    if spec.ports:
        data["ports"] = [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in spec.ports]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
