"""Commands of the OpenStack part.

    hakeeper openstack render PROFILE -o DIR     haproxy.cfg, keepalived-<controller>.conf, cluster.yaml
                                                 (and oslo-messaging.conf with a messaging section)
    hakeeper import chef-env ENV.json --controller NAME=ADDRESS ... [-o PROFILE]
    hakeeper demo [--no-live] [--quick] [--rounds N]   a live failover in network namespaces
    hakeeper demo galera                              real Galera: a kill, a full outage, nothing lost
    hakeeper demo rabbitmq                            real RabbitMQ: the same, with confirmed messages
    hakeeper demo instances                           real Nova: a compute killed, fenced, evacuated
    hakeeper demo routers                             L3 HA: router80's active network node killed
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hakeeper.errors import InputError


def _write_all(out: Path, files: dict[str, str], private: frozenset[str] = frozenset()) -> None:
    """Write every file or none: render into a temporary directory inside `out`, then move the files in.

    `out` itself is created if it is missing, but not its parents: a mistyped path is an error, not
    a tree of new directories. Every failure to write is an InputError naming `out` and -o (exit
    status 2), and leaves nothing behind: the temporary directory goes, and so does `out` if this
    call created it."""
    if out.exists() and not out.is_dir():
        raise InputError.at("not a directory", file=str(out), field="--output")
    in_the_way = [name for name in files if (out / name).is_dir()]
    if in_the_way:
        raise InputError.at(f"{in_the_way[0]} is a directory there; nothing was written",
                            file=str(out), field="--output")
    created = False
    try:
        if not out.is_dir():
            out.mkdir()
            created = True
        with tempfile.TemporaryDirectory(dir=out, prefix=".render-") as tmp:
            for name, text in files.items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
                if name in private:  # it holds a secret: readable by its owner only, from the start
                    (Path(tmp) / name).chmod(0o600)
            for name in files:
                os.replace(Path(tmp) / name, out / name)
    except OSError as exc:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only ever empty here: nothing was moved in
        if not created and not out.is_dir() and exc.errno == errno.ENOENT:
            message = f"cannot write: the directory {out.parent} does not exist"
        else:
            message = f"cannot write in {out}: {exc.strerror or exc}"
        raise InputError.at(message, file=str(out), field="--output") from None


def _render(args: argparse.Namespace) -> int:
    from hakeeper.openstack.messaging import render_oslo_messaging
    from hakeeper.openstack.profile import load_profile
    from hakeeper.openstack.render import render_haproxy, render_keepalived, render_spec
    from hakeeper.spec.loader import dump_spec

    resolved = load_profile(args.profile)
    files = {"haproxy.cfg": render_haproxy(resolved), "cluster.yaml": dump_spec(render_spec(resolved))}
    oslo = render_oslo_messaging(resolved)
    if oslo is not None:  # transport_url and the rabbit options every service includes
        files["oslo-messaging.conf"] = oslo
    if resolved.profile.vip_mode == "vrrp":
        for c in resolved.profile.controllers:
            files[f"keepalived-{c.name}.conf"] = render_keepalived(resolved, c.name)
    if args.check:
        import shutil

        from hakeeper.openstack.haproxy import HaproxyConfigError, check_text

        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.path.exists(binary):
            print("hakeeper openstack render --check: haproxy is not installed", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory(prefix="hakeeper-check-") as tmp:
            try:
                check_text(files["haproxy.cfg"], tmp, binary)
            except HaproxyConfigError as exc:
                print(f"{args.profile}: {exc}", file=sys.stderr)
                return 1
    _write_all(Path(args.output), files, private=frozenset({"oslo-messaging.conf"}))
    for name in files:
        print(Path(args.output) / name)
    return 0


def _controller_arg(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDRESS, not {text!r}")
    return name, address


def _import_chef_env(args: argparse.Namespace) -> int:
    from hakeeper.openstack.chefenv import import_environment

    text = import_environment(args.file, args.controller or [], vip_mode=args.vip_mode)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        from hakeeper.importers.commands import write_atomically

        write_atomically(Path(args.output), text)  # a reader never sees half a profile
        print(f"{args.output}: profile written; render it with: hakeeper openstack render {args.output} -o DIR")
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.what == "galera":
        from hakeeper.galera.demo import run_demo as run_galera_demo

        return run_galera_demo(workdir=args.workdir)
    if args.what == "rabbitmq":
        from hakeeper.rabbitmq.demo import run_demo as run_rabbitmq_demo

        return run_rabbitmq_demo(workdir=args.workdir)
    if args.what == "instances":
        from hakeeper.instanceha.demo import run_demo as run_instances_demo

        return run_instances_demo(workdir=args.workdir)
    if args.what == "routers":
        from hakeeper.l3.demo import run_demo as run_routers_demo

        return run_routers_demo(workdir=args.workdir, quick=args.quick)
    from hakeeper.openstack.demo import run_demo

    live = not args.no_live and sys.stdout.isatty()
    return run_demo(live=live, quick=args.quick, rounds=args.rounds, workdir=args.workdir, speaker=args.speaker)


def register(subparsers: Any) -> None:
    os_parser = subparsers.add_parser("openstack", help="OpenStack controller HA: render a profile")
    os_sub = os_parser.add_subparsers(dest="openstack_command", metavar="COMMAND", required=True)
    p = os_sub.add_parser("render", help="write haproxy.cfg, keepalived.conf per controller, cluster.yaml")
    p.add_argument("profile")
    p.add_argument("-o", "--output", required=True, help="directory to write into")
    p.add_argument("--check", action="store_true", help="have `haproxy -c` check haproxy.cfg before writing")
    p.set_defaults(handler=_render)

    _register_import(subparsers)

    d = subparsers.add_parser("demo", help="a live controller failover in network namespaces (root)")
    d.add_argument("what", nargs="?", choices=("controllers", "galera", "rabbitmq", "instances", "routers"),
                   default="controllers",
                   help="controllers (default): VIPs and haproxy fail over; galera: three real MariaDB "
                        "Galera nodes, a writer through the VIP, a database killed, then a full outage; "
                        "rabbitmq: three real brokers, a quorum queue's leader killed, then every broker; "
                        "instances: real Nova, a compute host killed, its instances evacuated after the fence; "
                        "routers: seed 004's router80 on two network nodes, the active one killed")
    d.add_argument("--no-live", action="store_true", help="plain line output, no live terminal view")
    d.add_argument("--quick", action="store_true", help="shorter phases (for CI)")
    d.add_argument("--rounds", type=int, default=1, help="failovers to run; the summary gives the median")
    d.add_argument("--workdir", help="keep configuration and logs here (default: a temporary directory)")
    d.add_argument("--speaker", choices=("auto", "hakeeper", "keepalived"), default="auto",
                   help="who speaks VRRP: hakeeper's own speaker (auto: when built in) or keepalived")
    d.set_defaults(handler=_demo)


CHEF_HELP = ("chef-env: a Chef environment (the rcbops `vips` map) → OpenStack profile; the environment "
             "does not list the controllers: give each with --controller NAME=ADDRESS, in priority order")


def _register_import(subparsers: Any) -> None:
    """`hakeeper import chef-env FILE --controller NAME=ADDRESS ... [-o OUT]`.

    The importers part owns `hakeeper import KIND FILE [-o OUT]` (crm, cib); chef-env joins it as
    one more KIND, with its own options, and is dispatched here. If that part is absent, the same
    command shape is created."""
    imp = subparsers.choices.get("import")
    original = None
    if imp is None:
        imp = subparsers.add_parser("import", help="import a configuration from another tool")
        imp.add_argument("kind", choices=["chef-env"], help=CHEF_HELP)
        imp.add_argument("file")
        imp.add_argument("-o", "--output", help="write here (default: standard output)")
    else:
        kind = next(a for a in imp._actions if a.dest == "kind")  # argparse keeps actions only here
        kind.choices = [*(kind.choices or []), "chef-env"]
        kind.help = f"{kind.help}; {CHEF_HELP}"
        original = imp.get_default("handler")
    imp.add_argument("--controller", action="append", type=_controller_arg, metavar="NAME=ADDRESS",
                     help="chef-env: a controller (repeat; the first is the preferred VIP holder)")
    imp.add_argument("--vip-mode", choices=("vrrp", "cluster"), default="vrrp",
                     help="chef-env: VIPs by VRRP (default) or as cluster resources")

    def dispatch(args: argparse.Namespace) -> int:
        if args.kind == "chef-env":
            return _import_chef_env(args)
        if args.controller:
            print("hakeeper import: --controller belongs to chef-env", file=sys.stderr)
            return 2
        if original is None:
            return 2
        return int(original(args))

    imp.set_defaults(handler=dispatch)
