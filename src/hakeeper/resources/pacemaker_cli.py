"""Pacemaker's read-side CLI (cibadmin -Q, crm_mon, crm_node, pacemakerd -$), answered from hakeeper's
store, so unmodified resource agents (galera, rabbitmq-cluster) find what they look for.

The node agent writes a `ClusterView` (nodes, who is online, every node's transient attributes,
the resources and where each runs in which role) to `cluster-view.json` in its state directory on
every change (`refresh_view`). The shims read that file and render it: `render_cib` gives a CIB as
`cibadmin -Q` prints it (configuration, nodes, `node_state` with `transient_attributes` and `lrm`),
`render_crm_mon` the XML of `crm_mon -1 --output-as=xml` (or the older `--as-xml`). Both renderers
are pure. One element per line, attributes in Pacemaker's order: agents grep single lines (galera's
`master_exists` wants `id=... role="Promoted" active="true" orphaned="false" failed="false"` on
one line).

The same module carries the agent-side plumbing for attributes written for OTHER nodes
(`crm_attribute -N other -v V`, galera's `-bootstrap` and promotion scores): the shim leaves them
in an outbox, the writing agent publishes them as requests (`attr-requests/<target>/<name>`,
bound to its lease), and the target's agent applies them to its own attributes, which it
publishes bound to its own lease as usual. A node that registers anew drops every request
addressed to it: a stale `<rsc>-bootstrap` must never survive into a new incarnation.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lxml import etree

if TYPE_CHECKING:
    from hakeeper.agent.daemon import Agent

EX_USAGE = 64
EX_NOSUCH = 105
PACEMAKER_VERSION = "2.1.5"
FEATURE_SET = "3.16.2"
NO_UUID = "00000000-0000-0000-0000-000000000000"
Role = Literal["Started", "Promoted", "Unpromoted", "Stopped"]


@dataclass(frozen=True)
class ResourceDef:
    id: str  # the primitive
    agent: str  # class:provider:type
    clone: str | None = None  # the clone wrapping it
    promotable: bool = False
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunningOn:
    role: Role
    failed: bool = False


@dataclass(frozen=True)
class ClusterView:
    """What the shims may know of the cluster, as this node's agent last saw the store."""

    nodes: list[str]
    online: list[str]
    standby: list[str] = field(default_factory=list)
    dc: str | None = None
    quorate: bool = True
    version: int = 0
    resources: list[ResourceDef] = field(default_factory=list)
    status: dict[str, dict[str, RunningOn]] = field(default_factory=dict)  # node -> rsc -> state
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> name -> value
    # Permanent node attributes (`crm_attribute -l forever`): any node's, online or not.
    forever: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> ClusterView:
        doc = json.loads(text)
        return ClusterView(
            nodes=list(doc["nodes"]),
            online=list(doc["online"]),
            standby=list(doc.get("standby", [])),
            dc=doc.get("dc"),
            quorate=bool(doc.get("quorate", True)),
            version=int(doc.get("version", 0)),
            resources=[ResourceDef(**r) for r in doc.get("resources", [])],
            status={n: {r: RunningOn(**s) for r, s in per.items()} for n, per in doc.get("status", {}).items()},
            attrs={n: dict(a) for n, a in doc.get("attrs", {}).items()},
            forever={n: dict(a) for n, a in doc.get("forever", {}).items()},
        )


def view_path(state_dir: str) -> str:
    return os.path.join(state_dir, "cluster-view.json")


# ----- the CIB (cibadmin -Q) -----


def _agent_parts(agent: str) -> tuple[str, str | None, str]:
    parts = agent.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return "ocf", "heartbeat", agent


def _primitive(parent: etree._Element, res: ResourceDef) -> None:
    cls, provider, typ = _agent_parts(res.agent)
    attrs = {"id": res.id, "class": cls, "type": typ}
    if provider:
        attrs = {"id": res.id, "class": cls, "provider": provider, "type": typ}
    prim = etree.SubElement(parent, "primitive", attrs)
    if res.params:
        ia = etree.SubElement(prim, "instance_attributes", {"id": f"{res.id}-instance_attributes"})
        for k, v in sorted(res.params.items()):
            etree.SubElement(ia, "nvpair", {"id": f"{res.id}-instance_attributes-{k}", "name": k, "value": v})


