"""Read keepalived.conf (its VRRP part) into `config.Config`.

keepalived's syntax: whitespace-separated words, `{ }` blocks, `#` and `!` comments, double quotes
around words with spaces, `include GLOB` anywhere. We read it in two steps: words into a tree of
`Node(keyword, args, children)`, then the tree into the config.

Nothing is silently ignored. A keyword we implement is applied. A keyword keepalived knows that
changes no VRRP behaviour (mail, SNMP, LVS...) becomes a warning with its line. A keyword that would
change VRRP behaviour and that we do not implement is an error with its line, as is a keyword
keepalived does not know either (a typo).

Errors never quote what an included file says unless its line is evidently a keepalived statement.
`include` takes any path or glob, so `include /etc/shadow` (a mistake, or a trick to have the
error message show a file one may not read) must not put that file's text on stderr. A word from
an included file is quoted only when its line starts with a keyword keepalived knows (`KNOWN`):
such a line is a keepalived statement, and its values are configuration. Anything else from an
included file (an unknown first word, an entry inside a block such as an address or a script
name) is described by file, line and column, never quoted. The main file is the operator's own,
given on the command line: its words are quoted as they help to find a typo. Passwords
(`auth_pass`) are never quoted.

Every number is checked to be finite and within what keepalived accepts, and blocks may nest at
most `MAX_BLOCK_DEPTH` deep (keepalived's own go three deep).
"""

from __future__ import annotations

import glob
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field

from hakeeper.errors import InputError, Problem, read_input_text
from hakeeper.vrrp.config import Config, Garp, Group, Instance, Script, Track, Vip, check
from hakeeper.vrrp.packet import AUTH_PASS, V2_AUTH_LEN

MAX_BLOCK_DEPTH = 16
MAX_INCLUDE_DEPTH = 8


@dataclass
class Word:
    text: str
    file: str
    line: int
    column: int = 1
    trusted: bool = True  # from the main file, not an included one


@dataclass
class Node:
    keyword: str
    args: list[str]
    file: str
    line: int
    children: list[Node] | None = None
    items: list[list[str]] = field(default_factory=list)  # raw lines of a block, for lists
    columns: list[int] = field(default_factory=list)  # of the keyword, then of each argument
    trusted: bool = True  # the line is in the main file

    @classmethod
    def of(cls, words: list[Word]) -> Node:
        first = words[0]
        return cls(first.text, [w.text for w in words[1:]], first.file, first.line,
                   columns=[w.column for w in words], trusted=first.trusted)

    @property
    def quotable(self) -> bool:
        """Whether this line's words may appear in a message (see the module's docstring)."""
        return self.trusted or self.keyword in KNOWN

    def show(self, index: int = 0) -> str:
        """Word `index` (0: the keyword, then the arguments) for a message: quoted, or its column."""
        text = self.keyword if index == 0 else self.args[index - 1]
        if self.quotable:
            return repr(text)
        column = self.columns[index] if index < len(self.columns) else 1
        return f"the word at column {column} (not quoted: it comes from an included file)"


def _words(path: str, depth: int = 0) -> list[Word]:
    if depth > MAX_INCLUDE_DEPTH:
        raise InputError.at("include nested too deeply", file=path)
    text = read_input_text(path)
    out: list[Word] = []
    for n, raw in enumerate(text.splitlines(), 1):
        located = _split_line(raw, path, n)
        line_words = [w for w, _ in located]
        if line_words and line_words[0] == "include":
            if len(line_words) != 2:
                raise InputError.at("include takes one file or glob", file=path, line=n, field="include")
            pattern = line_words[1]
            if not os.path.isabs(pattern):
                pattern = os.path.join(os.path.dirname(os.path.abspath(path)), pattern)
            found = sorted(glob.glob(pattern))
            if not found and not glob.has_magic(pattern):
                raise InputError.at(f"no such file {line_words[1]!r}", file=path, line=n, field="include")
            for inc in found:
                out.extend(_words(inc, depth + 1))
            continue
        out.extend(Word(w, path, n, col, depth == 0) for w, col in located)
        out.append(Word("\n", path, n, len(raw) + 1, depth == 0))
    return out


