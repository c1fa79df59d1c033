"""Pacemaker's node-attribute tools, as OCF agents run by hakeeper see them.

Promotable agents (Stateful, galera, rabbitmq-server-ha, pgsql, redis) tell the cluster which
instance deserves promotion with `crm_attribute --promotion -v SCORE` or `crm_master -l reboot -v
SCORE`, and read attributes back (galera compares the nodes' last committed transaction) with
`crm_attribute -N NODE -n NAME -G -q`. Without Pacemaker those calls would fail. The OCF class sets
HA_SBIN_DIR to a directory of small wrappers (`install_shims`) that land here: an attribute of this
node is a file in HAKEEPER_ATTRS_DIR (the node agent publishes the directory to the store after
every action, bound to the node's lease, as Pacemaker's transient attributes end with the node's
membership); other nodes' attributes are read from the snapshot the agent keeps in
HAKEEPER_ATTRS_VIEW. Setting or deleting another node's attribute (galera's `-N peer
--name galera-bootstrap -v true`, `crm_attribute -p -N peer -v 100`) leaves it in this node's
outbox; the agent sends it to that node's agent through the store (pacemaker_cli.py), which
applies it. `crm_node`, `cibadmin -Q`, `crm_mon` and `pacemakerd -$` are pacemaker_cli.py's.

Exit status as Pacemaker's tools: 0 done, 64 usage (CRM_EX_USAGE), 105 no such attribute
(CRM_EX_NOSUCH).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence

# Agents call crm_attribute a dozen times per action: it starts without site-packages (-S) and
# imports pacemaker_cli (lxml) only for the other tools.
FAST = ("crm_attribute", "crm_master")


def crm_node(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str, str]:
    from hakeeper.resources.pacemaker_cli import crm_node as answer

    return answer(argv, env)

EX_USAGE = 64
EX_NOSUCH = 105
SHIMS = ("crm_attribute", "crm_master", "crm_node", "cibadmin", "crm_mon", "pacemakerd")


def promotion_name(instance: str) -> str:
    """`master-<resource>`: the name Pacemaker's scheduler reads, without a clone suffix (`:N`)."""
    return "master-" + re.sub(r":\d+$", "", instance)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crm_attribute", add_help=True)
    p.add_argument("-n", "--name", "--attr-name")
    p.add_argument("-v", "--update", "--attr-value", dest="update")
    p.add_argument("-D", "--delete", action="store_true")
    p.add_argument("-G", "--query", "--get-value", dest="query", action="store_true")
    p.add_argument("-q", "-Q", "--quiet", action="store_true")
    p.add_argument("-d", "--default")
    p.add_argument("-N", "--node", "-U", "--uname")
    p.add_argument("-l", "--lifetime", choices=("reboot", "forever", "status", "nodes"))
    p.add_argument("-t", "--type", choices=("nodes", "status", "crm_config", "rsc_defaults", "op_defaults"))
    p.add_argument("-p", "--promotion", nargs="?", const="", default=None)
    p.add_argument("-i", "--id")
    return p


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name