def render_cib(view: ClusterView) -> etree._Element:
    """The CIB as `cibadmin -Q` would print it for this cluster."""
    cib = etree.Element(
        "cib",
        {
            "crm_feature_set": FEATURE_SET,
            "validate-with": "pacemaker-3.9",
            "epoch": str(view.version),
            "num_updates": "0",
            "admin_epoch": "0",
            "have-quorum": "1" if view.quorate else "0",
            **({"dc-uuid": view.dc} if view.dc else {}),
        },
    )
    config = etree.SubElement(cib, "configuration")
    etree.SubElement(etree.SubElement(config, "crm_config"), "cluster_property_set", {"id": "cib-bootstrap-options"})
    nodes = etree.SubElement(config, "nodes")
    for n in view.nodes:
        node = etree.SubElement(nodes, "node", {"id": n, "uname": n})
        permanent = {**view.forever.get(n, {}), **({"standby": "on"} if n in view.standby else {})}
        if permanent:
            ia = etree.SubElement(node, "instance_attributes", {"id": f"nodes-{n}"})
            for name, value in sorted(permanent.items()):
                etree.SubElement(ia, "nvpair", {"id": f"nodes-{n}-{name}", "name": name, "value": value})
    resources = etree.SubElement(config, "resources")
    for res in view.resources:
        if res.clone is None:
            _primitive(resources, res)
            continue
        clone = etree.SubElement(resources, "clone", {"id": res.clone})
        meta = etree.SubElement(clone, "meta_attributes", {"id": f"{res.clone}-meta_attributes"})
        if res.promotable:
            etree.SubElement(
                meta, "nvpair", {"id": f"{res.clone}-meta_attributes-promotable", "name": "promotable", "value": "true"}
            )
        _primitive(clone, res)
    etree.SubElement(config, "constraints")
    status = etree.SubElement(cib, "status")
    for n in view.nodes:
        up = n in view.online
        state = etree.SubElement(
            status,
            "node_state",
            {
                "id": n,
                "uname": n,
                "in_ccm": "true" if up else "false",
                "crmd": "online" if up else "offline",
                "crm-debug-origin": "hakeeper",
                "join": "member" if up else "down",
                "expected": "member" if up else "down",
            },
        )
        attrs = view.attrs.get(n, {})
        if attrs:
            ta = etree.SubElement(state, "transient_attributes", {"id": n})
            ia = etree.SubElement(ta, "instance_attributes", {"id": f"status-{n}"})
            for name, value in sorted(attrs.items()):
                etree.SubElement(ia, "nvpair", {"id": f"status-{n}-{name}", "name": name, "value": value})
        lrm = etree.SubElement(state, "lrm", {"id": n})
        lrm_resources = etree.SubElement(lrm, "lrm_resources")
        for res in view.resources:
            running = view.status.get(n, {}).get(res.id)
            if running is None:
                continue
            cls, provider, typ = _agent_parts(res.agent)
            lr = etree.SubElement(
                lrm_resources,
                "lrm_resource",
                {"id": res.id, "class": cls, "type": typ, **({"provider": provider} if provider else {})},
            )
            # A promote that succeeded answers 0 (8 is what a monitor of a promoted instance says).
            op = "promote" if running.role == "Promoted" else "start"
            rc = "0"
            etree.SubElement(
                lr,
                "lrm_rsc_op",
                {
                    "id": f"{res.id}_last_0",
                    "operation_key": f"{res.id}_{op}_0",
                    "operation": op,
                    "crm-debug-origin": "hakeeper",
                    "crm_feature_set": FEATURE_SET,
                    # action:transition:expected-rc:uuid; without it Pacemaker cannot tell a
                    # result from the one expected and counts every operation as failed.
                    "transition-key": f"1:1:0:{NO_UUID}",
                    "transition-magic": f"0:{'1' if running.failed else '0'};1:1:0:{NO_UUID}",
                    "call-id": "1",
                    "rc-code": "1" if running.failed else rc,
                    "op-status": "0",
                    "interval": "0",
                    "on_node": n,
                },
            )
    return cib


def to_text(element: etree._Element) -> str:
    """One element per line (agents grep single lines)."""
    etree.indent(element, space="  ")
    return etree.tostring(element, encoding="unicode") + "\n"


