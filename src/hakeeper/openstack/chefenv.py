"""Import a Chef environment (the rcbops cookbooks' `vips` map) as an OpenStack profile.

The environment gives the networks (`osops_networks`) and a VIP per service (`vips`, with optional
`vips.config.<ip>.vrid`), but not the controllers: Chef finds them by searching for nodes with the
ha-controller roles, so the operator names them with --controller NAME=ADDRESS.

Errors name the JSON line: `locate_json` parses the text with the standard library's scanners and
notes the line of every key, as the YAML reader does.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
from collections.abc import Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hakeeper.errors import InputError, Problem, read_input_text
from hakeeper.openstack.profile import Profile, resolve
from hakeeper.yamlsource import Path_, YamlDocument

_WS = " \t\n\r"
MAX_DEPTH = 100  # nested objects and arrays; a Chef environment needs five or six
_SCALAR = json.JSONDecoder()


class _Locator:
    """A small recursive JSON reader that records the line of every value (by its key's line)."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.lines: dict[Path_, int] = {}

    def line(self, index: int) -> int:
        return bisect.bisect_left(self.newlines, index) + 1

    def fail(self, message: str, index: int) -> InputError:
        return InputError.at(f"not valid JSON: {message}", file=self.file, line=self.line(index))

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _WS:
            i += 1
        return i

    def value(self, i: int, path: Path_) -> tuple[Any, int]:
        i = self.skip(i)
        self.lines.setdefault(path, self.line(i))
        if i >= len(self.text):
            raise self.fail("unexpected end of input", i)
        ch = self.text[i]
        if ch in "{[" and len(path) >= MAX_DEPTH:
            # The reader recurses once per level: bounded here, never a RecursionError.
            raise InputError.at(f"nested more than {MAX_DEPTH} levels deep", file=self.file,
                                line=self.line(i), field=str(path[0]))
        if ch == "{":
            return self.obj(i + 1, path)
        if ch == "[":
            return self.array(i + 1, path)
        try:
            return _SCALAR.raw_decode(self.text, i)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.msg, exc.pos) from None
        except ValueError:  # an integer longer than Python converts (4,300 digits)
            raise self.fail("a number too long to read", i) from None

    def obj(self, i: int, path: Path_) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        i = self.skip(i)
        if self.text.startswith("}", i):
            return out, i + 1
        while True:
            i = self.skip(i)
            if not self.text.startswith('"', i):
                raise self.fail("expected a key in double quotes", i)
            key_at = i
            try:
                key, i = scanstring(self.text, i + 1)
            except json.JSONDecodeError as exc:
                raise self.fail(exc.msg, exc.pos) from None
            if key in out:
                raise InputError.at(f"duplicate key {key!r}", file=self.file, line=self.line(key_at),
                                    field=".".join(str(p) for p in (*path, key)))
            i = self.skip(i)
            if not self.text.startswith(":", i):
                raise self.fail("expected ':' after a key", i)
            self.lines[(*path, key)] = self.line(key_at)
            out[key], i = self.value(i + 1, (*path, key))
            i = self.skip(i)
            if self.text.startswith(",", i):
                i += 1
                continue
            if self.text.startswith("}", i):
                return out, i + 1
            raise self.fail("expected ',' or '}'", i)

    def array(self, i: int, path: Path_) -> tuple[list[Any], int]:
        out: list[Any] = []
        i = self.skip(i)
        if self.text.startswith("]", i):
            return out, i + 1
        while True:
            item, i = self.value(i, (*path, len(out)))
            out.append(item)
            i = self.skip(i)
            if self.text.startswith(",", i):
                i += 1
                continue
            if self.text.startswith("]", i):
                return out, i + 1
            raise self.fail("expected ',' or ']'", i)


def locate_json(text: str, file: str = "<input>") -> YamlDocument:
    """JSON data plus the line of every value, as a YamlDocument (same `line_of` lookups)."""
    loc = _Locator(text, file)
    data, end = loc.value(0, ())
    end = loc.skip(end)
    if end != len(text):
        raise loc.fail("extra data after the document", end)
    return YamlDocument(data, loc.lines, file)


def _err(doc: YamlDocument, path: Path_, message: str) -> Problem:
    return Problem(message, doc.file, doc.line_of(path), ".".join(str(p) for p in path))


def _attr(doc: YamlDocument, key: str) -> tuple[Any, Path_] | None:
    """An attribute as Chef merges them: override_attributes win over default_attributes."""
    for section in ("override_attributes", "default_attributes"):
        attrs = doc.data.get(section)
        if isinstance(attrs, dict) and key in attrs:
            return attrs[key], (section, key)
    return None


