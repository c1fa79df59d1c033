"""Say what broke: failures grouped by input class and symptom, and reproducers saved to a directory."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path

from fuzzrun import Outcome

MAX_EXAMPLES = 3


def _gist(o: Outcome) -> str:
    lines = [ln for ln in o.stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else "(no stderr)"
    return last if len(last) <= 160 else last[:157] + "..."


def summary(failed: list[Outcome]) -> str:
    """One paragraph per (reader, class, symptom), with a few example cases."""
    groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for o in failed:
        for symptom in o.failures:
            groups[(o.case.reader, o.case.klass, symptom)].append(o)
    out = []
    for (reader, klass, symptom), items in sorted(groups.items()):
        out.append(f"- {reader} / {klass}: {symptom} ({len(items)} input(s))")
        for o in items[:MAX_EXAMPLES]:
            status = f"signal {o.signal}" if o.signal else f"exit {o.status}"
            out.append(f"    {o.case.name}: {status}, {o.seconds:.2f} s: {_gist(o)}")
    return "\n".join(out)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60]


def save_reproducer(root: Path, o: Outcome) -> Path:
    """The case's files, its command line and what it printed, under ROOT/READER/CLASS-NAME/."""
    where = root / o.case.reader / f"{_slug(o.case.klass)}--{_slug(o.case.name)}"
    where.mkdir(parents=True, exist_ok=True)
    for rel, data in o.case.files.items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_bytes(data)
    argv = " ".join(shlex.quote(a.replace("{d}", ".")) for a in o.case.argv)
    (where / "command").write_text(
        f"# run in this directory; symptoms: {'; '.join(o.failures)}\n"
        f"hakeeper {argv}\n")
    (where / "stderr").write_text(o.stderr[-20000:])
    (where / "stdout").write_text(o.stdout[-5000:])
    return where