def xpath_query(cib: etree._Element, xpath: str) -> list[str] | None:
    """`cibadmin -Q --xpath X`: every match on a line of its own; None for an invalid expression."""
    try:
        found = cib.xpath(xpath)
    except etree.XPathError:
        return None
    if not isinstance(found, list):
        return [str(found)]
    out = []
    for item in found:
        if isinstance(item, etree._Element):
            etree.indent(item, space="  ")
            out.append(etree.tostring(item, encoding="unicode", with_tail=False))
        else:
            out.append(str(item))
    return out


# ----- crm_mon -----


def _role_name(role: Role, legacy: bool) -> str:
    if legacy:
        return {"Promoted": "Master", "Unpromoted": "Slave"}.get(role, role)
    return role


def render_crm_mon(view: ClusterView, legacy: bool = False, request: str = "crm_mon -1 --output-as=xml") -> str:
    """crm_mon's XML: Pacemaker 2.1's `--output-as=xml` (root `pacemaker-result`), or with `legacy`
    the older `--as-xml` (root `crm_mon`, roles Master/Slave)."""
    root = (
        etree.Element("crm_mon", {"version": PACEMAKER_VERSION})
        if legacy
        else etree.Element("pacemaker-result", {"api-version": "2.25", "request": request})
    )
    summary = etree.SubElement(root, "summary")
    etree.SubElement(summary, "stack", {"type": "hakeeper"})
    etree.SubElement(
        summary,
        "current_dc",
        {"present": "true" if view.dc else "false", **({"name": view.dc, "id": view.dc} if view.dc else {})},
    )
    etree.SubElement(summary, "nodes_configured", {"number": str(len(view.nodes))})
    etree.SubElement(summary, "resources_configured", {"number": str(len(view.resources) * max(1, len(view.nodes)))})
    nodes = etree.SubElement(root, "nodes")
    for n in view.nodes:
        running = [r for r, s in view.status.get(n, {}).items() if s.role != "Stopped"]
        etree.SubElement(
            nodes,
            "node",
            {
                "name": n,
                "id": n,
                "online": "true" if n in view.online else "false",
                "standby": "true" if n in view.standby else "false",
                "standby_onfail": "false",
                "maintenance": "false",
                "pending": "false",
                "unclean": "false",
                "shutdown": "false",
                "expected_up": "true" if n in view.online else "false",
                "is_dc": "true" if n == view.dc else "false",
                "resources_running": str(len(running)),
                "type": "member",
            },
        )
    resources = etree.SubElement(root, "resources")
    for res in view.resources:
        parent = resources
        if res.clone is not None:
            failed = any(view.status.get(n, {}).get(res.id, RunningOn("Stopped")).failed for n in view.nodes)
            parent = etree.SubElement(
                resources,
                "clone",
                {
                    "id": res.clone,
                    "multi_state": "true" if res.promotable else "false",
                    "unique": "false",
                    "managed": "true",
                    "disabled": "false",
                    "failed": "true" if failed else "false",
                    "failure_ignored": "false",
                },
            )
        placed = [(n, view.status[n][res.id]) for n in view.nodes if res.id in view.status.get(n, {})]
        if not placed:
            placed_or_stopped: list[tuple[str | None, RunningOn]] = [(None, RunningOn("Stopped"))]
        else:
            placed_or_stopped = list(placed)
        for node, state in placed_or_stopped:
            role = state.role
            if role == "Started" and res.promotable:
                role = "Unpromoted"
            active = node is not None and role != "Stopped"
            el = etree.SubElement(
                parent,
                "resource",
                {
                    "id": res.id,
                    "resource_agent": res.agent,
                    "role": _role_name(role, legacy),
                    "active": "true" if active else "false",
                    "orphaned": "false",
                    "blocked": "false",
                    "managed": "true",
                    "failed": "true" if state.failed else "false",
                    "failure_ignored": "false",
                    "nodes_running_on": "1" if active else "0",
                },
            )
            if node is not None and active:
                etree.SubElement(el, "node", {"name": node, "id": node, "cached": "true"})
    node_attributes = etree.SubElement(root, "node_attributes")
    for n in view.nodes:
        if n not in view.online:
            continue
        el = etree.SubElement(node_attributes, "node", {"name": n})
        for name, value in sorted(view.attrs.get(n, {}).items()):
            etree.SubElement(el, "attribute", {"name": name, "value": value})
    if not legacy:
        etree.SubElement(root, "status", {"code": "0", "message": "OK"})
    return to_text(root)


