"""Run the scheduler on each case of the suite and compare its Transition Summary.

This is the imperative shell: it reads files, imports CIBs and takes the clock (crm_simulate
evaluates failure timeouts against the current time unless `-t DATE` is given).
"""

from __future__ import annotations

import importlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hakeeper.conformance.suite import Case, action_key, normalise, transition_summary
from hakeeper.errors import InputError
from hakeeper.placement import schedule_cib
from hakeeper.spec.model import ClusterSpec, ClusterState


@dataclass
class Result:
    case: Case
    exact: bool = False
    actions: bool = False  # the same actions, reasons aside
    reason: str = ""
    expected: list[str] = field(default_factory=list)
    got: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"name": self.case.name, "tier": self.case.tier, "exact": self.exact,
                "actions": self.actions, "reason": self.reason, "expected": self.expected,
                "got": self.got, "seconds": round(self.seconds, 4)}


def _importer() -> Any:
    module = importlib.import_module("hakeeper.importers.cib")
    return module.read_cib


def _now(case: Case) -> float:
    match = re.search(r"-t\s+(.+)$", case.args.strip())
    if not match:
        return time.time()
    text = match.group(1).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%jT%H:%M", "%Y-%j", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return time.time()


def run_case(case: Case, loader: Any | None = None) -> Result:
    result = Result(case)
    result.expected = transition_summary(case.summary.read_text(encoding="utf-8"))
    started = time.perf_counter()
    try:
        load = loader or _importer()
        spec: ClusterSpec = load(case.xml, now=_now(case))
        state = spec.state or ClusterState()
        if state.now is None:
            state = state.model_copy(update={"now": _now(case)})
        plan = schedule_cib(spec, state)
        result.got = plan.summary
    except InputError as exc:
        result.reason = f"unsupported: {str(exc).splitlines()[0] if str(exc) else 'input'}"
        return result
    except Exception as exc:  # a case that crashes is a failure with its reason
        result.reason = f"error: {type(exc).__name__}: {exc}"
        return result
    finally:
        result.seconds = time.perf_counter() - started
    want = [normalise(x) for x in result.expected]
    have = [normalise(x) for x in result.got]
    result.exact = want == have
    result.actions = Counter(action_key(x) for x in result.expected) == Counter(
        action_key(x) for x in result.got)
    if not result.exact:
        missing = [x for x in want if x not in have]
        extra = [x for x in have if x not in want]
        result.reason = "; ".join(
            ([f"missing: {missing[0]}" + (f" (+{len(missing) - 1})" if len(missing) > 1 else "")]
             if missing else [])
            + ([f"extra: {extra[0]}" + (f" (+{len(extra) - 1})" if len(extra) > 1 else "")]
               if extra else [])) or "order differs"
    return result


def tier_figures(results: list[Result]) -> dict[int, dict[str, int]]:
    tiers: dict[int, dict[str, int]] = {}
    for r in results:
        t = tiers.setdefault(r.case.tier, {"cases": 0, "exact": 0, "actions": 0})
        t["cases"] += 1
        t["exact"] += int(r.exact)
        t["actions"] += int(r.actions)
    return dict(sorted(tiers.items()))
