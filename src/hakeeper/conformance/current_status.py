"""The oracle over Pacemaker's suite for the importers: its "Current cluster status" block.

`summary/NAME.summary` holds what crm_mon printed for the input CIB before scheduling. Parsing that
block and comparing it with what the CIB import says is happening now (node states, which resource
runs where in which role, which has failed) measures the import on Pacemaker's own data; the
benchmark bench/import_conformance.py and the importer tests share it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from hakeeper.errors import InputError
from hakeeper.importers.cib import read_cib
from hakeeper.spec.model import ClusterSpec

ACTIVE_ROLES = ("Started", "Promoted", "Unpromoted")

Fact = tuple[str, str, str, bool]  # (primitive, node, role, failed)


@dataclass
class Status:
    """The comparable part of a "Current cluster status" block."""

    nodes: dict[str, str] = field(default_factory=dict)
    resources: set[Fact] = field(default_factory=set)


_NODE_LINE = re.compile(r"\* (?:Remote|Guest)?Node (\S+): (.+)$")
_NODE_LIST = re.compile(r"\* (Online|OFFLINE|RemoteOnline|RemoteOFFLINE|GuestOnline): \[ (.*) \]$")
_RSC_LINE = re.compile(r"\* (\S+)\t\(([^)]*)\):\t (.*)$")
_CLONE_HEAD = re.compile(r"\* Clone Set: (\S+) \[(\S+)\]")
_GROUP_HEAD = re.compile(r"\* Resource Group: (\S+?):?$")
_CLONE_LIST = re.compile(r"\* (Started|Promoted|Unpromoted|Stopped[^:]*): \[ (.*) \]$")
_NODE_WORDS = {"UNCLEAN (offline)": "unclean-offline", "UNCLEAN (online)": "unclean-online",
               "pending": "pending", "standby": "standby", "standby (with active resources)": "standby",
               "maintenance": "maintenance", "OFFLINE (standby)": "offline", "OFFLINE (maintenance)": "offline",
               "OFFLINE": "offline", "online": "online"}


def base(name: str) -> str:
    return name.split(":", 1)[0]


def current_block(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("Current cluster status:") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return block


def parse_summary(text: str, group_members: dict[str, list[str]]) -> Status:
    status = Status()
    clone_child: str | None = None
    clone_indent = -1
    for line in current_block(text):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if clone_child is not None and indent <= clone_indent:
            clone_child = None
        if m := _NODE_LINE.match(stripped):
            word = m.group(2)
            status.nodes[m.group(1)] = _NODE_WORDS.get(word, "online" if word.startswith("online") else word)
        elif m := _NODE_LIST.match(stripped):
            kind = "offline" if "OFFLINE" in m.group(1) else "online"
            for name in m.group(2).split():
                status.nodes[name] = kind
        elif m := _CLONE_HEAD.match(stripped):
            clone_child, clone_indent = m.group(2), indent
        elif (m := _CLONE_LIST.match(stripped)) and clone_child is not None:
            role = m.group(1)
            if role in ACTIVE_ROLES:
                for node in m.group(2).split():
                    for member in group_members.get(clone_child, [clone_child]):
                        status.resources.add((base(member), node, _role(role), False))
        elif m := _RSC_LINE.match(stripped):
            status.resources |= _resource_facts(m.group(1), m.group(3))
    return status


def _resource_facts(name: str, text: str) -> set[Fact]:
    text = re.sub(r" \([^)]*\)", "", text)  # flags: (unmanaged), (blocked), (disabled), (UNCLEAN)
    words = text.replace("ORPHANED ", "").split(" ", 1)
    failed = words[0] == "FAILED"
    if failed:
        words = words[1].split(" ", 1) if len(words) > 1 else []
    if not words:
        return set()
    role, where = words[0], (words[1] if len(words) > 1 else "")
    if role in ("Starting", "Stopping", "Migrating") or (role == "Stopped" and where):
        # "Stopped NODE": the resource's role is stopped yet it is active on NODE (a half-undone
        # migration); Pacemaker schedules its stop or restart there, so it counts as active.
        role = "Started"
    elif role not in ACTIVE_ROLES:
        if failed:  # "FAILED node1": the node follows FAILED directly
            role, where = "Started", " ".join(words)
        else:
            return set()
    nodes = where.strip("[] ").split()
    return {(base(name), node, _role(role), failed) for node in nodes}


def _role(role: str) -> str:
    # crm_mon prints a failed unpromoted instance as plain "FAILED node": compare Unpromoted as Started.
    return "Started" if role == "Unpromoted" else role


def imported_status(spec: ClusterSpec) -> Status:
    status = Status()
    state = spec.state
    assert state is not None
    for name, node in state.nodes.items():
        if node.unclean:
            kind = "unclean-online" if node.online else "unclean-offline"
        elif node.pending:
            kind = "pending"
        elif not node.online:
            kind = "offline"
        elif node.standby:
            kind = "standby"
        elif node.maintenance:
            kind = "maintenance"
        else:
            kind = "online"
        status.nodes[name] = kind
    # crm_mon's FAILED is a flag of the whole resource: a primitive (outside clones) that failed
    # anywhere shows as FAILED wherever it is active. Clone instances keep their own flag.
    cloned = {c.child for c in spec.resources.clones}
    cloned |= {m for g in spec.resources.groups if g.id in cloned for m in g.members}
    failed = {base(r.resource) for r in state.resources if r.failed and base(r.resource) not in cloned}
    # Likewise a primitive's role: one rc 8 anywhere shows it "Promoted" on every node it is active on.
    promoted = {base(r.resource) for r in state.resources if r.role == "Promoted" and base(r.resource) not in cloned}
    for rsc in state.resources:
        # crm_mon shows a resource with a start in flight as "Starting NODE" even when its recorded
        # role is Stopped (the start was issued after a stop): compare it as active there.
        if rsc.role in ACTIVE_ROLES or rsc.pending == "start":
            name = base(rsc.resource)
            role = "Promoted" if name in promoted else "Started" if rsc.role == "Stopped" else _role(rsc.role)
            status.resources.add((name, rsc.node, role, rsc.failed or name in failed))
    return status


def compare(name: str, suite: Path) -> tuple[str, str]:
    """('ok' | 'unsupported' | 'error' | 'differs', detail)."""
    try:
        # crm_simulate evaluated these at the time it ran (long after the CIBs were written).
        spec = read_cib(suite / "xml" / f"{name}.xml", now=time.time())
    except InputError as exc:
        detail = str(exc).splitlines()[0]
        return ("unsupported" if "not supported yet" in detail else "error", detail)
    groups = {g.id: g.members for g in spec.resources.groups}
    expected = parse_summary((suite / "summary" / f"{name}.summary").read_text(), groups)
    got = imported_status(spec)
    diffs = []
    for node in sorted(set(expected.nodes) | set(got.nodes)):
        if node not in expected.nodes and got.nodes[node] == "offline":
            continue  # crm_mon leaves offline guest nodes out of its list
        if expected.nodes.get(node) != got.nodes.get(node):
            diffs.append(f"node {node}: pacemaker {expected.nodes.get(node)}, imported {got.nodes.get(node)}")
    for fact in sorted(expected.resources - got.resources):
        diffs.append(f"missing {fact}")
    for fact in sorted(got.resources - expected.resources):
        diffs.append(f"extra {fact}")
    return ("ok", "") if not diffs else ("differs", "; ".join(diffs[:4]))
