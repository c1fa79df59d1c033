"""`hakeeper import crm|cib FILE [-o OUT]`: another cluster manager's configuration → native YAML."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hakeeper.spec.loader import dump_spec
from hakeeper.spec.model import ClusterSpec


def _read(kind: str, path: str) -> ClusterSpec:
    # Imported lazily: `hakeeper --help` should not pay for lxml.
    if kind == "cib":
        from hakeeper.importers.cib import read_cib
        # The imperative shell supplies the clock: failures past their failure-timeout are forgotten.
        return read_cib(path, now=time.time())
    from hakeeper.importers.crm import read_crm
    return read_crm(path)


def write_atomically(out: Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def _import(args: argparse.Namespace) -> int:
    text = dump_spec(_read(args.kind, args.file))
    if args.output:
        write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("import", help="convert a Pacemaker configuration (crm shell or CIB XML) to a spec")
    p.add_argument("kind", choices=["crm", "cib"], help="crm: `crm configure show` text; cib: CIB XML")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="write the spec here (default: standard output)")
    p.set_defaults(handler=_import)
