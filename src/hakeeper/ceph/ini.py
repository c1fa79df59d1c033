"""Reading and setting keys in the INI files OpenStack services use (oslo.config), keeping the rest.

hakeeper owns a few keys in glance-api.conf, cinder.conf, nova.conf and ceph.conf, not the files:
`set_keys` changes those keys in place (or appends them to their section, or adds the section at
the end) and leaves every other line, comment and key as the operator wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*[=:]\s?(.*?)\s*$")

Settings = Mapping[tuple[str, str], str]  # (section, key) -> value


def read_keys(text: str) -> dict[tuple[str, str], str]:
    """Every (section, key) and its value; the last one wins, as in oslo.config. Keys before any
    section are in DEFAULT, and keys are compared with '-' and '_' alike, as Ceph does."""
    section = "DEFAULT"
    out: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip()
            continue
        k = _KEY.match(line)
        if k:
            out[(section, _key(k.group(1)))] = k.group(2)
    return out


def _key(name: str) -> str:
    return name.replace("-", "_")


def set_keys(text: str, settings: Settings) -> str:
    """`text` with each (section, key) set to its value: changed where it is, else added at the end
    of its section, else in a new section at the end of the file."""
    lines = text.splitlines()
    pending = {(s, _key(k)): v for (s, k), v in settings.items()}
    section = "DEFAULT"
    section_end: dict[str, int] = {}  # last non-blank line of each section seen
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip()
            section_end.setdefault(section, i)
            continue
        k = _KEY.match(line) if line.strip() and line.strip()[0] not in "#;" else None
        if k and (section, _key(k.group(1))) in pending:
            lines[i] = f"{k.group(1)} = {pending[(section, _key(k.group(1)))]}"
        if line.strip():
            section_end[section] = i
    # Keys set in place are done only once every occurrence was set (the last one wins); drop them.
    done = {key for key in pending if read_keys("\n".join(lines)).get(key) == pending[key]}
    additions: dict[str, list[str]] = {}
    for (sec, key), value in pending.items():
        if (sec, key) not in done:
            additions.setdefault(sec, []).append(f"{key} = {value}")
    for sec in sorted(additions, key=lambda s: -section_end.get(s, -1)):
        if sec in section_end:
            at = section_end[sec] + 1
            lines[at:at] = additions[sec]
    tail = [sec for sec in additions if sec not in section_end]
    for sec in tail:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(f"[{sec}]")
        lines.extend(additions[sec])
    return "\n".join(lines) + "\n"
