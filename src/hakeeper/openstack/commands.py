"""Commands of the OpenStack part.

    hakeeper openstack render PROFILE -o DIR     haproxy.cfg, keepalived-<controller>.conf, cluster.yaml
    hakeeper import chef-env ENV.json --controller NAME=ADDRESS ... [-o PROFILE]
    hakeeper demo [--no-live] [--quick] [--rounds N]   a live failover in network namespaces
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def _write_all(out: Path, files: dict[str, str]) -> None:
    """Write every file or none: render into a temporary directory, then move the files in."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".render-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        for name in files:
            os.replace(Path(tmp) / name, out / name)


def _render(args: argparse.Namespace) -> int:
    from hakeeper.openstack.profile import load_profile
    from hakeeper.openstack.render import render_haproxy, render_keepalived, render_spec
    from hakeeper.spec.loader import dump_spec

    resolved = load_profile(args.profile)
    files = {"haproxy.cfg": render_haproxy(resolved), "cluster.yaml": dump_spec(render_spec(resolved))}
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
    _write_all(Path(args.output), files)
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
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{args.output}: profile written; render it with: hakeeper openstack render {args.output} -o DIR")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from hakeeper.openstack.demo import run_demo

    live = not args.no_live and sys.stdout.isatty()
    return run_demo(live=live, quick=args.quick, rounds=args.rounds, workdir=args.workdir, speaker=args.speaker)


def _sub_action(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:  # argparse keeps sub-command tables only here
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="import_format", metavar="FORMAT")


def register(subparsers: Any) -> None:
    os_parser = subparsers.add_parser("openstack", help="OpenStack controller HA: render a profile")
    os_sub = os_parser.add_subparsers(dest="openstack_command", metavar="COMMAND", required=True)
    p = os_sub.add_parser("render", help="write haproxy.cfg, keepalived.conf per controller, cluster.yaml")
    p.add_argument("profile")
    p.add_argument("-o", "--output", required=True, help="directory to write into")
    p.add_argument("--check", action="store_true", help="have `haproxy -c` check haproxy.cfg before writing")
    p.set_defaults(handler=_render)

    # `hakeeper import` may also be registered by the importers part: share its table.
    imp = subparsers.choices.get("import") or subparsers.add_parser(
        "import", help="import a configuration from another tool")
    q = _sub_action(imp).add_parser(
        "chef-env", help="Chef environment (rcbops vips map) → OpenStack profile",
        description="A Chef environment lists networks and VIPs but not the controllers: give each "
                    "with --controller NAME=ADDRESS, in priority order.")
    q.add_argument("file")
    q.add_argument("--controller", action="append", type=_controller_arg, metavar="NAME=ADDRESS",
                   help="a controller (repeat; the first one is the preferred VIP holder)")
    q.add_argument("--vip-mode", choices=("vrrp", "cluster"), default="vrrp")
    q.add_argument("-o", "--output", help="profile file to write (default: stdout)")
    q.set_defaults(handler=_import_chef_env)

    d = subparsers.add_parser("demo", help="a live controller failover in network namespaces (root)")
    d.add_argument("--no-live", action="store_true", help="plain line output, no live terminal view")
    d.add_argument("--quick", action="store_true", help="shorter phases (for CI)")
    d.add_argument("--rounds", type=int, default=1, help="failovers to run; the summary gives the median")
    d.add_argument("--workdir", help="keep configuration and logs here (default: a temporary directory)")
    d.add_argument("--speaker", choices=("auto", "hakeeper", "keepalived"), default="auto",
                   help="who speaks VRRP: hakeeper's own speaker (auto: when built in) or keepalived")
    d.set_defaults(handler=_demo)