def _split_line(raw: str, path: str, n: int) -> list[tuple[str, int]]:
    """The words of one line, each with its column (1-based)."""
    words: list[tuple[str, int]] = []
    i, cur, start, quoted = 0, "", 0, False
    while i < len(raw):
        c = raw[i]
        if quoted:
            if c == '"':
                quoted = False
                words.append((cur, start + 1))
                cur = ""
            else:
                cur += c
        elif c == '"':
            quoted, start = True, i
        elif c in "#!":
            break
        elif c in "{}":
            if cur:
                words.append((cur, start + 1))
                cur = ""
            words.append((c, i + 1))
        elif c.isspace():
            if cur:
                words.append((cur, start + 1))
                cur = ""
        else:
            if not cur:
                start = i
            cur += c
        i += 1
    if quoted:
        raise InputError.at("unterminated quote", file=path, line=n)
    if cur:
        words.append((cur, start + 1))
    return words


def _tree(words: list[Word], pos: int, close: Word | None, depth: int = 0) -> tuple[list[Node], int]:
    """Parse statements until the matching `}` (or the end); returns nodes and the next index."""
    if depth > MAX_BLOCK_DEPTH and close is not None:
        raise InputError.at(f"blocks nested more than {MAX_BLOCK_DEPTH} deep", file=close.file,
                            line=close.line)
    nodes: list[Node] = []
    cur: list[Word] = []
    while pos < len(words):
        w = words[pos]
        pos += 1
        if w.text == "{":
            if not cur:
                raise InputError.at("'{' without a keyword", file=w.file, line=w.line)
            node = Node.of(cur)
            node.children, pos = _tree(words, pos, w, depth + 1)
            nodes.append(node)
            cur = []
        elif w.text == "}":
            if close is None:
                raise InputError.at("'}' without a matching '{'", file=w.file, line=w.line)
            if cur:
                nodes.append(Node.of(cur))
            return nodes, pos
        elif w.text == "\n":
            if cur:
                nodes.append(Node.of(cur))
            cur = []
        else:
            cur.append(w)
    if close is not None:
        raise InputError.at("'{' is never closed", file=close.file, line=close.line)
    if cur:
        nodes.append(Node.of(cur))
    return nodes, pos


# keepalived keywords that do not change what VRRP does on the wire or to addresses: warned about.
HARMLESS = {
    "notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout",
    "smtp_helo_name", "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "router_id",
    "enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2",
    "enable_snmp_rfcv3", "enable_snmp_keepalived", "enable_traps", "snmp_socket",
    "lvs_sync_daemon", "lvs_sync_daemon_interface", "lvs_flush", "lvs_timeouts", "dynamic_interfaces",
    "script_user", "enable_script_security", "max_auto_priority", "process_names", "process_name",
    "vrrp_process_name", "checker_process_name", "bfd_process_name", "vrrp_no_swap", "checker_no_swap",
    "vrrp_priority", "checker_priority", "vrrp_rt_priority", "checker_rt_priority", "vrrp_cpu_affinity",
    "vrrp_rlimit_rttime", "checker_rlimit_rttime", "vrrp_skip_check_adv_addr", "debug",
    "vrrp_notify_fifo", "vrrp_notify_fifo_script", "notify_fifo", "notify_fifo_script",
    "vrrp_check_unicast_src", "vrrp_startup_delay", "instance", "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
    "kernel_rx_buf_size", "user", "accept", "uid_gid", "no_checker_emails", "lvs_id",
}
# keepalived's checker (LVS) process: no VRRP behaviour, but worth a louder warning.
CHECKER = {"virtual_server", "virtual_server_group", "real_server"}
# keepalived keywords that would change VRRP behaviour and that hakeeper does not implement: errors.
UNSUPPORTED = {
    "vrrp_strict", "strict_mode", "use_vmac", "vmac_xmit_base", "native_ipv6", "no_accept",
    "vrrp_mcast_group4", "vrrp_mcast_group6", "virtual_routes", "virtual_rules", "track_file",
    "track_process", "track_bfd", "vrrp_track_file", "vrrp_track_process", "unicast_ttl",
    "check_unicast_src", "garp_lower_prio_delay", "garp_lower_prio_repeat", "lower_prio_no_advert",
    "higher_prio_send_advert", "vrrp_garp_interval", "vrrp_gna_interval", "garp_interval",
    "gna_interval", "vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert", "net_namespace",
    "linkbeat_use_polling", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat",
    "notify_master_rx_lower_pri", "track_src_ip", "vrrp_ipsets",
    "static_ipaddress", "static_routes", "static_rules", "vrrp_iptables",
    "bfd_instance", "vrrp_track_bfd", "vrrp_garp_master_refresh_repeat_interval", "unicast_fault_no_peer",
    "old_unicast_checksum", "unicast_checksum_compat", "vrrp_min_garp", "version_auth_v3",
    "vrrp_dont_track_primary_noop",
}
# The keywords the reader below applies.
APPLIED = {
    "include", "global_defs", "vrrp_instance", "vrrp_script", "vrrp_sync_group", "vrrp_version",
    "vrrp_garp_master_delay", "vrrp_garp_master_refresh", "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh_repeat", "script", "interval", "timeout", "weight", "rise", "fall",
    "init_fail", "group", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify",
    "state", "interface", "virtual_router_id", "priority", "advert_int", "version", "authentication",
    "virtual_ipaddress", "virtual_ipaddress_excluded", "track_script", "track_interface",
    "unicast_peer", "unicast_src_ip", "mcast_src_ip", "nopreempt", "dont_track_primary", "preempt",
    "preempt_delay", "garp_master_delay", "garp_master_refresh", "garp_master_repeat",
    "garp_master_refresh_repeat", "auth_type", "auth_pass",
}
# Every keyword keepalived knows: a line starting with one is a keepalived statement.
KNOWN = APPLIED | HARMLESS | CHECKER | UNSUPPORTED

