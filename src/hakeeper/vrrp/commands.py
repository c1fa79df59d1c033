"""`hakeeper vrrp`: run VRRP instances from a keepalived.conf or hakeeper YAML."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

from hakeeper.errors import InputError
from hakeeper.vrrp.config import Config, check_host


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("vrrp", help="VRRP virtual IPs, wire-compatible with keepalived")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--keepalived-conf", metavar="FILE", help="a keepalived.conf (its VRRP part)")
    src.add_argument("--config", metavar="FILE", help="hakeeper's YAML form of the same settings")
    p.add_argument("--check", action="store_true", help="check the configuration and this host, then exit")
    p.add_argument("--cleanup", action="store_true",
                   help="withdraw every configured VIP from this host (priority 0 if held), then exit")
    p.add_argument("--state-file", help="JSON file with each instance's state and drop counters")
    p.add_argument("--pid-file", help="pid of the supervising process")
    p.add_argument("--speaker-pid-file", help="pid of the speaker process")
    p.add_argument("--no-supervisor", action="store_true", help="run the speaker in this process only")
    p.add_argument("--restart-delay", type=float, default=2.0,
                   help="seconds before restarting a dead speaker; negative: exit instead")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=main)


def load(args: argparse.Namespace) -> Config:
    if args.keepalived_conf:
        from hakeeper.vrrp.kaconf import read_keepalived

        return read_keepalived(args.keepalived_conf)
    from hakeeper.vrrp.yamlconf import read_yaml

    return read_yaml(args.config)


def host_links() -> dict[str, list[str]]:
    from pyroute2 import IPRoute

    from hakeeper.vrrp import netio

    with IPRoute() as ipr:
        return {name: list(link.addresses) for name, link in netio.links(ipr).items()}


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s hakeeper-vrrp[%(process)d] %(levelname)s %(message)s",
    )
    # pyroute2 logs every netlink message at debug level: far too much next to ours.
    logging.getLogger("pyroute2").setLevel(max(logging.WARNING, logging.getLogger().level))
    cfg = load(args)
    for w in cfg.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.cleanup:
        from hakeeper.vrrp.supervisor import withdraw

        held = withdraw(cfg)
        print(f"withdrew addresses of {', '.join(held) if held else 'no instance'}", file=sys.stderr)
        return 0
    check_host(cfg, host_links())
    if args.check:
        print(f"ok: {len(cfg.instances)} instance(s)", file=sys.stderr)
        return 0
    if args.pid_file:
        try:
            with open(args.pid_file, "w") as fh:
                fh.write(f"{os.getpid()}\n")
        except OSError as exc:  # a missing directory, a read-only place: the operator's to fix
            raise InputError.at(f"cannot write: {exc.strerror or exc}", file=args.pid_file,
                                field="--pid-file") from None

    def speaker() -> int:
        import faulthandler
        import signal

        from hakeeper.vrrp.speaker import serve

        # `kill -USR1 <speaker>` writes every thread's stack to stderr: for a speaker that hangs.
        faulthandler.register(signal.SIGUSR1, all_threads=True)

        if args.speaker_pid_file:
            with open(args.speaker_pid_file, "w") as fh:
                fh.write(f"{os.getpid()}\n")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(cfg, args.state_file))
        return 0

    try:
        if args.no_supervisor:
            return speaker()
        from hakeeper.vrrp.supervisor import supervise

        delay = args.restart_delay if args.restart_delay >= 0 else None
        return supervise(cfg, speaker, delay, args.speaker_pid_file)
    finally:
        if args.pid_file and os.path.exists(args.pid_file):
            with open(args.pid_file) as fh:
                if fh.read().strip() == str(os.getpid()):
                    os.unlink(args.pid_file)
