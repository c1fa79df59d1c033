"""How much of Pacemaker's own regression suite the CIB importer reads the way Pacemaker does.

For every `xml/NAME.xml` of the suite (Pacemaker 2.1.5, data under ../shared, never copied into the
repository), import it and compare what the import says is happening NOW (node states, which
resource runs where in which role, which has failed) with the "Current cluster status" block that
Pacemaker itself printed into `summary/NAME.summary`. Prints the fraction reproduced per tier.

    python3 bench/import_conformance.py [--suite DIR] [--show N] [NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from hakeeper.errors import InputError  # noqa: E402
from hakeeper.importers.cib import read_cib  # noqa: E402
from hakeeper.spec.model import ClusterSpec  # noqa: E402


def find_suite() -> Path:
    """The suite lives in ../shared next to the main checkout (a worktree sits one level deeper)."""
    from hakeeper.conformance.suite import default_suite_dir

    return default_suite_dir()


DEFAULT_SUITE = find_suite()
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--show", type=int, default=0, help="print the first N differences")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    if not (args.suite / "index.tsv").exists():
        print(f"suite not found at {args.suite}", file=sys.stderr)
        return 2
    with open(args.suite / "index.tsv") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if not args.names or r["name"] in args.names]
    per_tier: dict[str, Counter[str]] = {}
    shown = 0
    started = time.perf_counter()
    for row in rows:
        verdict, detail = compare(row["name"], args.suite)
        per_tier.setdefault(row["tier"], Counter())[verdict] += 1
        if verdict != "ok" and shown < args.show:
            shown += 1
            print(f"{row['name']} (tier {row['tier']}): {verdict}: {detail}")
    elapsed = time.perf_counter() - started
    total: Counter[str] = Counter()
    print(f"{'tier':>6} {'CIBs':>5} {'same':>5} {'differs':>8} {'unsupported':>12} {'error':>6}  reproduced")
    for tier in sorted(per_tier):
        c = per_tier[tier]
        total.update(c)
        n = sum(c.values())
        print(f"{tier:>6} {n:>5} {c['ok']:>5} {c['differs']:>8} {c['unsupported']:>12} {c['error']:>6}"
              f"  {c['ok'] / n:7.1%}")
    n = sum(total.values())
    print(f"{'all':>6} {n:>5} {total['ok']:>5} {total['differs']:>8} {total['unsupported']:>12} "
          f"{total['error']:>6}  {total['ok'] / max(n, 1):7.1%}   ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
