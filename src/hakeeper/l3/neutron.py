"""Neutron's L3 HA settings from its own files: neutron.conf and l3_agent.ini.

The files are oslo.config INI: `[section]`, `key = value` (or `key: value`), comments starting
with `#` or `;`, continuation lines indented. Neutron's agents read neutron.conf and then
l3_agent.ini (the later file wins), so both are read in that order and every L3 HA option is taken
from whichever file sets it last. Options that have nothing to do with L3 HA are skipped, since a
neutron.conf holds hundreds; a line that is not INI at all, or a bad value for an option used
here, is an InputError naming file, line and key. Passwords are never echoed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pydantic import SecretStr

from hakeeper.errors import InputError, Problem, read_input_text
from hakeeper.l3.model import MAX_ADVERT_INT, Settings

SECTION = "DEFAULT"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
# The options read here, and what each must be.
_BOOL = {"l3_ha"}
_INT = {"max_l3_agents_per_router", "min_l3_agents_per_router", "dhcp_agents_per_network",
        "ha_vrrp_advert_int", "ha_vrrp_health_check_interval"}
_TEXT = {"l3_ha_net_cidr", "ha_vrrp_auth_type", "ha_vrrp_auth_password"}
KEYS = _BOOL | _INT | _TEXT
_SECRET = {"ha_vrrp_auth_password"}


@dataclass(frozen=True)
class Value:
    text: str
    file: str
    line: int


@dataclass
class Imported:
    settings: Settings
    warnings: list[str] = field(default_factory=list)


def parse_ini(text: str, file: str) -> dict[str, dict[str, Value]]:
    """Sections -> keys -> values with their location. Later keys replace earlier ones."""
    sections: dict[str, dict[str, Value]] = {}
    current: dict[str, Value] | None = None
    last: tuple[str, Value] | None = None
    for n, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            last = None if not stripped else last
            continue
        if raw[0] in " \t" and last is not None and current is not None:
            # A continuation line: oslo.config joins it to the value above with a newline.
            key, v = last
            last = (key, Value(f"{v.text}\n{stripped}", v.file, v.line))
            current[key] = last[1]
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 3:
                raise InputError.at(f"malformed section header {stripped[:40]!r}", file=file, line=n)
            current = sections.setdefault(stripped[1:-1].strip(), {})
            last = None
            continue
        cut = [i for i in (stripped.find("="), stripped.find(":")) if i > 0]
        if not cut:
            raise InputError.at("not 'key = value', a [section] or a comment", file=file, line=n)
        key, value = stripped[: min(cut)].strip(), stripped[min(cut) + 1 :].strip()
        if not key or any(c.isspace() for c in key):
            raise InputError.at(f"malformed key {key[:40]!r}", file=file, line=n)
        if current is None:
            raise InputError.at("option before any [section]", file=file, line=n, field=key)
        last = (key, Value(value, file, n))
        current[key] = last[1]
    return sections


def _bad(v: Value, key: str, why: str) -> InputError:
    return InputError([Problem(why, v.file, v.line, key)])


def _shown(key: str, v: Value) -> str:
    return "(hidden)" if key in _SECRET else repr(v.text[:40])


def settings_from(options: dict[str, Value]) -> Imported:
    """Pure: the L3 HA options found (key -> located text) -> Settings and warnings."""
    values: dict[str, object] = {}
    warnings: list[str] = []
    problems: list[Problem] = []

    def fail(key: str, why: str) -> None:
        v = options[key]
        problems.append(Problem(why, v.file, v.line, key))

    for key, v in options.items():
        text = v.text.strip().strip('"').strip("'") if key not in _SECRET else v.text
        if key in _BOOL:
            if text.lower() not in _TRUE | _FALSE:
                fail(key, f"{_shown(key, v)} is not a boolean (true/false)")
                continue
            values[key] = text.lower() in _TRUE
        elif key in _INT:
            try:
                values[key] = int(text)
            except ValueError:
                fail(key, f"{_shown(key, v)} is not an integer")
        else:
            values[key] = text
    for key in ("max_l3_agents_per_router", "min_l3_agents_per_router", "ha_vrrp_health_check_interval"):
        if isinstance(values.get(key), int) and int(str(values[key])) < 0:
            fail(key, "must not be negative")
    if "dhcp_agents_per_network" in values and int(str(values["dhcp_agents_per_network"])) < 1:
        fail("dhcp_agents_per_network", "must be at least 1")
    if "ha_vrrp_advert_int" in values:
        adv = int(str(values["ha_vrrp_advert_int"]))
        if not 1 <= adv <= MAX_ADVERT_INT:
            fail("ha_vrrp_advert_int", f"{adv} is not a VRRPv2 advert interval (1..{MAX_ADVERT_INT} seconds)")
    if "l3_ha_net_cidr" in values:
        try:
            net = ipaddress.IPv4Network(str(values["l3_ha_net_cidr"]))
        except ValueError as exc:
            fail("l3_ha_net_cidr", f"not an IPv4 network: {exc}")
        else:
            if net.num_addresses < 4:
                fail("l3_ha_net_cidr", f"{net} has no room for two network nodes")
            values["l3_ha_net_cidr"] = net
    auth = values.get("ha_vrrp_auth_type")
    if isinstance(auth, str):
        if auth.upper() == "AH":
            fail("ha_vrrp_auth_type", "AH is refused: keepalived deprecates it (it does not protect VRRP's "
                 "fields as RFC 2338 meant, and RFC 3768 removed authentication), and hakeeper does not "
                 "implement it; use PASS, as Neutron's default")
        elif auth.upper() != "PASS":
            fail("ha_vrrp_auth_type", f"{auth[:20]!r} is not a VRRP authentication type (PASS or AH)")
        else:
            values["ha_vrrp_auth_type"] = "PASS"
    password = values.get("ha_vrrp_auth_password")
    if isinstance(password, str):
        if values.get("ha_vrrp_auth_type", "PASS") == "PASS" and len(password.encode()) > 8:
            warnings.append(f"{options['ha_vrrp_auth_password'].file}:{options['ha_vrrp_auth_password'].line}: "
                            "ha_vrrp_auth_password: longer than 8 bytes; VRRPv2 PASS (and keepalived) "
                            "use the first 8")
        values["ha_vrrp_auth_password"] = SecretStr(password) if password else None
    if "min_l3_agents_per_router" in options:
        v = options["min_l3_agents_per_router"]
        warnings.append(f"{v.file}:{v.line}: min_l3_agents_per_router: removed from Neutron in Ocata; "
                        "hakeeper reports a router with fewer replicas than this as degraded")
    mx, mn = values.get("max_l3_agents_per_router"), values.get("min_l3_agents_per_router")
    if isinstance(mx, int) and isinstance(mn, int) and mx and mn > mx and not problems:
        fail("min_l3_agents_per_router", f"{mn} is more than max_l3_agents_per_router ({mx})")
    if values.get("l3_ha") is False:
        where = options["l3_ha"]
        warnings.append(f"{where.file}:{where.line}: l3_ha: false; routers run on one network node each")
    if problems:
        raise InputError(problems)
    return Imported(Settings.model_validate(values), warnings)


def read_neutron(neutron_conf: str, l3_agent_ini: str | None = None) -> Imported:
    """Read Neutron's files (neutron.conf first, l3_agent.ini overriding) into L3 HA settings."""
    options: dict[str, Value] = {}
    for path in [neutron_conf, *([l3_agent_ini] if l3_agent_ini else [])]:
        sections = parse_ini(read_input_text(path), path)
        for key, v in sections.get(SECTION, {}).items():
            if key in KEYS:
                options[key] = v
    return settings_from(options)
