"""Run one fuzz case through hakeeper's real entry point in a forked, bounded child, and judge it.

The child is a fork of the test process (hakeeper already imported, so a case costs milliseconds,
not an interpreter start). It gets an address-space limit and an alarm, reads /dev/null as
standard input, writes standard output and error to files, and calls `hakeeper.cli.main(argv)`.
The parent measures wall time and peak memory (wait4's rusage) and checks the operator contract:

- exit status 0 or 2 (1, another status or a signal is a failure);
- with 2: every line on stderr is a located one-line `error: FILE[:LINE]: ...` naming one of the
  case's files (or a `warning:` line); nothing new left in the working directory;
- never a traceback, never the secret marker, never a stray temporary file;
- within the time and memory bounds;
- with 0: no injected line in a generated haproxy.cfg / keepalived.conf, and inputs the contract
  says must be refused (negative counts, NaN, escaping names) were not accepted.
"""

from __future__ import annotations

import io
import os
import re
import resource
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

MEMORY_LIMIT = 500 * 1024 * 1024  # bytes of address space a run may add to what the test process has
TIME_LIMIT = 10  # seconds of wall time per run (the child's alarm)
# Hand-formatted generated files, where one injected line changes meaning. YAML written by
# yaml.dump quotes and escapes line breaks, so a re-read gives back the same string.
INJECTABLE = (".cfg", ".conf")

# Modules the commands import lazily: import them once here, so a forked run does not pay for them.
PRELOAD = (
    "hakeeper.cli",
    "hakeeper.importers.cib",
    "hakeeper.importers.crm",
    "hakeeper.openstack.chefenv",
    "hakeeper.openstack.profile",
    "hakeeper.openstack.render",
    "hakeeper.vrrp.kaconf",
    "hakeeper.vrrp.yamlconf",
    "pyroute2",
)


def preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from hakeeper.cli import build_parser

    build_parser()  # imports every command module


@dataclass(frozen=True)
class Case:
    """One input for one reader. Paths in `argv` and `outputs` may use `{d}` for the working directory."""

    reader: str
    klass: str
    name: str
    files: dict[str, bytes]  # relative path in the working directory -> content
    argv: tuple[str, ...]
    outputs: tuple[str, ...] = ()  # where the command writes (file or directory), for error naming
    injected: str | None = None  # a line that must never appear in a generated .cfg/.conf
    must_refuse: bool = False  # the contract says this input is refused with exit 2
    must_accept: bool = False  # a valid input (a seed, a CIB with a long comment): exit 0
    extra_paths: tuple[str, ...] = ()  # other paths an error may name (included files)


@dataclass
class Outcome:
    case: Case
    status: int | None  # exit status, None if killed by a signal
    signal: int | None
    seconds: float
    max_rss: int  # bytes, the child's peak resident size (it starts with the parent's pages)
    base_rss: int  # bytes, the child's resident size before it ran the command
    stdout: str
    stderr: str
    failures: list[str] = field(default_factory=list)  # symptom classes, empty when the case passed


# Set once per run by whoever starts the embedded store (`config apply` reads through it).
STORE_SOCKET = "/nonexistent/hakeeper-fuzz-store.sock"


def expand(text: str, workdir: Path) -> str:
    return text.replace("{d}", str(workdir)).replace("{store}", STORE_SOCKET)


def _child(argv: list[str], workdir: Path, out: Path, err: Path) -> None:
    """In the forked child: bound it, redirect it, run the command, never return."""
    status = 1
    try:
        (out.parent / "rss0").write_text(str(_rss()))
        # RLIMIT_AS bounds the whole address space, and the fork starts with the test process's own:
        # a fixed bound left the runs less room the more the process had grown (after the unit tests,
        # a deep input's malloc failed inside CPython as "SystemError: error return without exception").
        limit = _address_space() + MEMORY_LIMIT
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(TIME_LIMIT)
        os.chdir(workdir)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
        # pytest replaced sys.std*; the command must see plain streams on the redirected descriptors.
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
        for name in ("HAKEEPER_ETCD", "HAKEEPER_STORE", "HAKEEPER_CLUSTER"):
            os.environ.pop(name, None)
        from hakeeper.cli import main

        try:
            status = int(main(argv) or 0)
        except SystemExit as exc:  # argparse's own usage errors
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(status)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _snapshot(workdir: Path) -> set[str]:
    return {str(p.relative_to(workdir)) for p in workdir.rglob("*")}


