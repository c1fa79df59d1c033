"""`hakeeper import crm|cib FILE [-o OUT]`: another cluster manager's configuration → native YAML."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hakeeper.errors import InputError
from hakeeper.spec.loader import dump_spec
from hakeeper.spec.model import ClusterSpec


def _read(kind: str, path: str) -> ClusterSpec:
    # Imported lazily: `hakeeper --help` should not pay for lxml.
    if kind == "cib":
        from hakeeper.importers.cib import read_cib_with_warnings
        # The imperative shell supplies the clock: failures past their failure-timeout are forgotten.
        spec, warnings = read_cib_with_warnings(path, now=time.time())
    else:
        from hakeeper.importers.crm import read_crm_with_warnings
        spec, warnings = read_crm_with_warnings(path)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return spec


def write_atomically(out: Path, text: str, option: str = "--output") -> None:
    """Write `text` to `out` whole or not at all: into a temporary file next to it, then renamed,
    so a reader never sees half a file and a failure leaves nothing behind.

    A directory that does not exist or cannot be written, or an `out` that is a directory, is the
    operator's mistake: an InputError naming the path and the option, exit status 2."""
    directory = out.parent
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{out.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        reason = exc.strerror or str(exc)
        if tmp is None and not directory.exists():
            message = f"cannot write: the directory {directory} does not exist"
        elif tmp is None and not directory.is_dir():
            message = f"cannot write: {directory} is not a directory"
        elif tmp is None:
            message = f"cannot write in {directory}: {reason}"
        else:
            message = f"cannot write: {reason}"
        raise InputError.at(message, file=str(out), field=option) from None
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
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