def render_crm_mon_text(view: ClusterView) -> str:
    """`crm_mon -1` in plain text (for people reading an agent's log)."""
    lines = [f"Cluster Summary:\n  * Current DC: {view.dc or 'NONE'}", "Node List:"]
    lines.append(f"  * Online: [ {' '.join(view.online)} ]")
    offline = [n for n in view.nodes if n not in view.online]
    if offline:
        lines.append(f"  * OFFLINE: [ {' '.join(offline)} ]")
    lines.append("Full List of Resources:")
    for res in view.resources:
        for n in view.nodes:
            state = view.status.get(n, {}).get(res.id)
            if state is not None:
                lines.append(f"  * {res.id} ({res.agent}): {state.role} {n}{' FAILED' if state.failed else ''}")
    return "\n".join(lines) + "\n"


# ----- the tools -----


def _load(env: Mapping[str, str]) -> ClusterView | None:
    path = env.get("HAKEEPER_CLUSTER_VIEW", "")
    if not path:
        attrs_view = env.get("HAKEEPER_ATTRS_VIEW", "")
        path = view_path(os.path.dirname(attrs_view)) if attrs_view else ""
    try:
        with open(path, encoding="utf-8") as f:
            return ClusterView.from_json(f.read())
    except (OSError, ValueError, KeyError, TypeError):
        return None


NO_VIEW = "hakeeper: no cluster view yet (the node agent writes it once it follows the store)\n"


