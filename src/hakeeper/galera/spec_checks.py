"""What a galera primitive must say before it is accepted (by `config apply`, `import crm`,
`import cib`): checked here, so a mistake is an error naming its file, line and field instead of a
cluster that never forms.

Pacemaker's galera agent reads `wsrep_cluster_address` (gcomm://host,host,...) to know every
member, maps each host to a cluster node through `cluster_host_map` (node:host;node:host), or
takes the host as the node's name when there is no map, and waits for each of those nodes to
report its position before it bootstraps. A member that is no node is waited for forever; a map
entry naming an unknown node never matches. And the agent only works as a promotable clone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hakeeper.spec.checks import SpecPath, SpecProblem

if TYPE_CHECKING:
    from hakeeper.spec.model import ClusterSpec

GALERA_AGENT = "ocf:heartbeat:galera"


def galera_problems(spec: ClusterSpec) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    nodes = {n.name for n in spec.nodes}
    promotable = {c.child for c in spec.resources.clones if c.meta.promotable}
    for i, prim in enumerate(spec.resources.primitives):
        if str(prim.agent) != GALERA_AGENT:
            continue
        path: SpecPath = ("resources", "primitives", i)
        if prim.id not in promotable:
            problems.append(SpecProblem(path, "Pacemaker's galera agent runs only as a promotable clone (ms): "
                                              "clone it with promotable=true"))
        problems += _address_problems(prim.params, nodes, (*path, "params"))
    return problems


def _address_problems(params: dict[str, str], nodes: set[str], path: SpecPath) -> list[SpecProblem]:
    address = params.get("wsrep_cluster_address", "").strip()
    where: SpecPath = (*path, "wsrep_cluster_address")
    if not address:
        return [SpecProblem(where, "a galera primitive needs wsrep_cluster_address (gcomm://node1,node2,...): "
                                   "the agent learns the cluster's members from it")]
    if not address.startswith("gcomm://"):
        return [SpecProblem(where, "must start with gcomm://")]
    hosts = [h.strip().split(":")[0] for h in address.removeprefix("gcomm://").split(",")]
    if not all(hosts):
        return [SpecProblem(where, "an empty member in the list (gcomm://a,b,c)")]
    problems: list[SpecProblem] = []
    mapped: dict[str, str] = {}  # galera host -> node
    raw_map = params.get("cluster_host_map", "").strip()
    for entry in filter(None, (e.strip() for e in raw_map.split(";"))):
        node, sep, host = entry.partition(":")
        if not sep or not node or not host:
            problems.append(SpecProblem((*path, "cluster_host_map"), "entries are node:host, separated by ';'"))
        elif nodes and node not in nodes:
            known = ", ".join(sorted(nodes))
            problems.append(SpecProblem((*path, "cluster_host_map"),
                                        f"names {node!r}, which is not a node of the cluster ({known})"))
        else:
            mapped[host] = node
    if nodes:
        for host in hosts:
            if host not in mapped and host not in nodes:
                problems.append(SpecProblem(where, f"member {host!r} is no node of the cluster and cluster_host_map "
                                                   "does not map it to one: the agent would wait for it forever"))
    return problems
