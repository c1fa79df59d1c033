"""Small spec builders for the placement tests."""

from __future__ import annotations

from typing import Any

from hakeeper.spec.model import ClusterSpec, ClusterState


def spec(nodes: list[str] | int = 2, prims: list[str] | None = None, *, groups: Any = None,
         clones: Any = None, location: Any = None, colocation: Any = None, order: Any = None,
         cluster: Any = None, meta: dict[str, dict[str, Any]] | None = None,
         state: dict[str, Any] | None = None) -> ClusterSpec:
    names = [f"node{i + 1}" for i in range(nodes)] if isinstance(nodes, int) else nodes
    prims = prims or []
    meta = meta or {}
    primitives = [{"id": p, "agent": "ocf:pacemaker:Dummy", "meta": meta.get(p, {})}
                  for p in prims]
    data: dict[str, Any] = {
        "cluster": {"stonith-enabled": False, **(cluster or {})},
        "nodes": [{"name": n} for n in names],
        "resources": {"primitives": primitives, "groups": groups or [], "clones": clones or []},
        "constraints": {"location": location or [], "colocation": colocation or [],
                        "order": order or []},
    }
    if state is not None:
        data["state"] = state
    return ClusterSpec.model_validate(data)


def running(*entries: tuple[str, str], **extra: Any) -> ClusterState:
    """A state where each (resource, node) runs; keyword args are ClusterState fields."""
    data: dict[str, Any] = {"resources": [{"resource": r, "node": n} for r, n in entries]}
    data.update(extra)
    return ClusterState.model_validate(data)