def run_case(case: Case, workdir: Path, secret: str) -> Outcome:
    """Write the case's files into `workdir` (new), run it bounded in a fork, and judge the result."""
    workdir.mkdir(parents=True)
    for rel, data in case.files.items():
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    before = _snapshot(workdir)
    logs = workdir.parent / f".{workdir.name}.logs"
    logs.mkdir(exist_ok=True)
    out, err = logs / "stdout", logs / "stderr"
    argv = [expand(a, workdir) for a in case.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(argv, workdir, out, err)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], TIME_LIMIT + 5)
        if not ready:  # the alarm did not stop it: the parent does
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)
    _, wait_status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - start
    outcome = Outcome(
        case=case,
        status=os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else None,
        signal=os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
        seconds=seconds,
        max_rss=usage.ru_maxrss * 1024,  # Linux reports KiB
        base_rss=int((logs / "rss0").read_text() or 0) if (logs / "rss0").exists() else 0,
        stdout=out.read_bytes().decode("utf-8", "replace"),
        stderr=err.read_bytes().decode("utf-8", "replace"),
    )
    outcome.failures = judge(outcome, workdir, before, secret)
    return outcome


_LOCATED = re.compile(r"^error: (?P<rest>.+)$")


def _names_a_file(rest: str, paths: list[str]) -> bool:
    return any(rest.startswith(f"{p}:") for p in paths)


def judge(o: Outcome, workdir: Path, before: set[str], secret: str) -> list[str]:
    """The symptom classes of everything wrong with `o`; empty if it kept the contract."""
    case = o.case
    bad: list[str] = []
    traceback_seen = "Traceback" in o.stderr or "Traceback" in o.stdout
    if o.signal is not None:
        bad.append("timeout" if o.signal in (signal.SIGALRM, signal.SIGKILL) else f"signal {o.signal}")
    elif traceback_seen:  # the status is 1 then; the exception says more
        if "MemoryError" in o.stderr:
            bad.append("over the memory bound (MemoryError traceback)")
        else:
            bad.append(f"traceback ({_exception_name(o.stderr)})")
    elif o.status not in (0, 2):
        bad.append(f"exit status {o.status}")
    if o.seconds > TIME_LIMIT and "timeout" not in bad:
        bad.append("over the time bound")
    if secret in o.stdout or secret in o.stderr:
        bad.append("secret echoed")
    after = _snapshot(workdir)
    new = sorted(after - before)
    if o.status == 2:
        paths = [str(workdir / p) for p in case.files]
        # A value given on the command line is located by its flag (`--controller: ...`).
        paths += [arg for arg in case.argv if arg.startswith("--")]
        for p in (*case.outputs, *case.extra_paths):
            # An error about where to write may name the output or a directory above it.
            path = Path(expand(p, workdir))
            paths += [str(path), *(str(a) for a in path.parents if a != Path("/"))]
        lines = [ln for ln in o.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error: ")]
        others = [ln for ln in lines if not ln.startswith(("error: ", "warning: "))]
        if not errors:
            bad.append("exit 2 without an error line")
        elif not all(_names_a_file(_LOCATED.match(ln)["rest"], paths) for ln in errors):  # type: ignore[index]
            bad.append("error line does not name the file")
        if others:
            bad.append("stderr lines that are not errors or warnings")
        if new:
            bad.append("output left behind after exit 2")
    elif any(Path(p).name.startswith(".") for p in new):
        bad.append("temporary file left behind")
    if o.status == 2 and case.must_accept:
        bad.append("refused a valid input")
    if o.status == 0:
        if case.must_refuse:
            bad.append("accepted input the contract refuses")
        if case.injected and _injected(workdir, new, case.injected):
            bad.append("injected line in a generated file")
    return bad


def _exception_name(stderr: str) -> str:
    last = [ln for ln in stderr.splitlines() if ln and not ln.startswith(" ")]
    return last[-1].split(":")[0] if last else "?"


def _injected(workdir: Path, new: list[str], line: str) -> bool:
    for rel in new:
        path = workdir / rel
        if path.is_file() and path.name.endswith(INJECTABLE):
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(ln.strip() == line for ln in text.splitlines()):
                return True
    return False