def crm_attribute(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run one command line; returns (exit status, stdout, stderr)."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse reports usage errors by exiting
        return (EX_USAGE if exc.code else 0), "", ""
    if args.type == "crm_config" or args.type in ("rsc_defaults", "op_defaults"):
        return EX_USAGE, "", f"crm_attribute (hakeeper): --type {args.type} is not supported; set it in the spec\n"
    me = env.get("HAKEEPER_NODE", "")
    node = args.node or me
    name = args.name
    if args.promotion is not None:
        name = promotion_name(args.promotion or env.get("OCF_RESOURCE_INSTANCE", ""))
    if not name or not _valid_name(name):
        return EX_USAGE, "", f"crm_attribute (hakeeper): a valid attribute name is required, not {name!r}\n"
    attrs_dir = env.get("HAKEEPER_ATTRS_DIR", "")
    # Pacemaker keeps `-l forever` (`-t nodes`) attributes in the CIB's nodes section: they outlive
    # the node's membership (rabbitmq-cluster maps a stopped node to its Erlang name with one).
    forever = args.lifetime in ("forever", "nodes") or args.type == "nodes"
    if args.update is not None or args.delete:
        if not attrs_dir:
            return EX_USAGE, "", "crm_attribute (hakeeper): HAKEEPER_ATTRS_DIR is not set (run by the node agent)\n"
        if forever:
            return _set_forever(node, name, None if args.delete else args.update, attrs_dir)
        if node != me:
            return _set_for_other(node, name, None if args.delete else args.update, attrs_dir, env)
        os.makedirs(attrs_dir, exist_ok=True)
        path = os.path.join(attrs_dir, name)
        if args.delete:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return 0, "", ""
        write_atomically(path, args.update)  # the agent never publishes half a value
        return 0, "", ""
    if forever:
        value = _lookup_forever(node, name, attrs_dir, env.get("HAKEEPER_ATTRS_VIEW", ""))
    else:
        value = _lookup(node, name, me, attrs_dir, env.get("HAKEEPER_ATTRS_VIEW", ""))
    if value is None:
        value = args.default
    if value is None:
        return EX_NOSUCH, "", f"Error performing operation: No such device or address (attribute {name} on {node})\n"
    out = value if args.quiet else f"scope=status  name={name} value={value}"
    return 0, out + "\n", ""


def _set_for_other(node: str, name: str, value: str | None, attrs: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Another node's attribute (galera's `-bootstrap`, promotion scores for its peers): left in
    this node's outbox; the agent publishes it as a request and the target's agent applies it.
    Only an online node of the cluster can take one: a request for a node that is down would
    otherwise wait for it and outlive its reboot."""
    if not _valid_name(node):
        return EX_USAGE, "", f"crm_attribute (hakeeper): invalid node name {node!r}\n"
    online = _online(env)
    if online is not None and node not in online:
        return EX_NOSUCH, "", f"Could not map name={node} to a UUID (not an online node of this cluster)\n"
    directory = os.path.join(os.path.dirname(attrs.rstrip("/")), "attrs-outbox", node)
    os.makedirs(directory, exist_ok=True)
    write_atomically(os.path.join(directory, name), json.dumps({"value": value}))
    return 0, "", ""


def forever_outbox(attrs: str) -> str:
    """Where `-l forever` writes wait for the agent to publish them: <outbox>/<node>/<name>."""
    return os.path.join(os.path.dirname(attrs.rstrip("/")), "attrs-forever-outbox")


def _set_forever(node: str, name: str, value: str | None, attrs: str) -> tuple[int, str, str]:
    """A permanent attribute of any node (this one or another, online or not): left in the
    outbox; the agent publishes it to the store without a lease (pacemaker_cli.outbox_ops)."""
    if not _valid_name(node):
        return EX_USAGE, "", f"crm_attribute (hakeeper): invalid node name {node!r}\n"
    directory = os.path.join(forever_outbox(attrs), node)
    os.makedirs(directory, exist_ok=True)
    write_atomically(os.path.join(directory, name), json.dumps({"value": value}))
    return 0, "", ""


def _lookup_forever(node: str, name: str, attrs: str, view: str) -> str | None:
    """A permanent attribute: what this node set and the agent has not published yet, else what
    the store holds (the cluster view's `forever`)."""
    if attrs and _valid_name(node):
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(forever_outbox(attrs), node, name), encoding="utf-8") as f:
                pending = json.load(f)
            value = pending.get("value") if isinstance(pending, dict) else None
            return value if isinstance(value, str) else None
    try:
        with open(os.path.join(os.path.dirname(view), "cluster-view.json"), encoding="utf-8") as f:
            doc = json.load(f).get("forever", {})
    except (OSError, ValueError, AttributeError):
        return None
    value = doc.get(node, {}).get(name) if isinstance(doc, dict) and isinstance(doc.get(node), dict) else None
    return value if isinstance(value, str) else None


def _online(env: dict[str, str]) -> list[str] | None:
    """The online nodes of the agent's cluster view (pacemaker_cli.py), None when there is none."""
    view = env.get("HAKEEPER_ATTRS_VIEW", "")
    try:
        with open(os.path.join(os.path.dirname(view), "cluster-view.json"), encoding="utf-8") as f:
            online = json.load(f).get("online")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(n) for n in online] if isinstance(online, list) else None


