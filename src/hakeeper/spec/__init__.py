"""The native cluster spec: models, cross-reference checks, YAML loading and dumping."""

from hakeeper.spec.loader import dump_spec, load_spec, load_state, parse_spec
from hakeeper.spec.model import (
    Clone,
    ClusterOptions,
    ClusterSpec,
    ClusterState,
    Colocation,
    Constraints,
    Group,
    Location,
    Meta,
    Node,
    NodeState,
    Operation,
    Order,
    Primitive,
    Resources,
    ResourceSet,
    ResourceStatus,
    Rule,
)
from hakeeper.spec.values import INFINITY, AgentRef, add_scores, parse_duration, parse_score

__all__ = [
    "INFINITY", "AgentRef", "Clone", "ClusterOptions", "ClusterSpec", "ClusterState", "Colocation",
    "Constraints", "Group", "Location", "Meta", "Node", "NodeState", "Operation", "Order", "Primitive",
    "ResourceSet", "ResourceStatus", "Resources", "Rule", "add_scores", "dump_spec", "load_spec",
    "load_state", "parse_duration", "parse_score", "parse_spec",
]
