"""cephx capability strings: checked before Ceph sees them, and compared the way Ceph stores them.

Ceph keeps a capability exactly as it was given, so a hand edit shows up as a different string;
`normalize` only folds spacing (`allow r,allow w` and `allow r, allow w` are one capability), so
that a change of spacing alone is not reported as drift.

The grammar accepted is the part of Ceph's MonCap/OSDCap/MgrCap grammar that RBD clients use:
grants separated by `,` or `;`, each either `allow ...` with permissions (`r`, `w`, `x`, any
combination, `*`, `class-read`, `class-write`) and matches (`pool=NAME`, `namespace=NAME`,
`object_prefix PREFIX`), or `[allow] profile NAME [pool=NAME] [namespace=NAME]`. Anything else is
refused with the word that did not parse, before anything is applied.
"""

from __future__ import annotations

import re

SERVICES = ("mon", "osd", "mgr")
PERMS = re.compile(r"^(\*|[rwx]{1,3})$")
CLASS_PERMS = {"class-read", "class-write"}
MATCH_WORDS = {"pool", "namespace", "object_prefix"}
PROFILES = {
    "mon": {"rbd", "osd", "mgr", "bootstrap-osd", "bootstrap-rbd", "simple-rados-client", "crash"},
    "osd": {"rbd", "rbd-read-only"},
    "mgr": {"rbd", "rbd-read-only", "crash"},
}
_WORD = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def normalize(cap: str) -> str:
    """The capability with spacing folded: one space between words, `, ` between grants."""
    grants = [" ".join(g.split()) for g in re.split(r"[,;]", cap)]
    return ", ".join(g for g in grants if g)


def cap_problem(service: str, cap: str) -> str | None:
    """Why Ceph would refuse `cap` for `service` (mon, osd, mgr), or None."""
    if service not in SERVICES:
        return f"unknown capability service {service!r}; one of {', '.join(SERVICES)}"
    grants = [g.split() for g in re.split(r"[,;]", cap)]
    if not any(grants):
        return "empty capability"
    for words in grants:
        if not words:
            return "an empty grant between separators"
        problem = _grant_problem(service, words)
        if problem is not None:
            return problem
    return None


def _grant_problem(service: str, words: list[str]) -> str | None:
    if words[0] == "allow":
        words = words[1:]
    elif words[0] != "profile":
        return f"a grant starts with 'allow' or 'profile', not {words[0]!r}"
    if not words:
        return "'allow' without permissions"
    if words[0] == "profile":
        if len(words) < 2:
            return "'profile' without a profile name"
        if words[1] not in PROFILES[service]:
            return f"unknown {service} profile {words[1]!r}; known: {', '.join(sorted(PROFILES[service]))}"
        return _matches_problem(words[2:], allow_perms=False)
    return _matches_problem(words, allow_perms=True)


def _matches_problem(words: list[str], allow_perms: bool) -> str | None:
    perms = 0
    i = 0
    while i < len(words):
        w = words[i]
        key, eq, value = w.partition("=")
        if eq and key in MATCH_WORDS:
            if not _WORD.match(value):
                return f"{key}= needs a name, not {value!r}"
        elif w in MATCH_WORDS:
            if i + 1 >= len(words) or not _WORD.match(words[i + 1]):
                return f"{w!r} needs a name after it"
            i += 1
        elif allow_perms and (PERMS.match(w) or w in CLASS_PERMS):
            perms += 1
        else:
            return f"cannot parse {w!r}"
        i += 1
    if allow_perms and perms == 0:
        return "a grant without permissions (r, w, x, *, class-read, class-write)"
    return None
