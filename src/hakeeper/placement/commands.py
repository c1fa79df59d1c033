"""`hakeeper simulate` and `hakeeper explain`: the placement engine from the command line."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any, Literal

from hakeeper.errors import InputError, Problem
from hakeeper.placement.engine import schedule
from hakeeper.placement.explain import explain_json, explain_lines, resolve
from hakeeper.placement.simulate import (
    TICKET_EVENTS,
    initial_state,
    inject,
    presumed_tickets,
    render_status,
    state_from_plan,
)
from hakeeper.spec.loader import load_spec, load_state
from hakeeper.spec.model import ClusterSpec


def register(subparsers: Any) -> None:
    sim = subparsers.add_parser(
        "simulate", help="show what the cluster would do (Pacemaker's crm_simulate, natively)",
        description="Schedule FILE's cluster and print the current status, the transition "
                    "summary and the status afterwards. Without a state (none in FILE, no "
                    "--state), the current status is the initial placement: everything is "
                    "placed first, then the events given act on it (so --fail alice means "
                    "'everything running, then alice dies').")
    sim.add_argument("file", help="native spec (YAML) or Pacemaker CIB XML")
    sim.add_argument("--state", help="a state file (the content of a spec's state: section)")
    sim.add_argument("--fail", action="append", default=[], metavar="NODE",
                     help="the node is lost (offline and unclean: fenced when stonith is on)")
    sim.add_argument("--standby", action="append", default=[], metavar="NODE")
    sim.add_argument("--op-fail", action="append", default=[], metavar="RSC:NODE",
                     help="the resource's monitor failed on the node")
    for event, words in (("grant", "the ticket is granted"), ("revoke", "the ticket is revoked"),
                         ("standby", "the ticket is put in standby"),
                         ("activate", "the ticket leaves standby")):
        sim.add_argument(f"--ticket-{event}", action="append", default=[], metavar="TICKET",
                         help=words + (" (without a state, it was granted before)"
                                       if event != "grant" else ""))
    sim.add_argument("--json", action="store_true", help="print the plan as JSON")
    sim.set_defaults(handler=_simulate)
    exp = subparsers.add_parser(
        "explain", help="why a resource is placed where it is: every node's score and its parts")
    exp.add_argument("file")
    exp.add_argument("resource")
    exp.add_argument("--state")
    exp.add_argument("--json", action="store_true")
    exp.set_defaults(handler=_explain)


XML_MARKUP = "<"
_BOM = "\ufeff"
_HEAD_BYTES = 64 * 1024


def input_format(head: str) -> Literal["xml", "yaml"]:
    """Which reader a cluster file is for, from its first token: XML (a CIB) or YAML (a spec).

    Everything an XML document may begin with (the XML declaration, comments, processing
    instructions, a doctype, the root element) starts with "<", after an optional byte-order mark
    and whitespace; a YAML spec starts with a key, a comment ("#"), a directive or "---". So a YAML
    spec whose comment mentions "<cib" is YAML, and a CIB behind a long license comment is XML.
    Only the first token counts: never a substring further on. An XML file whose root is not
    <cib> goes to the CIB reader too, which says so with its line."""
    text = head.removeprefix(_BOM).lstrip()
    return "xml" if text.startswith(XML_MARKUP) else "yaml"


def _file_format(path: str) -> Literal["xml", "yaml"]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError([Problem(f"cannot read: {exc.strerror or exc}", path, None, None)]) from None
    return input_format(head)


def read_cluster(path: str) -> tuple[ClusterSpec, bool]:
    """The cluster in a spec or CIB file, and whether it came from a CIB (Pacemaker's rules for
    fencing devices then apply)."""
    if _file_format(path) == "xml":
        try:
            cib: Any = importlib.import_module("hakeeper.importers.cib")
        except ImportError as exc:
            raise InputError([Problem("CIB XML needs the CIB importer (hakeeper.importers.cib)",
                                      path, None, None)]) from exc
        spec: ClusterSpec = cib.read_cib(path)
        return spec, True
    return load_spec(path), False


def _node_names(spec: ClusterSpec, names: list[str], path: str, option: str) -> None:
    known = {n.name for n in spec.nodes}
    for name in names:
        if name not in known:
            raise InputError([Problem(f"unknown node {name!r} (known: {', '.join(sorted(known))})",
                                      path, None, option)])


def _simulate(args: argparse.Namespace) -> int:
    spec, from_cib = read_cluster(args.file)
    if args.state:
        spec = spec.model_copy(update={"state": load_state(args.state)})
    _node_names(spec, args.fail, args.file, "--fail")
    _node_names(spec, args.standby, args.file, "--standby")
    op_fail: list[tuple[str, str]] = []
    for item in args.op_fail:
        rsc, sep, node = item.rpartition(":")
        if not sep or not rsc:
            raise InputError([Problem(f"--op-fail wants RSC:NODE, not {item!r}", args.file, None,
                                      "--op-fail")])
        _node_names(spec, [node], args.file, "--op-fail")
        op_fail.append((rsc, node))
    tickets: dict[str, str] = {}
    for event in TICKET_EVENTS:
        for name in getattr(args, f"ticket_{event}"):
            if tickets.get(name, event) != event:
                raise InputError([Problem(f"ticket {name!r} has two events ({tickets[name]}, {event})",
                                          args.file, None, f"--ticket-{event}")])
            tickets[name] = event
    now = initial_state(spec, presumed_tickets(tickets))
    state = inject(spec, now, args.fail, args.standby, op_fail, tickets)
    plan = schedule(spec, state, fencing_device_required=from_cib)
    after = state_from_plan(spec, plan, state)
    current = {k: v for k, v in plan.current.items()}
    if args.json:
        data = plan.as_json()
        data["events"] = {"fail": args.fail, "standby": args.standby, "op_fail": args.op_fail,
                          "tickets": tickets}
        print(json.dumps(data, indent=2))
        return 0
    roles_now = {s.resource: s.role for s in state.resources}
    lines = ["Current cluster status:", *render_status(spec, state, current, roles_now)]
    lines += ["", "Transition Summary:", *plan.summary]
    lines += ["", "Revised Cluster Status:", *render_status(spec, after, plan.placement, plan.roles)]
    print("\n".join(lines))
    return 0


def _explain(args: argparse.Namespace) -> int:
    spec, from_cib = read_cluster(args.file)
    if args.state:
        spec = spec.model_copy(update={"state": load_state(args.state)})
    state = initial_state(spec) if spec.state is not None else None
    plan = schedule(spec, state, explain=True, fencing_device_required=from_cib)
    if not resolve(spec, plan, args.resource):
        raise InputError([Problem(f"unknown resource {args.resource!r}", args.file, None,
                                  "resource")])
    if args.json:
        print(json.dumps(explain_json(spec, plan, args.resource), indent=2))
    else:
        print("\n".join(explain_lines(spec, plan, args.resource)))
    return 0
