"""hakeeper's clone notifications against Pacemaker 2.1.5's own, on generated clusters.

Each case generates a cluster (as the differential test does), turns notify on for every clone of
a primitive, and asks crm_simulate for its transition graph (-S -G): every notify operation it
would run, on which node, of which type and kind, with which CRM_meta_notify_* lists. Where
Pacemaker and hakeeper carry out the same operations on the clones (instance numbers aside), the
notifications must be the same: the same (type, operation, node) everywhere, and the same node
lists. Every other case makes the clones promotable, with promotion scores, for the demote and
promote notifications and the promoted/unpromoted lists. Two differences are known and allowed,
each recognised by its shape (not by seed):

- Pacemaker lists a stop that cannot run (on a lost node it cannot fence, "blocked") in the stop
  lists; hakeeper's plan has no such stop, so its lists do not name it.
- After a node is fenced, Pacemaker tells the others of that node's stop in a post-stop
  notification of its own, whose stop list names only the fenced node's instance; hakeeper sends
  one post-stop notification listing every stop of the transition.

A case where there is nothing to compare (no clone of a primitive, crm_simulate's own transition
failing, the clones' operations differing: the differential test's business) passes without a
comparison and says why; the last test requires that most cases were compared. (A skip would fail
under HAKEEPER_STRICT=1, where nothing may skip.)

HAKEEPER_NOTIFY_DIFF_CASES sets the number of seeds (default 160, about 20 s on two idle cores).
"""

from __future__ import annotations

import collections
import io
import os
import random
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.conftest import needs_binary

from hakeeper.conformance.cibgen import Knobs, generate
from hakeeper.conformance.cibxml import render_cib
from hakeeper.importers.cib import read_cib
from hakeeper.placement import Plan, schedule_cib

CASES = int(os.environ.get("HAKEEPER_NOTIFY_DIFF_CASES", "160"))
LISTS = ("start", "stop", "promote", "demote", "active", "master", "slave", "all", "available")
Key = tuple[str, str, str, str]  # (clone's primitive, type, operation, node)
Lists = dict[str, list[str]]
Ops = collections.Counter[tuple[str, str, str]]  # (clone's primitive, operation, node)
# Per seed run: "compared", or why there was nothing to compare.
OUTCOMES: dict[int, str] = {}


@pytest.fixture(scope="module")
def crm_simulate() -> str:
    return needs_binary("crm_simulate", "pacemaker-cli-utils")


def _base(rid: str) -> str:
    return rid.split(":")[0]


def pacemaker(graph: ET.Element, children: set[str]) -> tuple[Ops, dict[Key, Lists]]:
    ops: Ops = collections.Counter()
    notes: dict[Key, Lists] = {}
    for op in graph.iter("rsc_op"):
        prim = op.find("primitive")
        attrs = op.find("attributes")
        rid = prim.get("id", "") if prim is not None else ""
        if _base(rid) not in children or attrs is None:
            continue
        task, node = op.get("operation", ""), op.get("on_node", "")
        if task in ("start", "stop", "promote", "demote"):
            ops[(_base(rid), task, node)] += 1
        elif task == "notify":
            a = attrs.attrib
            key = (_base(rid), a["CRM_meta_notify_type"], a["CRM_meta_notify_operation"], node)
            assert key not in notes, f"two {key} notifications in Pacemaker's graph"
            notes[key] = {name: sorted(a.get(f"CRM_meta_notify_{name}_uname", "").split()) for name in LISTS}
    return ops, notes


def hakeeper(plan: Plan, children: set[str]) -> tuple[Ops, dict[Key, Lists]]:
    ops: Ops = collections.Counter()
    notes: dict[Key, Lists] = {}
    for a in plan.actions:
        if not a.resource or _base(a.resource) not in children:
            continue
        if a.task in ("start", "stop", "promote", "demote") and not a.pseudo:
            ops[(_base(a.resource), a.task, a.node)] += 1
        elif a.task == "notify" and a.notify is not None:
            key = (_base(a.resource), a.notify.type, a.notify.operation, a.node)
            assert key not in notes, f"two {key} notifications"
            meta = a.notify.crm_meta()
            notes[key] = {name: sorted(meta[f"notify_{name}_uname"].split()) for name in LISTS}
    return ops, notes


def allowed(key: Key, theirs: Lists, ours: Lists, plan: Plan) -> bool:
    """Whether the lists differ only in one of the known, documented ways."""
    if any(theirs[n] != ours[n] for n in LISTS if n != "stop"):
        return False
    mine, pcmk = set(ours["stop"]), set(theirs["stop"])
    planned = {a.node for a in plan.actions if a.task == "stop" and _base(a.resource or "") == key[0]}
    fenced = {a.node for a in plan.actions if a.task == "fence"}
    blocked_stops = pcmk > mine and not (pcmk - mine) & planned
    fenced_post = key[1:3] == ("post", "stop") and pcmk < mine and pcmk <= fenced
    return blocked_stops or fenced_post


@pytest.mark.parametrize("seed", range(CASES))
def test_same_notifications_as_pacemaker(seed: int, crm_simulate: str, tmp_path: Path) -> None:
    spec = generate(seed, Knobs(clone_share=0.5))
    assert spec.state is not None
    groups = {g.id for g in spec.resources.groups}
    children = set()
    # Every other case makes the clones promotable, with promotion scores on most nodes.
    promotable = seed % 2 == 1
    rnd = random.Random(seed)
    for clone in spec.resources.clones:
        if clone.child not in groups:
            clone.meta.notify = True
            children.add(clone.child)
            if promotable:
                clone.meta.promotable = True
                for node in spec.state.nodes.values():
                    if rnd.random() < 0.7:
                        node.attributes[f"master-{clone.child}"] = str(rnd.choice([5, 10, 100]))
    if not children:
        OUTCOMES[seed] = "no clone of a primitive in this case"
        return
    cib = tmp_path / "cib.xml"
    cib.write_bytes(render_cib(spec))
    graph = tmp_path / "graph.xml"
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    run = subprocess.run([crm_simulate, "-x", str(cib), "-S", "-G", str(graph)], capture_output=True,
                         env={**os.environ, "LC_ALL": "C", "CIB_shadow_dir": str(shadow)}, timeout=120)
    if run.returncode != 0 and b"invalid transition" in run.stderr:
        OUTCOMES[seed] = "crm_simulate's own simulated transition failed"
        return
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    plan = schedule_cib(read_cib(io.BytesIO(cib.read_bytes()), file=str(cib)), None)
    their_ops, theirs = pacemaker(ET.parse(graph).getroot(), children)
    our_ops, ours = hakeeper(plan, children)
    if their_ops != our_ops:
        OUTCOMES[seed] = "the clones' operations differ (the differential test's business)"
        return
    assert sorted(ours) == sorted(theirs), f"(CIB in {cib})"
    for key, lists in theirs.items():
        if lists != ours[key]:
            assert allowed(key, lists, ours[key], plan), (key, lists, ours[key], f"CIB in {cib}")
    OUTCOMES[seed] = "compared"


def test_most_cases_were_compared() -> None:
    """The cases above compare something: at least 40 % of those run (about 60 % at the default
    seeds), so a generator or importer change that leaves nothing to compare fails here."""
    if not OUTCOMES:
        pytest.fail("no case ran before this one (run the module whole)")
    why = collections.Counter(OUTCOMES.values())
    assert why["compared"] >= 0.4 * len(OUTCOMES), dict(why)
