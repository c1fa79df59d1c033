"""The status section read as a stream of parser events, never as a tree.

A large cluster's status holds millions of operation records. Building them into a tree (and
freeing it again) cost more than everything else the import does, so the second pass over the
file hands libxml2's start/end events straight to the `StatusReader`: attribute dicts in, no
elements. Only the status section's own structure is followed (cib/status/node_state/...); the
configuration was read, with line numbers, by the first pass.
"""

from __future__ import annotations

from hakeeper.importers.cib_status import Attrs, StatusReader


class StatusTarget:
    """An lxml parser target (`XMLParser(target=...)`): `start`, `end` and `close` per element.

    Called for every element of the file (about two per operation record), so the hot path, an
    element inside a history, touches only a counter and a list.
    """

    def __init__(self, reader: StatusReader) -> None:
        self.reader = reader
        self.depth = 0
        self.path: list[str] = []  # tags down to the current element, outside histories
        self.in_status = False
        self.in_transient = False
        self.rsc: Attrs | None = None  # the <lrm_resource> being read
        self.rsc_depth = 0
        self.ops: list[Attrs] = []
        # Some histories matter even when trivial (migrations span nodes; guest connections).
        self.keep_trivial = bool(reader.remote_nodes or reader.migratable_ids)

    def start(self, tag: str, attrib: Attrs) -> None:
        self.depth = depth = self.depth + 1
        if self.rsc is not None:
            if depth == self.rsc_depth + 1 and tag == "lrm_rsc_op":
                self.ops.append(attrib)
            return
        path = self.path
        path.append(tag)
        if not self.in_status:
            if tag == "status" and depth == 2 and path[0] == "cib":
                self.in_status = True
        elif tag == "lrm_resource":
            if depth == 6 and path[3] == "lrm" and path[4] == "lrm_resources":
                self.rsc, self.rsc_depth, self.ops = attrib, depth, []
        elif tag == "node_state":
            if depth == 3:
                self.reader.node_state(attrib)
        elif tag == "ticket_state":
            if depth == 4 and path[2] == "tickets":
                self.reader.ticket_state(attrib)
        elif tag == "transient_attributes":
            self.in_transient = depth == 4
        elif tag == "nvpair" and self.in_transient:
            self.reader.transient_attribute(attrib)

    def end(self, tag: str) -> None:
        depth = self.depth
        self.depth = depth - 1
        rsc = self.rsc
        if rsc is not None:
            if depth != self.rsc_depth:
                return
            self.rsc = None
            self.path.pop()
            ops = self.ops
            if len(ops) == 1 and not self.keep_trivial:
                # A probe that found it stopped (is_trivial, inlined: this runs per history).
                get = ops[0].get
                if (get("rc-code") == "7" and get("operation") == "monitor" and get("op-status") == "0"
                        and get("interval", "0") == "0"):
                    return
            self.reader.lrm_resource(rsc, ops)
            return
        self.path.pop()
        if depth == 4 and tag == "transient_attributes":
            self.in_transient = False
        elif depth == 2 and tag == "status":
            self.in_status = False

    def close(self) -> None:
        return None