def _lookup(node: str, name: str, me: str, attrs_dir: str, view: str) -> str | None:
    if node == me and attrs_dir:
        try:
            with open(os.path.join(attrs_dir, name), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None
    try:
        with open(view, encoding="utf-8") as f:
            nodes = json.load(f)
    except (OSError, ValueError):
        return None
    value = nodes.get(node, {}).get(name) if isinstance(nodes, dict) else None
    return value if isinstance(value, str) else None


def attrs_dir(state_dir: str) -> str:
    """This node's attributes, one file each, as crm_attribute writes them."""
    return os.path.join(state_dir, "attrs")


def attrs_view(state_dir: str) -> str:
    """Every node's attributes as the store last showed them ({node: {name: value}})."""
    return os.path.join(state_dir, "attrs-view.json")


def read_attrs(state_dir: str) -> dict[str, str]:
    """The attribute files crm_attribute left (name -> value); half-written ones are skipped."""
    directory = attrs_dir(state_dir)
    out: dict[str, str] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return out
    for name in names:
        if name.endswith(".tmp"):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as f:
            out[name] = f.read()
    return out


def clear_attrs(state_dir: str) -> None:
    directory = attrs_dir(state_dir)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def write_view(state_dir: str, view: dict[str, dict[str, str]]) -> None:
    """Publish every node's attributes where `crm_attribute -N NODE -G` reads them (atomically)."""
    os.makedirs(state_dir, exist_ok=True)
    write_atomically(attrs_view(state_dir), json.dumps(view, sort_keys=True))


def install_shims(directory: str) -> str:
    """Write the wrappers (crm_attribute, crm_master, and pacemaker_cli.py's cibadmin, crm_mon,
    crm_node, pacemakerd) into `directory`; returns it.
    They run this module with the interpreter and package the agent itself runs from."""
    os.makedirs(directory, exist_ok=True)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for tool in SHIMS:
        flags = " -S" if tool in FAST else ""
        text = (
            "#!/bin/sh\n"
            f"# {tool} for OCF agents run by hakeeper (see hakeeper/resources/crm_attribute.py)\n"
            f"PYTHONPATH={shlex.quote(package_root)} exec {shlex.quote(sys.executable)}{flags} "
            f"-m hakeeper.resources.crm_attribute {tool} \"$@\"\n"
        )
        path = os.path.join(directory, tool)
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        write_atomically(path, text, mode=0o755)
    return directory


def write_atomically(path: str, text: str, mode: int | None = None) -> None:
    """Write through a temporary file and rename it: a reader sees the old text or the new one.
    The temporary name ends in .tmp, which read_attrs skips."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SHIMS:
        sys.stderr.write(f"usage: python -m hakeeper.resources.crm_attribute {{{','.join(SHIMS)}}} ARGS...\n")
        return EX_USAGE
    tool, rest = argv[0], argv[1:]
    env = dict(os.environ)
    if tool not in FAST:
        from hakeeper.resources.pacemaker_cli import TOOLS

        status, out, err = TOOLS[tool](rest, env)
    elif tool == "crm_master":
        # crm_master is crm_attribute for the calling resource's promotion score.
        status, out, err = crm_attribute(["--promotion", *rest], env)
    else:
        status, out, err = crm_attribute(rest, env)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