def profile_data(doc: YamlDocument, controllers: Sequence[tuple[str, str]],
                 vip_mode: str = "vrrp") -> dict[str, Any]:
    """The profile (as plain data) that the environment in `doc` describes; InputError if it cannot."""
    data = doc.data
    if not isinstance(data, dict) or data.get("chef_type") != "environment" \
            or data.get("json_class") != "Chef::Environment":
        path: Path_ = ("chef_type",) if isinstance(data, dict) and "chef_type" in data else ()
        raise InputError([_err(doc, path, 'not a Chef environment: expected "chef_type": "environment" '
                                          'and "json_class": "Chef::Environment"')])
    problems: list[Problem] = []
    found = _attr(doc, "osops_networks")
    if found is None or not isinstance(found[0], dict) or not found[0]:
        raise InputError([_err(doc, found[1] if found else ("override_attributes",),
                               "needs an osops_networks map (name: CIDR)")])
    nets_raw, nets_path = found
    networks: dict[str, ipaddress.IPv4Network] = {}
    for name, cidr in nets_raw.items():
        try:
            networks[name] = ipaddress.IPv4Network(str(cidr), strict=False)
        except ValueError:
            problems.append(_err(doc, (*nets_path, name), f"{cidr!r} is not an IPv4 network (a.b.c.d/n)"))
    found = _attr(doc, "vips")
    if found is None or not isinstance(found[0], dict):
        raise InputError([_err(doc, ("override_attributes",), "needs a vips map (service: address)")])
    vips_raw, vips_path = found
    vips: dict[str, str] = {}
    vrids: dict[str, int] = {}
    for name, value in vips_raw.items():
        if name == "config" and isinstance(value, dict):
            # rcbops: vips.config.<ip>.vrid (and .network) set the VRRP router id per VIP.
            for ip, conf in value.items():
                if isinstance(conf, dict) and isinstance(conf.get("vrid"), int):
                    vrids[ip] = conf["vrid"]
            continue
        try:
            addr = ipaddress.IPv4Address(str(value))
        except ValueError:
            problems.append(_err(doc, (*vips_path, name), f"{value!r} is not an IPv4 address"))
            continue
        if networks and not any(addr in n for n in networks.values()):
            where = ", ".join(f"{k} {v}" for k, v in networks.items())
            problems.append(_err(doc, (*vips_path, name), f"{addr} is outside every osops_networks network ({where})"))
            continue
        vips[name] = str(addr)
    if not controllers:
        problems.append(Problem("a Chef environment does not list the controllers: give each with "
                                "--controller NAME=ADDRESS", doc.file, None, "--controller"))
    if problems:
        raise InputError(problems)
    out: dict[str, Any] = {"name": str(data.get("name") or "openstack")}
    if vip_mode != "vrrp":
        out["vip-mode"] = vip_mode
    out["networks"] = {k: str(v) for k, v in networks.items()}
    out["controllers"] = [{"name": n, "address": a} for n, a in controllers]
    out["vips"] = vips
    if vrids:
        out["vrids"] = vrids
    return out


def import_environment(file: str | Path, controllers: Sequence[tuple[str, str]], vip_mode: str = "vrrp") -> str:
    """The profile YAML for a Chef environment file; checked as a profile before it is returned."""
    p = Path(file)
    doc = locate_json(read_input_text(p), str(p))
    data = profile_data(doc, controllers, vip_mode)
    # The result must be a working profile. A problem is located where its value came from: the
    # file for the VIPs and the name, the command line for the controllers.
    found = _attr(doc, "vips")
    vips_path: Path_ = found[1] if found else ("override_attributes", "vips")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        located = []
        for e in exc.errors():
            loc = tuple(part for part in e["loc"] if part != "[key]")
            msg = e["msg"].removeprefix("Value error, ").replace("\n", " ")
            if loc[:1] == ("vips",):
                located.append(_err(doc, (*vips_path, *loc[1:]), msg))
            elif loc[:1] == ("controllers",) and len(loc) > 1 and isinstance(loc[1], int):
                located.append(Problem(f"{controllers[loc[1]][0]!r}: {msg}", None, None, "--controller"))
            else:
                located.append(Problem(msg, str(p), None, ".".join(str(x) for x in loc)))
        raise InputError(located) from None
    _, problems = resolve(profile)
    if problems:
        out = []
        for path, msg in problems:
            if path[:1] == ("controllers",) and isinstance(path[1], int):
                out.append(Problem(msg, None, None, f"--controller {controllers[path[1]][0]}"))
            elif path[:1] == ("vips",):
                out.append(_err(doc, (*vips_path, *path[1:]), msg))
            else:
                out.append(Problem(msg, str(p), None, ".".join(str(x) for x in path)))
        raise InputError(out)
    header = (f"# hakeeper OpenStack profile imported from {p.name} (Chef environment {data['name']}).\n"
              "# Controllers came from --controller, in priority order. Render with:\n"
              "#   hakeeper openstack render THIS_FILE -o DIR\n")
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

