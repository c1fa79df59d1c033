"""The operator's view of instance HA (`hakeeper recovery list`), pure: the store's values, the
cluster's node states and Nova's service records in; a typed document and its text out.

Per compute host: the cluster's word for the node (online, UNCLEAN, OFFLINE (fenced)...), its
Nova host name, its nova-compute service as Nova sees it (up/down, enabled/disabled, forced
down), and the recovery in progress if there is one; then every recovery. `hakeeper status` can
show the same section: `compute_section(values, keys, node_words)` is what it would call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hakeeper.agent import state as st
from hakeeper.instanceha.model import TERMINAL, InstanceState, Recovery
from hakeeper.instanceha.nova import Service

EVACUATOR = "instanceha:evacuator"


@dataclass(frozen=True)
class NovaService:
    state: str  # up / down
    status: str  # enabled / disabled
    forced_down: bool


@dataclass(frozen=True)
class ComputeRow:
    node: str
    cluster: str  # the node's state as `hakeeper status` words it
    nova_host: str
    nova: NovaService | None  # None: not asked, or Nova did not answer (see nova_error)
    nova_error: str
    recovering: str  # "<phase> (failure N): k of n evacuated" for a recovery not over, else ""


def evacuator_params(values: Mapping[str, bytes], keys: st.Keys) -> dict[str, str] | None:
    """The configured evacuator's params (the first, there should be one), or None."""
    found = st.config_of(values, keys)
    if not found:
        return None
    for prim in found[1].resources.primitives:
        if str(prim.agent) == EVACUATOR:
            return {str(k): str(v) for k, v in prim.params.items()}
    return None


def recoveries(values: Mapping[str, bytes], keys: st.Keys) -> list[Recovery]:
    prefix = keys.prefix + "instanceha/recovery/"
    found = [Recovery.loads(v) for k, v in values.items() if k.startswith(prefix)]
    return sorted((r for r in found if r is not None), key=lambda r: (r.fenced_at, r.node, r.failure))


def computes(params: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """(node, Nova host) of every configured compute."""
    if not params:
        return []
    host_map = dict(
        item.split(":", 1) for item in params.get("host_map", "").replace(",", ";").split(";") if ":" in item
    )
    nodes = [n.strip() for n in params.get("computes", "").replace(";", ",").split(",") if n.strip()]
    return [(n, host_map.get(n, n)) for n in nodes]


def progress(rec: Recovery) -> str:
    done = rec.count(InstanceState.EVACUATED)
    return f"{rec.phase} (failure {rec.failure}): {done} of {len(rec.instances)} evacuated"


def compute_section(
    values: Mapping[str, bytes],
    keys: st.Keys,
    node_words: Mapping[str, str],
    services: Mapping[str, Service | str] | None = None,
) -> dict[str, Any]:
    """{"computes": [...], "recoveries": [...]}; `services` maps a Nova host to its service record
    or to why Nova could not tell (absent: Nova was not asked)."""
    recs = recoveries(values, keys)
    open_recs = {r.node: r for r in recs if r.phase not in TERMINAL}
    rows: list[ComputeRow] = []
    for node, host in computes(evacuator_params(values, keys)):
        found = (services or {}).get(host)
        nova = NovaService(found.state, found.status, found.forced_down) if isinstance(found, Service) else None
        rows.append(
            ComputeRow(
                node=node,
                cluster=node_words.get(node, "not a cluster node"),
                nova_host=host,
                nova=nova,
                nova_error=found if isinstance(found, str) else "",
                recovering=progress(open_recs[node]) if node in open_recs else "",
            )
        )
    return {"computes": [asdict(r) for r in rows], "recoveries": [r.as_json() for r in recs]}


def when(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"


def summary(rec: Recovery) -> str:
    counts = ", ".join(f"{rec.count(s)} {s}" for s in InstanceState if rec.count(s))
    return f"{rec.node} failure {rec.failure}: {rec.phase} (fenced {when(rec.fenced_at)}; {counts or 'no instances'})"


def render(section: Mapping[str, Any]) -> str:
    lines: list[str] = []
    if section["computes"]:
        lines.append("Compute hosts:")
        for row in section["computes"]:
            nova = row["nova"]
            if nova is not None:
                forced = ", forced down" if nova["forced_down"] else ""
                said = f"nova-compute {nova['state']}, {nova['status']}{forced}"
            else:
                said = f"Nova: {row['nova_error']}" if row["nova_error"] else "Nova not asked"
            host = f" (Nova host {row['nova_host']})" if row["nova_host"] != row["node"] else ""
            busy = f"; recovering: {row['recovering']}" if row["recovering"] else ""
            lines.append(f"  * {row['node']}{host}: {row['cluster']}; {said}{busy}")
        lines.append("")
    lines.append("Recoveries:")
    recs = [r for r in (Recovery.from_json(doc) for doc in section["recoveries"]) if r is not None]
    if not recs:
        lines.append("  none")
    for rec in recs:
        lines.append("  * " + summary(rec) + (f"\n    {rec.reason}" if rec.reason else ""))
    return "\n".join(lines)
