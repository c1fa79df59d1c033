"""The suite on disk: index.tsv, xml/NAME.xml inputs, summary/NAME.summary expected outputs."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hakeeper.errors import InputError, Problem

SUITE_NAME = "pacemaker-scheduler-2.1.5"


def default_suite_dir() -> Path:
    """Where Pacemaker's suite is: $HAKEEPER_SCHEDULER_SUITE, else `shared/` beside the checkout.

    CI clones the project with shared/ beside it; a git worktree sits one level deeper.
    """
    env = os.environ.get("HAKEEPER_SCHEDULER_SUITE")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    candidates = [up / "shared" / SUITE_NAME for up in here.parents]
    return next((c for c in candidates if (c / "index.tsv").is_file()), candidates[0])


@dataclass(frozen=True)
class Case:
    name: str
    tier: int
    args: str
    features: str
    description: str
    xml: Path
    summary: Path


def load_index(root: Path) -> list[Case]:
    index = root / "index.tsv"
    if not index.is_file():
        raise InputError([Problem("not a scheduler suite: no index.tsv", str(root), None, None)])
    cases: list[Case] = []
    with index.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            cases.append(Case(
                name=row["name"], tier=int(row["tier"]), args=row.get("args") or "",
                features=row.get("features") or "", description=row.get("description") or "",
                xml=root / "xml" / f"{row['name']}.xml",
                summary=root / "summary" / f"{row['name']}.summary"))
    return cases


def transition_summary(text: str) -> list[str]:
    """The lines of the `Transition Summary:` block of crm_simulate's output."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("Transition Summary:"):
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            if not line.startswith(" "):
                break
            lines.append(line)
    return lines


def normalise(line: str) -> str:
    """Whitespace-insensitive form of a summary line."""
    return " ".join(re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", line)).split())


def action_key(line: str) -> str:
    """The action a line stands for, without its reason: `Move rsc (a -> b)`."""
    norm = normalise(line)
    if norm.startswith("* Fence"):
        return norm.split(" '")[0]
    head, sep, _tail = norm.partition(")")
    return head + sep
