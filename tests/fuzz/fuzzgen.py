"""Malformed inputs for every reader: the classes issue 9 names, plus byte-level mutations of seeds.

`cases(reader, rnd, secret_path, mutations)` gives the structured cases of a reader (one or a few
per input class, deterministic in `rnd`) followed by `mutations` byte-level mutations of its seeds.
Each case says which command line runs it (through hakeeper.cli.main), where that command writes,
and what the contract expects beyond "exit 0 or 2": an input it must refuse, a line that must never
reach a generated file.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fuzzrun import Case
from fuzzseeds import seeds

MB = 1024 * 1024


@dataclass(frozen=True)
class Reader:
    name: str
    kind: str  # the seed kind it reads
    suffix: str  # the input file's name ends so
    argv: tuple[str, ...]  # "{in}" is the input file; "{out}" the output (file or directory)
    out: str | None = None  # the default output, relative to the working directory
    out_is_dir: bool = False


CONTROLLERS = ("--controller", "controller01=10.0.0.11", "--controller", "controller02=10.0.0.12")

READERS: dict[str, Reader] = {r.name: r for r in (
    Reader("validate", "spec", ".yaml", ("validate", "{in}")),
    Reader("simulate", "spec", ".yaml", ("simulate", "{in}")),
    Reader("explain", "spec", ".yaml", ("explain", "{in}", "p_IP")),
    Reader("config-apply", "applyspec", ".yaml", ("config", "apply", "{in}", "--dry-run", "--store", "{store}")),
    Reader("simulate-cib", "cib", ".xml", ("simulate", "{in}")),
    Reader("import-crm", "crm", ".crm", ("import", "crm", "{in}", "-o", "{out}"), "out.yaml"),
    Reader("import-cib", "cib", ".xml", ("import", "cib", "{in}", "-o", "{out}"), "out.yaml"),
    Reader("import-chef-env", "chef", ".json", ("import", "chef-env", "{in}", *CONTROLLERS, "-o", "{out}"),
           "out.yaml"),
    Reader("render", "profile", ".yaml", ("openstack", "render", "{in}", "-o", "{out}"), "out", out_is_dir=True),
    Reader("vrrp-kaconf", "kaconf", ".conf", ("vrrp", "--check", "--keepalived-conf", "{in}")),
    Reader("vrrp-yaml", "vrrpyaml", ".yaml", ("vrrp", "--check", "--config", "{in}")),
)}

YAML_KINDS = ("spec", "applyspec", "profile", "vrrpyaml")


class Maker:
    """Builds the cases of one reader."""

    def __init__(self, reader: Reader, rnd: random.Random, secret_path: str) -> None:
        self.r = reader
        self.rnd = rnd
        self.secret_path = secret_path
        self.marker = f"INJECTED-{rnd.getrandbits(32):08x}"

    def case(self, klass: str, name: str, data: bytes, *, out: str | None = None,
             files: dict[str, bytes] | None = None, injected: str | None = None,
             must_refuse: bool = False, must_accept: bool = False, extra_paths: tuple[str, ...] = ()) -> Case:
        infile = f"in{self.r.suffix}"
        output = out if out is not None else (f"{{d}}/{self.r.out}" if self.r.out else None)
        argv = tuple(a.replace("{in}", f"{{d}}/{infile}").replace("{out}", output or "") for a in self.r.argv)
        return Case(self.r.name, klass, name, {infile: data, **(files or {})}, argv,
                    outputs=(output,) if output else (), injected=injected, must_refuse=must_refuse,
                    must_accept=must_accept, extra_paths=extra_paths)

    def seed(self) -> bytes:
        return self.rnd.choice(seeds(self.r.kind))

    def first_seed(self) -> bytes:
        return seeds(self.r.kind)[0]


# ----- classes every reader gets -----


def common(m: Maker) -> Iterator[Case]:
    # The seeds themselves: the runs that prove the readers (and this harness) accept good input.
    for i, good in enumerate(seeds(m.r.kind)):
        yield m.case("seed", f"seed {i} unchanged", good, must_accept=True)
    seed = m.first_seed()
    yield m.case("empty", "empty file", b"")
    yield m.case("empty", "only whitespace", b"\n \n\t\n")
    yield m.case("non-utf8", "latin-1 byte in a line", seed[: len(seed) // 2] + b"caf\xe9" + seed[len(seed) // 2:])
    yield m.case("non-utf8", "UTF-16 with BOM", seed.decode().encode("utf-16"))
    yield m.case("control-chars", "NUL and ESC bytes", seed.replace(b"\n", b"\x00\n", 3).replace(b" ", b"\x1b", 2))
    yield m.case("long-line", "1 MB line appended", seed + b"x" * MB + b"\n")
    yield m.case("long-line", "1 MB line without a newline, first", b"#" * MB + seed)
    # The operator hands over a file that is not theirs to quote: its content must not be echoed.
    with open(m.secret_path, "rb") as fh:
        yield m.case("secret-as-input", "a shadow-like file given as the input", fh.read())
    for i in range(2):
        yield m.case("mutation", f"seed mutation {i}", mutate(m.rnd, m.seed()))


def missing_input(m: Maker) -> Case:
    # The input path names a file that does not exist: the case writes nothing at that name.
    c = m.case("missing-input", "no such file", b"")
    return Case(c.reader, c.klass, c.name, {}, tuple(a.replace("/in", "/nonexistent/in") for a in c.argv),
                c.outputs, extra_paths=(f"{{d}}/nonexistent/in{m.r.suffix}",))


def outputs(m: Maker) -> Iterator[Case]:
    """`-o` where nothing can be written (parent missing, a regular file, /proc), or onto a directory."""
    if not m.r.out:
        return
    seed = m.first_seed()
    leaf = "out" if m.r.out_is_dir else "out.yaml"
    file_parent = {"afile": b"not a directory\n"}
    yield m.case("output", "-o below a regular file", seed, out=f"{{d}}/afile/{leaf}", files=file_parent)
    yield m.case("output", "-o under /proc (unwritable for anyone)", seed, out=f"/proc/hakeeper-fuzz/{leaf}")
    if m.r.out_is_dir:
        yield m.case("output", "-o is a regular file", seed, out="{d}/afile", files=file_parent)
    else:
        yield m.case("output", "-o in a missing directory", seed, out=f"{{d}}/missing/{leaf}")
        yield m.case("output", "-o is a directory", seed, out="{d}/adir", files={"adir/keep": b"x\n"})


# ----- YAML -----


def yaml_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()
    levels = m.rnd.randint(7, 9)
    bomb = ['zz-lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"zz-lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    yield m.case("alias-bomb", f"billion laughs, {levels} levels, ~1 KB", (seed + "\n".join(bomb) + "\n").encode())
    if m.r.name == "validate":  # one more shape, for one reader: a bomb costs 10 s until it is refused
        yield m.case("alias-bomb", "billion laughs as the whole document",
                     ("\n".join(bomb) + f"\nzz-top: *l{levels}\n").encode())
    yield m.case("recursive-alias", "a sequence that contains itself", (seed + "zz-loop: &loop [*loop]\n").encode())
    yield m.case("recursive-alias", "a mapping that contains itself", (seed + "zz-loop: &m {a: *m}\n").encode())
    yield m.case("merge-key", "<< merge key at the top", ("base: &b {x: 1}\n<<: *b\n" + seed).encode())
    yield m.case("merge-key", "<< merge key with a list", (seed + "zz-a: &a {x: 1}\nzz-m:\n  <<: [*a, *a]\n").encode())
    yield m.case("complex-key", "a sequence as a key", (seed + "? [a, b]\n: c\n").encode())
    yield m.case("complex-key", "a mapping as a key", (seed + "? {a: 1}\n: c\n").encode())
    yield m.case("complex-key", "a null key", (seed + "~: c\n").encode())
    yield m.case("deep-nesting", "10k nested flow sequences", ("zz: " + "[" * 10000 + "]" * 10000 + "\n").encode())
    yield m.case("deep-nesting", "10k nested flow mappings", ("zz: " + "{a: " * 10000 + "}" * 10000 + "\n").encode())
    yield m.case("deep-nesting", "2k nested block mappings",
                 "".join(f"{' ' * i}k{i}:\n" for i in range(2000)).encode())
    yield m.case("tags", "python object tag", b"!!python/object/apply:os.system ['true']\n")
    yield m.case("tags", "binary, set and timestamp values",
                 (seed + "zz-b: !!binary aGk=\nzz-s: !!set {a, b}\nzz-t: 2001-12-14t21:59:43.10-05:00\n").encode())
    yield m.case("not-a-mapping", "a list at the top", b"- a\n- b\n")
    yield m.case("not-a-mapping", "a scalar at the top", b"just words\n")
    yield m.case("size", "1 MB of list items", (seed + "zz-many:\n" + "  - x\n" * (MB // 6)).encode())


# ----- numbers, names and injection, per kind -----


def spec_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    yield m.case("huge-number", "clone-max 1e9", sub("clone-max: 2", "clone-max: 1000000000"), must_refuse=True)
    yield m.case("negative-count", "clone-max -5", sub("clone-max: 2", "clone-max: -5"), must_refuse=True)
    yield m.case("negative-count", "clone-node-max -1", sub("clone-node-max: 1", "clone-node-max: -1"),
                 must_refuse=True)
    yield m.case("huge-number", "clone-node-max 10**30", sub("clone-node-max: 1", "clone-node-max: " + "9" * 30),
                 must_refuse=True)
    yield m.case("nan-inf", "interval nan", sub("interval: 10s", "interval: .nan"), must_refuse=True)
    yield m.case("nan-inf", "timeout inf", sub("timeout: 20s", "timeout: .inf"), must_refuse=True)
    yield m.case("nan-inf", "timeout 'nan' as a string", sub("timeout: 20s", "timeout: nan"), must_refuse=True)
    yield m.case("negative-count", "negative timeout", sub("timeout: 20s", "timeout: -5s"), must_refuse=True)
    yield m.case("huge-number", "interval 1e300 seconds", sub("interval: 10s", "interval: 1e300"),
                 must_refuse=True)
    yield m.case("huge-number", "stickiness 10**400",
                 sub("resource-stickiness: 100", "resource-stickiness: 1" + "0" * 400))
    yield m.case("bad-name", "resource id ../../x", sub("id: p_web", 'id: "../../x"').replace(
        b"members: [p_web]", b'members: ["../../x"]'), must_refuse=True)
    yield m.case("bad-name", "resource id with a newline", sub("id: p_IP", 'id: "p_IP\\nx"'), must_refuse=True)
    yield m.case("bad-name", "resource id with NUL", sub("id: p_IP", 'id: "p\\0IP"'), must_refuse=True)
    yield m.case("bad-name", "node name ../n", sub("name: n3", 'name: "../n3"'), must_refuse=True)
    yield m.case("bad-name", "node name with a newline", sub("name: n3", 'name: "n3\\nn4"'), must_refuse=True)
    yield m.case("bad-name", "agent type with ..", sub("agent: process", 'agent: "ocf:heartbeat:../../../bin/sh"'),
                 must_refuse=True)
    yield m.case("bad-name", "agent provider with ..", sub("agent: vip", 'agent: "ocf:..:IPaddr2"'),
                 must_refuse=True)
    yield m.case("bad-name", "empty resource id", sub("id: p_IP", 'id: ""'), must_refuse=True)
    # A valid spec stays a valid spec whatever its comments and values mention.
    yield m.case("format-detection", "a YAML comment mentioning <cib",
                 ("# exported from a <cib> once\n" + seed).encode(), must_accept=True)
    yield m.case("format-detection", "'<cib' inside a parameter",
                 sub("nic: lo", 'nic: lo, note: "<cib>"'), must_accept=True)


def profile_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()
    inj = m.marker

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    # Each field below reaches haproxy.cfg or keepalived.conf; a line break must never add a line there.
    for field, old, new in (
        ("check-path", "check-path: /healthcheck", f'check-path: "/healthcheck\\n    {inj}"'),
        ("vrrp interface", "interface: eth0", f'interface: "eth0\\n{inj}"'),
        ("controller interface", "address: 10.0.0.11", f'address: 10.0.0.11\n    interface: "eth1\\n{inj}"'),
        ("haproxy timeout", "timeout-client: 1m", f'timeout-client: "1m\\n{inj}"'),
        ("haproxy stats socket", "timeout-client: 1m", f'stats-socket: "/run/x.sock\\n{inj}"'),
        ("haproxy pidfile", "timeout-client: 1m", f'pidfile: "/run/x.pid\\r\\n{inj}"'),
        ("vrrp auth-pass", "advert-int: 1", f'auth-pass: "a\\n{inj}"'),
        ("profile name", "name: fuzz", f'name: "fuzz\\n{inj}"'),
        ("service unit", "check-path: /healthcheck", f'unit: "nova\\n{inj}"'),
    ):
        yield m.case("injection", f"newline in {field}", sub(old, new), injected=inj, must_refuse=True)
    yield m.case("injection", "NUL in the check path", sub("check-path: /healthcheck", 'check-path: "/a\\0b"'),
                 must_refuse=True)
    yield m.case("nan-inf", "advert-int nan", sub("advert-int: 1", "advert-int: .nan"), must_refuse=True)
    yield m.case("nan-inf", "advert-int inf", sub("advert-int: 1", "advert-int: .inf"), must_refuse=True)
    yield m.case("huge-number", "service port 99999", sub("{check-path: /healthcheck}", "{port: 99999}"),
                 must_refuse=True)
    yield m.case("negative-count", "check-fall -1", sub("advert-int: 1", "advert-int: 1\n  check-fall: -1"),
                 must_refuse=True)
    yield m.case("huge-number", "vrid 300", sub("name: fuzz", "name: fuzz\nvrids: {10.0.0.22: 300}"),
                 must_refuse=True)
    yield m.case("huge-number", "maxconn 10**30", sub("timeout-client: 1m", "maxconn: 1" + "0" * 30))
    yield m.case("bad-name", "vip service name ../../x", sub("nova-api: 10.0.0.22", '"../../x": 10.0.0.22'),
                 must_refuse=True)


def vrrpyaml_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    yield m.case("nan-inf", "advert_int nan", sub("advert_int: 1", "advert_int: .nan"), must_refuse=True)
    yield m.case("nan-inf", "advert_int inf", sub("advert_int: 1", "advert_int: .inf"), must_refuse=True)
    yield m.case("negative-count", "advert_int -1", sub("advert_int: 1", "advert_int: -1"), must_refuse=True)
    yield m.case("huge-number", "vrid 1e9", sub("vrid: 200", "vrid: 1000000000"), must_refuse=True)
    yield m.case("negative-count", "priority -5", sub("priority: 150", "priority: -5"), must_refuse=True)
    yield m.case("control-chars", "interface with a newline", sub("interface: lo", 'interface: "lo\\nx"'),
                 must_refuse=True)


def crm_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    yield m.case("huge-number", "clone-max 1e9", sub('clone-max="2"', 'clone-max="1000000000"'), must_refuse=True)
    yield m.case("negative-count", "clone-max -5", sub('clone-max="2"', 'clone-max="-5"'), must_refuse=True)
    yield m.case("nan-inf", "interval nan", sub('interval="10s"', 'interval="nan"'), must_refuse=True)
    yield m.case("negative-count", "timeout -5s", sub('timeout="20s"', 'timeout="-5s"'), must_refuse=True)
    yield m.case("bad-name", "primitive id ../../x", sub("primitive p_web", "primitive ../../x").replace(
        b"cl_web p_web", b"cl_web ../../x"), must_refuse=True)
    yield m.case("bad-name", "agent type with ..", sub("systemd:nginx", "ocf:heartbeat:../../../bin/sh"),
                 must_refuse=True)
    yield m.case("long-line", "1 MB primitive line",
                 (seed + "primitive p_long ocf:heartbeat:Dummy params " + 'a="b" ' * (MB // 6) + "\n").encode())
    yield m.case("long-line", "1 MB of continuation lines",
                 (seed + "primitive p_cont ocf:heartbeat:Dummy \\\n" + '  params a="b" \\\n' * (MB // 18)
                  + "  op monitor interval=10s\n").encode())
    yield m.case("control-chars", "newline inside a quoted value", sub('ip="10.0.0.5"', 'ip="10.0.0.5\nnode evil"'))
    yield m.case("control-chars", "unterminated quote", sub('ip="10.0.0.5"', 'ip="10.0.0.5'))


def cib_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    yield m.case("huge-number", "clone-max 1e9", sub('value="2"', 'value="1000000000"'), must_refuse=True)
    yield m.case("negative-count", "clone-max -5", sub('value="2"', 'value="-5"'), must_refuse=True)
    yield m.case("nan-inf", "interval nan", sub('interval="10s"', 'interval="nan"'), must_refuse=True)
    yield m.case("bad-name", "primitive id ../../x", sub('id="p_IP"', 'id="../../x"').replace(
        b'rsc="p_IP"', b'rsc="../../x"'), must_refuse=True)
    yield m.case("bad-name", "agent type with ..", sub('type="IPaddr2"', 'type="../../../bin/sh"'), must_refuse=True)
    # A valid CIB stays a valid CIB with a long license comment before it (format detection).
    yield m.case("xml-comment", "100 KB license comment first",
                 ("<!--" + " license " * 12000 + "-->\n" + seed).encode(), must_accept=True)
    yield m.case("xml-comment", "1 MB comment inside",
                 sub("<configuration>", "<!--" + "c" * MB + "-->\n<configuration>"), must_accept=True)
    yield m.case("xml-entities", "billion laughs", (
        '<?xml version="1.0"?>\n<!DOCTYPE cib [\n<!ENTITY l0 "lol">\n'
        + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">\n' for i in range(1, 10))
        + "]>\n" + seed.replace('value="10.0.0.5"', 'value="&l9;"')).encode())
    yield m.case("xml-entities", "external entity naming the secret file", (
        f'<?xml version="1.0"?>\n<!DOCTYPE cib [<!ENTITY s SYSTEM "file://{m.secret_path}">]>\n'
        + seed.replace('value="10.0.0.5"', 'value="&s;"')).encode())
    yield m.case("xml-entities", "external DTD over the network", (
        '<?xml version="1.0"?>\n<!DOCTYPE cib SYSTEM "http://127.0.0.1:9/x.dtd">\n' + seed).encode())
    yield m.case("deep-nesting", "10k nested elements", sub("<status/>", "<status>" + "<a>" * 10000 + "</a>" * 10000
                                                          + "</status>"))
    yield m.case("not-a-cib", "XML of another kind", b"<html><body>hi</body></html>\n")
    yield m.case("not-a-cib", "YAML spec given as a CIB", seeds("spec")[0])


def chef_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    yield m.case("deep-nesting", "10k nested arrays", sub('"description": ""', '"description": ' + "[" * 10000
                                                          + "]" * 10000))
    yield m.case("deep-nesting", "10k nested objects", ('{"a": ' * 10000 + "1" + "}" * 10000).encode())
    yield m.case("nan-inf", "NaN and Infinity literals", sub('"description": ""', '"description": NaN, "x": Infinity'))
    yield m.case("huge-number", "a 10k-digit number", sub('"description": ""', '"description": ' + "9" * 10000))
    yield m.case("huge-number", "1e999", sub('"description": ""', '"description": 1e999'))
    yield m.case("control-chars", "newline escape in a vips key", sub('"nova-api"', '"nova-api\\ninjected"'))
    yield m.case("control-chars", "raw newline inside a string", sub('"grizzly"', '"griz\nzly"'))
    yield m.case("bad-name", "vip service ../../x", sub('"nova-api"', '"../../x"'), must_refuse=True)
    yield m.case("not-a-mapping", "a JSON array", b"[1, 2, 3]\n")
    yield m.case("not-a-mapping", "duplicate keys", sub('"description": ""', '"description": "", "description": ""'))
    c = m.case("bad-name", "controller name with a newline", m.first_seed(), must_refuse=True)
    yield Case(c.reader, c.klass, c.name, c.files,
               tuple(a.replace("controller02=", "controller02\nx=") for a in c.argv), c.outputs,
               must_refuse=True)


def kaconf_classes(m: Maker) -> Iterator[Case]:
    seed = m.first_seed().decode()

    def sub(old: str, new: str) -> bytes:
        assert old in seed, old
        return seed.replace(old, new, 1).encode()

    yield m.case("include-secret", "include of a shadow-like file", (f"include {m.secret_path}\n" + seed).encode(),
                 extra_paths=(m.secret_path,))
    yield m.case("include-secret", "include of a shadow-like file inside an instance",
                 sub("advert_int 1", f"advert_int 1\n    include {m.secret_path}"), extra_paths=(m.secret_path,))
    yield m.case("include-loop", "a file that includes itself", ("include {d}/in.conf\n" + seed).encode())
    yield m.case("include-loop", "include of a missing file", ("include /nonexistent/x.conf\n" + seed).encode(),
                 extra_paths=("/nonexistent/x.conf",))
    yield m.case("nan-inf", "advert_int nan", sub("advert_int 1", "advert_int nan"), must_refuse=True)
    yield m.case("nan-inf", "advert_int inf", sub("advert_int 1", "advert_int inf"), must_refuse=True)
    yield m.case("nan-inf", "advert_int 1e309", sub("advert_int 1", "advert_int 1e309"), must_refuse=True)
    yield m.case("negative-count", "advert_int -1", sub("advert_int 1", "advert_int -1"), must_refuse=True)
    yield m.case("negative-count", "virtual_router_id -5", sub("virtual_router_id 200", "virtual_router_id -5"),
                 must_refuse=True)
    yield m.case("huge-number", "priority 10**30", sub("priority 100", "priority " + "9" * 30), must_refuse=True)
    yield m.case("deep-nesting", "10k nested braces", (seed + "vrrp_script x " + "{ a " * 10000 + "}" * 10000
                                                       + "\n").encode())
    yield m.case("long-line", "a 1 MB word", sub("auth_pass Laevei0kifahkeejaiqu", "auth_pass " + "A" * MB))


KIND_CLASSES: dict[str, Callable[[Maker], Iterator[Case]]] = {
    "spec": spec_classes, "applyspec": spec_classes, "profile": profile_classes, "vrrpyaml": vrrpyaml_classes,
    "crm": crm_classes, "cib": cib_classes, "chef": chef_classes, "kaconf": kaconf_classes,
}


def mutate(rnd: random.Random, data: bytes) -> bytes:
    """One to three byte-level edits: truncate, flip, insert, duplicate, delete or swap lines."""
    interesting = [b"\x00", b"\xff", b"{", b"}", b"[", b"]", b"<", b">", b"&", b"*a", b"&a ", b":", b": ",
                   b"- ", b"'", b'"', b"\\", b"\n", b"\t", b"#", b"!!", b"<<: ", b"? ", b"include ", b"-1",
                   b"1e9", b"nan", b"../", b"\r"]
    out = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(6)
        pos = rnd.randrange(len(out) + 1)
        if op == 0 and out:
            del out[pos:]
        elif op == 1 and out:
            i = min(pos, len(out) - 1)
            out[i] ^= 1 << rnd.randrange(8)
        elif op == 2:
            out[pos:pos] = rnd.choice(interesting)
        else:
            lines = bytes(out).split(b"\n")
            i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            if op == 3:
                lines.insert(i, lines[j])
            elif op == 4 and len(lines) > 1:
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\n".join(lines))
    return bytes(out)


def cases(reader: str, rnd: random.Random, secret_path: str, mutations: int) -> list[Case]:
    """Every structured case of `reader`, then `mutations` mutated seeds."""
    r = READERS[reader]
    m = Maker(r, rnd, secret_path)
    out = [*common(m), missing_input(m), *outputs(m)]
    if r.kind in YAML_KINDS:
        out += yaml_classes(m)
    out += KIND_CLASSES[r.kind](m)
    out += (m.case("mutation", f"mutation {i}", mutate(rnd, m.seed())) for i in range(mutations))
    return out