# What keepalived accepts for each number (seconds, counts), so nothing out of range (nor nan,
# nor inf) reaches the speaker. A day is more than any sane delay or interval. The instance's
# virtual_router_id, priority, version and advert_int are checked by config.check, which knows the
# VRRP version (and checks hakeeper's YAML form the same way); here they need only be finite.
DAY = 86400.0
BOUNDS: dict[str, tuple[float, float]] = {
    "vrrp_version": (2, 3), "preempt_delay": (0, 1000),
    "interval": (0.001, DAY), "timeout": (0.001, DAY), "weight": (-254, 254),
    "rise": (1, 1_000_000), "fall": (1, 1_000_000),
    "garp_master_delay": (0, DAY), "garp_master_refresh": (0, DAY),
    "garp_master_repeat": (1, 10_000), "garp_master_refresh_repeat": (1, 10_000),
}
# A name keepalived would take for a script, an instance or an interface.
_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


class Reader:
    def __init__(self) -> None:
        self.cfg = Config()
        self.problems: list[Problem] = []
        self.garp = Garp()
        self.version = 2

    def warn(self, node: Node, msg: str, where: str | None = None) -> None:
        self.cfg.warnings.append(Problem(msg, node.file, node.line, where or node.keyword))

    def error(self, node: Node, msg: str, where: str | None = None) -> None:
        self.problems.append(Problem(msg, node.file, node.line, where or node.keyword))

    def other(self, node: Node, ctx: str) -> None:
        """A keyword this block does not implement: warning, error or typo."""
        if not node.quotable:
            self.error(node, f"unknown keyword: {node.show()}; is the included file a keepalived "
                       "configuration?", ctx)
        elif node.keyword in CHECKER:
            self.warn(node, "ignored: load balancing and health checks are not part of hakeeper vrrp "
                      "(keepalived's checker process)", f"{ctx}.{node.keyword}")
        elif node.keyword in HARMLESS:
            self.warn(node, "ignored: it changes no VRRP behaviour", f"{ctx}.{node.keyword}")
        elif node.keyword in UNSUPPORTED:
            self.error(node, "not supported by hakeeper (it would change VRRP behaviour)",
                       f"{ctx}.{node.keyword}")
        else:
            self.error(node, "unknown keyword (keepalived does not know it either)", f"{ctx}.{node.keyword}")

    def arg(self, node: Node, n: int = 1) -> str | None:
        if len(node.args) < n:
            self.error(node, "needs a value")
            return None
        if len(node.args) > n:
            self.error(node, f"takes {n} value{'s' if n > 1 else ''}, got {len(node.args)}")
        return node.args[n - 1]

    def num(self, node: Node, kind: type[int] | type[float] = int) -> float | None:
        """The node's one value as a number within `BOUNDS` for its keyword; None (and an error) if
        it is not one, is not finite or is out of range."""
        v = self.arg(node)
        if v is None:
            return None
        try:
            value = kind(v)
        except ValueError:  # also an integer too long to convert
            self.error(node, f"{node.show(1)} is not a {'whole ' if kind is int else ''}number")
            return None
        if not math.isfinite(value):
            self.error(node, f"{node.show(1)} is not a finite number")
            return None
        bounds = BOUNDS.get(node.keyword) or BOUNDS.get(node.keyword.removeprefix("vrrp_"))
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            self.error(node, f"{_plain(value)} is outside {_plain(bounds[0])}..{_plain(bounds[1])}")
            return None
        return value

    def number(self, node: Node, default: float, kind: type[int] | type[float] = int) -> float:
        """`num`, or `default` when the value is refused (the error is already recorded)."""
        value = self.num(node, kind)
        return default if value is None else value

    def read(self, nodes: list[Node]) -> Config:
        # global_defs first: vrrp_version and garp defaults apply to every instance.
        for node in nodes:
            if node.keyword == "global_defs":
                self.global_defs(node)
        for node in nodes:
            kw = node.keyword
            if kw == "global_defs":
                continue
            if kw == "vrrp_instance":
                self.instance(node)
            elif kw == "vrrp_script":
                self.script(node)
            elif kw == "vrrp_sync_group":
                self.group(node)
            else:
                self.other(node, "top")
        if self.problems:
            raise InputError(self.problems)
        return self.cfg

    def global_defs(self, block: Node) -> None:
        for node in block.children or []:
            kw = node.keyword
            if kw == "vrrp_version":
                self.version = int(self.number(node, 2))
            elif kw in ("vrrp_garp_master_delay", "vrrp_garp_master_refresh"):
                setattr(self.garp, kw[10:], float(self.number(node, 0, float)))
            elif kw in ("vrrp_garp_master_repeat", "vrrp_garp_master_refresh_repeat"):
                setattr(self.garp, kw[10:], int(self.number(node, 1)))
            else:
                self.other(node, "global_defs")

    def script(self, block: Node) -> None:
        name = block.args[0] if block.args else ""
        s = Script(name, "", where=(block.file, block.line))
        for node in block.children or []:
            kw = node.keyword
            if kw == "script":
                s.script = " ".join(node.args)
            elif kw in ("interval", "timeout"):
                setattr(s, kw, float(self.number(node, 1, float)))
            elif kw in ("weight", "rise", "fall"):
                if kw == "weight" and len(node.args) == 2 and node.args[1] == "reverse":
                    self.error(node, "weight ... reverse is not supported")
                    continue
                setattr(s, kw, int(self.number(node, 0 if kw == "weight" else 1)))
            elif kw == "init_fail":
                s.init_fail = True
            else:
                self.other(node, f"vrrp_script {name}")
        if not s.script:
            self.error(block, "vrrp_script without a script")
        if not -254 <= s.weight <= 254:
            self.error(block, f"weight {s.weight} is outside -254..254", f"{name}.weight")
        self.cfg.scripts[name] = s

    def group(self, block: Node) -> None:
        g = Group(block.args[0] if block.args else "", [], where=(block.file, block.line))
        for node in block.children or []:
            if node.keyword == "group":
                for child in node.children or []:
                    for i, member in enumerate([child.keyword, *child.args]):
                        if not child.quotable and not _NAME.fullmatch(member):
                            self.error(child, f"{child.show(i)} is not a name",
                                       f"vrrp_sync_group {g.name}.group")
                            continue
                        g.members.append(member)
                        if not child.quotable:
                            g.unquoted.add(member)
            elif node.keyword in ("notify_master", "notify_backup", "notify_fault", "notify"):
                setattr(g, node.keyword, " ".join(node.args))
            else:
                self.other(node, f"vrrp_sync_group {g.name}")
        self.cfg.groups.append(g)

    def instance(self, block: Node) -> None:
        name = block.args[0] if block.args else ""
        inst = Instance(name, "", 0, version=self.version, where=(block.file, block.line))
        inst.garp = Garp(**vars(self.garp))
        for node in block.children or []:
            inst.lines.setdefault(node.keyword, node.line)
            self.instance_keyword(inst, node)
        if not inst.interface:
            self.error(block, "vrrp_instance without an interface", f"{name}.interface")
        self.cfg.instances.append(inst)

    def instance_keyword(self, inst: Instance, node: Node) -> None:
        kw, ctx = node.keyword, f"{inst.name}.{node.keyword}"
        if kw == "state":
            inst.state = (self.arg(node) or "BACKUP").upper()
        elif kw == "interface":
            inst.interface = self.arg(node) or ""
        elif kw in ("virtual_router_id", "priority"):
            # Out of range: the error is recorded, and 1 keeps check() from a second message.
            val = int(self.number(node, 1))
            setattr(inst, "vrid" if kw == "virtual_router_id" else kw, val)
        elif kw == "advert_int":
            inst.advert_int = float(self.number(node, 1.0, float))
        elif kw == "version":
            inst.version = int(self.number(node, 2))
        elif kw == "authentication":
            self.auth(inst, node)
        elif kw in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            target = inst.vips if kw == "virtual_ipaddress" else inst.excluded_vips
            for item in node.children or []:
                vip = self.vip(item, ctx)
                if vip:
                    target.append(vip)
        elif kw in ("track_script", "track_interface"):
            for item in node.children or []:
                if not item.quotable and not _NAME.fullmatch(item.keyword):
                    self.error(item, f"{item.show()} is not a name", ctx)
                    continue
                t = Track(item.keyword, quoted=item.quotable)
                if item.args[:1] == ["weight"] and len(item.args) == 2:
                    try:
                        t.weight = int(item.args[1])
                    except ValueError:
                        self.error(item, f"weight {item.show(2)} is not a whole number", ctx)
                    else:
                        if not -254 <= t.weight <= 254:
                            self.error(item, f"weight {t.weight} is outside -254..254", ctx)
                elif item.args:
                    self.error(item, f"unexpected {item.show(1)}", ctx)
                (inst.track_scripts if kw == "track_script" else inst.track_interfaces).append(t)
        elif kw == "unicast_peer":
            for item in node.children or []:
                if item.args:
                    self.error(item, f"peer options ({item.show(1)}...) are not supported", ctx)
                if not item.quotable and not _is_ip(item.keyword):
                    self.error(item, f"{item.show()} is not an IP address", ctx)
                    continue
                inst.unicast_peers.append(item.keyword)
        elif kw in ("unicast_src_ip", "mcast_src_ip"):
            setattr(inst, kw, self.arg(node))
        elif kw in ("nopreempt", "dont_track_primary"):
            setattr(inst, kw, True)
        elif kw == "preempt":
            inst.nopreempt = False
        elif kw == "preempt_delay":
            inst.preempt_delay = float(self.number(node, 0, float))
        elif kw in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
            setattr(inst, kw, " ".join(node.args))
        elif kw in ("garp_master_delay", "garp_master_refresh"):
            setattr(inst.garp, kw[5:], float(self.number(node, 0, float)))
        elif kw in ("garp_master_repeat", "garp_master_refresh_repeat"):
            setattr(inst.garp, kw[5:], int(self.number(node, 1)))
        else:
            self.other(node, inst.name)

    def auth(self, inst: Instance, block: Node) -> None:
        for node in block.children or []:
            if node.keyword == "auth_type":
                kind = (self.arg(node) or "").upper()
                if kind == "PASS":
                    inst.auth_type = AUTH_PASS
                elif kind == "AH":
                    self.error(node, "auth_type AH is not supported (keepalived deprecates it too)")
                else:
                    self.error(node, f"auth_type {node.show(1)}: PASS or AH")
            elif node.keyword == "auth_pass":
                pw = (self.arg(node) or "").encode()
                if len(pw) > V2_AUTH_LEN:
                    # What keepalived does too: VRRPv2 has room for 8 bytes.
                    # Never quoted, not even its first 8 characters: it is a password.
                    self.warn(node, f"auth_pass is {len(pw)} characters; VRRPv2 carries only the "
                              "first 8", f"{inst.name}.auth_pass")
                inst.auth_pass = pw[:V2_AUTH_LEN].ljust(V2_AUTH_LEN, b"\0")
            else:
                self.other(node, f"{inst.name}.authentication")
        if inst.auth_type == AUTH_PASS and not inst.auth_pass:
            self.error(block, "auth_type PASS without auth_pass", f"{inst.name}.authentication")

    def vip(self, item: Node, ctx: str) -> Vip | None:
        try:
            vip = Vip(ipaddress.ip_interface(item.keyword))
        except ValueError:
            self.error(item, f"{item.show()} is not an address[/prefix]", ctx)
            return None
        args = list(enumerate(item.args, 1))
        while args:
            index, opt = args.pop(0)
            if opt in ("dev", "label", "brd", "scope") and args:
                value = args.pop(0)[1]
                if not item.quotable and not _NAME.fullmatch(value):
                    self.error(item, f"{opt}: {item.show(index + 1)} is not a name", ctx)
                    return None
                setattr(vip, opt, value)
            else:
                self.error(item, f"address option {item.show(index)} is not supported", ctx)
                return None
        return vip


def _plain(number: float) -> str:
    """A number as written: 1000000 and 0.5, not 1e+06."""
    return str(int(number)) if number == int(number) else repr(number)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def read_keepalived(path: str) -> Config:
    """Read and check a keepalived.conf. Raises InputError naming file and line."""
    words = _words(path)
    nodes, _ = _tree(words, 0, None)
    cfg = Reader().read(nodes)
    cfg.files.append(path)
    check(cfg)
    return cfg