def cibadmin(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    args = list(argv)
    if not any(a in ("-Q", "--query") for a in args):
        return EX_USAGE, "", "cibadmin (hakeeper): only queries (-Q) are supported; change the spec instead\n"
    xpath = None
    for i, a in enumerate(args):
        if a in ("--xpath", "-A") and i + 1 < len(args):
            xpath = args[i + 1]
        elif a.startswith("--xpath="):
            xpath = a.split("=", 1)[1]
    view = _load(env)
    if view is None:
        return EX_NOSUCH, "", NO_VIEW
    cib = render_cib(view)
    if xpath is None:
        return 0, to_text(cib), ""
    found = xpath_query(cib, xpath)
    if found is None:
        return EX_USAGE, "", f"cibadmin (hakeeper): invalid XPath {xpath!r}\n"
    if not found:
        return EX_NOSUCH, "", "Call cib_query failed (-6): No such device or address\n"
    return 0, "\n".join(found) + "\n", ""


def crm_mon(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    args = list(argv)
    view = _load(env)
    if view is None:
        return 102, "", NO_VIEW  # CRM_EX_UNSATISFIED... crm_mon's "not connected"
    legacy = any(a in ("-X", "--as-xml") for a in args) or any(
        a.startswith("-") and not a.startswith("--") and "X" in a for a in args
    )
    xml = legacy or "--output-as=xml" in args or ("--output-as" in args and "xml" in args)
    if not xml:
        return 0, render_crm_mon_text(view), ""
    return 0, render_crm_mon(view, legacy=legacy, request="crm_mon " + " ".join(args)), ""


def crm_node(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    args = list(argv)
    me = env.get("HAKEEPER_NODE", "")
    if args in (["-n"], ["--name"]):
        return 0, me + "\n", ""
    known = (["-p"], ["--partition"], ["-q"], ["--quorum"], ["-l"], ["--list"], ["-i"], ["--cluster-id"])
    if args not in known:
        return EX_USAGE, "", f"crm_node (hakeeper): -n, -p, -q, -l or -i, not {' '.join(args)}\n"
    view = _load(env)
    if view is None:
        return EX_NOSUCH, "", NO_VIEW
    if args in (["-p"], ["--partition"]):
        return 0, " ".join(view.online) + "\n", ""
    if args in (["-q"], ["--quorum"]):
        return 0, ("1" if view.quorate else "0") + "\n", ""
    if args in (["-l"], ["--list"]):
        return 0, "".join(f"{n} {n} {'member' if n in view.online else 'lost'}\n" for n in view.nodes), ""
    return 0, me + "\n", ""  # -i: node ids are the names


def pacemakerd(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    if list(argv) in (["-$"], ["--version"]):
        return 0, f"Pacemaker {PACEMAKER_VERSION} (hakeeper)\n", ""
    return EX_USAGE, "", "pacemakerd (hakeeper): only -$ (the version) is answered\n"


TOOLS = {"cibadmin": cibadmin, "crm_mon": crm_mon, "crm_node": crm_node, "pacemakerd": pacemakerd}


def main(tool: str, argv: Sequence[str]) -> int:
    status, out, err = TOOLS[tool](argv, dict(os.environ))
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


# ----- the agent's side: the view, and attributes written for other nodes -----


def outbox_dir(state_dir: str) -> str:
    """Attributes this node's resource agents set for OTHER nodes: <outbox>/<target>/<name>."""
    return os.path.join(state_dir, "attrs-outbox")


def requests_prefix(prefix: str, node: str | None = None) -> str:
    return f"{prefix}attr-requests/" + (f"{node}/" if node else "")


def forever_prefix(prefix: str) -> str:
    """Permanent node attributes in the store: <prefix>attrs-forever/<node>/<name>, no lease."""
    return f"{prefix}attrs-forever/"


def forever_attributes(values: Mapping[str, bytes], prefix: str) -> dict[str, dict[str, str]]:
    """{node: {name: value}} of the permanent attributes in the store (pure)."""
    out: dict[str, dict[str, str]] = {}
    top = forever_prefix(prefix)
    for key, raw in values.items():
        node, _, name = key[len(top) :].partition("/")
        if not key.startswith(top) or not name or "/" in name:
            continue
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            value = json.loads(raw)
            if isinstance(value, str):
                out.setdefault(node, {})[name] = value
    return out


def read_outbox(state_dir: str, root: str | None = None) -> dict[tuple[str, str], str | None]:
    """{(target, name): value, None for a deletion} of an outbox (default: attributes set for
    other nodes); the files are consumed."""
    out: dict[tuple[str, str], str | None] = {}
    root = root or outbox_dir(state_dir)
    with contextlib.suppress(FileNotFoundError):
        for target in sorted(os.listdir(root)):
            directory = os.path.join(root, target)
            with contextlib.suppress(OSError):
                for name in sorted(os.listdir(directory)):
                    if name.endswith(".tmp"):
                        continue
                    path = os.path.join(directory, name)
                    with contextlib.suppress(OSError, ValueError):
                        with open(path, encoding="utf-8") as f:
                            doc = json.load(f)
                        os.unlink(path)
                        out[(target, name)] = doc.get("value") if isinstance(doc, dict) else None
    return out


def running_on(doc: dict[str, Any]) -> RunningOn:
    """A node's status report of one resource, as the shims show it (pure)."""
    role = doc.get("role", "Started")
    if doc.get("pending") and doc.get("op") == "promote":
        # A promote claimed but not finished: Pacemaker's crm_mon shows the instance in the
        # role it still has (Unpromoted, pending "Promoting"). Shown as Promoted, galera's
        # promote finds "a master already up" (itself) and joins instead of bootstrapping.
        role = "Unpromoted"
    return RunningOn(
        role=role if role in ("Started", "Promoted", "Unpromoted", "Stopped") else "Started",
        failed=bool(doc.get("failed")),
    )


def build_view(agent: Agent) -> ClusterView:
    """The view of the store the shims render, from the agent's mirror."""
    from hakeeper.agent import state as st

    values, keys = agent.mirror.values, agent.keys
    spec = agent.spec()
    members = st.members(values, keys)
    names = [n.name for n in spec.nodes] if spec is not None else sorted(members)
    standby = []
    for n in names:
        doc = st.loads(values.get(keys.node(n)))
        if isinstance(doc, dict) and doc.get("standby"):
            standby.append(n)
    resources: list[ResourceDef] = []
    if spec is not None:
        clone_of = {c.child: c for c in spec.resources.clones}
        for p in spec.resources.primitives:
            clone = clone_of.get(p.id)
            resources.append(
                ResourceDef(
                    id=p.id,
                    agent=str(p.agent),
                    clone=clone.id if clone is not None else None,
                    promotable=bool(clone is not None and clone.meta.promotable),
                    params={k: str(v) for k, v in p.params.items()},
                )
            )
    status: dict[str, dict[str, RunningOn]] = {}
    for key, raw in values.items():
        if not key.startswith(keys.status):
            continue
        node, _, rsc = key[len(keys.status) :].partition("/")
        doc = st.loads(raw)
        if not isinstance(doc, dict) or node not in members:
            continue
        status.setdefault(node, {})[rsc] = running_on(doc)
    leader = values.get(keys.leader)
    config = st.config_of(values, keys)
    attrs = {n: a for n, a in st.attributes(values, keys).items() if n in members}
    forever = forever_attributes(values, keys.prefix)
    return ClusterView(
        nodes=names,
        online=[n for n in names if n in members],
        standby=standby,
        dc=leader.decode() if leader else None,
        quorate=not agent.quorum_lost,
        version=config[0] if config else 0,
        resources=resources,
        status=status,
        attrs=attrs,
        forever=forever,
    )


def refresh_view(agent: Agent) -> None:
    """Write the view for the shims when it changed (called on every store change)."""
    from hakeeper.resources.crm_attribute import write_atomically

    view = build_view(agent)
    text = view.to_json()
    if agent.cluster_view_text != text:
        os.makedirs(agent.state_dir, exist_ok=True)
        write_atomically(view_path(agent.state_dir), text)
        agent.cluster_view_text = text


def outbox_ops(agent: Agent) -> list[Any]:
    """Publish what this node's agents set for other nodes, as requests bound to this lease."""
    from hakeeper.agent import state as st
    from hakeeper.coord.store import Put

    lease = agent.keeper.lease
    if not lease:
        return []
    prefix = agent.keys.prefix
    ops: list[Any] = [
        Put(
            requests_prefix(prefix, target) + name,
            st.dumps({"value": value, "from": agent.node}),
            lease,
        )
        for (target, name), value in read_outbox(agent.state_dir).items()
    ]
    return ops + forever_ops(agent.mirror.values, prefix, agent.state_dir)


def forever_ops(values: Mapping[str, bytes], prefix: str, state_dir: str) -> list[Any]:
    """Publish the permanent attributes this node's agents set (`crm_attribute -l forever`), for
    any node, without a lease: Pacemaker keeps them in the CIB's nodes section, beyond the node's
    membership and reboots. A value the store already holds is not written again (rabbitmq-cluster
    sets its node name on every monitor)."""
    from hakeeper.coord.store import Delete, Put
    from hakeeper.resources.crm_attribute import attrs_dir, forever_outbox

    stored = forever_attributes(values, prefix)
    ops: list[Any] = []
    for (node, name), value in read_outbox(state_dir, forever_outbox(attrs_dir(state_dir))).items():
        if stored.get(node, {}).get(name) == value:
            continue
        key = f"{forever_prefix(prefix)}{node}/{name}"
        ops.append(Delete(key) if value is None else Put(key, json.dumps(value).encode()))
    return ops


async def apply_requests(agent: Agent) -> None:
    """Apply requests addressed to this node to its own attributes, then publish them (bound to
    this node's lease) and drop the requests, in one transaction."""
    from hakeeper.agent import state as st
    from hakeeper.coord.store import Compare, Delete
    from hakeeper.resources.crm_attribute import attrs_dir, write_atomically

    if not agent.keeper.lease or not agent.probed:
        return
    mine = requests_prefix(agent.keys.prefix, agent.node)
    pending = {k: v for k, v in agent.mirror.values.items() if k.startswith(mine)}
    if not pending:
        return
    directory = attrs_dir(agent.state_dir)
    os.makedirs(directory, exist_ok=True)
    for key, raw in sorted(pending.items()):
        name = key[len(mine) :]
        doc = st.loads(raw)
        if "/" in name or name in ("", ".", ".."):
            continue
        value = doc.get("value") if isinstance(doc, dict) else None
        if value is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
        else:
            write_atomically(os.path.join(directory, name), str(value))
    ops = [*agent.attr_ops(), *(Delete(k) for k in pending)]
    await agent.store.txn([Compare(k, "value", "==", v) for k, v in pending.items()], ops)


async def follow_requests(agent: Agent) -> None:
    """The agent's task applying requests addressed to this node whenever the store changes."""
    import asyncio

    from hakeeper.coord.store import StoreError

    changed = agent.subscribe()
    while True:
        await changed.wait()
        changed.clear()
        try:
            await apply_requests(agent)
        except StoreError:
            await asyncio.sleep(0.2)
            changed.set()


async def purge_requests(agent: Agent) -> None:
    """A new incarnation: requests made for an earlier one are void (Pacemaker clears a joining
    node's transient attributes)."""
    from hakeeper.coord.store import Delete

    await agent.store.txn([], [Delete(requests_prefix(agent.keys.prefix, agent.node), prefix=True)])


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TOOLS:
        sys.stderr.write(f"usage: python -m hakeeper.resources.pacemaker_cli {{{','.join(TOOLS)}}} ARGS...\n")
        sys.exit(EX_USAGE)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
