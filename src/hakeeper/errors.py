"""Errors about input an operator wrote: they name the file, line and field, and exit with status 2.

Every reader of operator input (YAML specs, crm shell, CIB XML, keepalived.conf, Chef environments)
raises InputError; the command-line entry point turns it into one line on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

EXIT_BAD_INPUT = 2
# The largest operator file read: configurations are kilobytes, and reading is all in memory. (A CIB,
# which for a large cluster holds its whole history, is streamed by its own reader and not bounded.)
MAX_INPUT_BYTES = 10 * 1024 * 1024


@dataclass
class Problem:
    """One thing wrong with the input, located as precisely as the reader can."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        if self.file is None and self.field is not None and self.field.startswith("--"):
            return f"{self.field}: {self.message}"  # a value given on the command line
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        what = f"{shown_field(self.field)}: " if self.field else ""
        return f"{where}: {what}{self.message}"


# A part of a field path that reads as a name (a key, an index, an instance `rsc:0`, a flag).
_NAME_LIKE = re.compile(r"[A-Za-z0-9_#@\-\[\]/]{1,64}(?::[0-9]{1,6})?")


def shown_field(field: str) -> str:
    """The field path of an error as it may be printed. A part that does not read as a name is
    text taken from the input, and the input may not be a file the operator wrote (a sudo rule
    running hakeeper on /etc/shadow): it is described by its length, never quoted."""
    return ".".join(part if not part or _NAME_LIKE.fullmatch(part) else f"<a key of {len(part)} characters>"
                    for part in field.split("."))


@dataclass
class InputError(Exception):
    """Input that cannot be accepted. Holds one or more problems; nothing has been applied."""

    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def at(
        cls, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None
    ) -> InputError:
        return cls([Problem(message, file, line, field)])

    def __str__(self) -> str:
        return "\n".join(f"error: {p}" for p in self.problems)


def read_input_text(path: str | Path, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The text of an operator's input file, or an InputError naming it (unreadable, too large, not
    UTF-8). At most `max_bytes` are read, so `/dev/zero` or a runaway log given by mistake is
    refused rather than read until memory runs out."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError.at(f"cannot read: {exc.strerror or exc}", file=name) from None
    if len(raw) > max_bytes:
        raise InputError.at(f"larger than {max_bytes:,} bytes: not a configuration file", file=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.at(f"not UTF-8 text (byte {exc.start}: {exc.reason})", file=name) from None
    # As reading in text mode did: \r\n and \r become \n, so every reader sees the same lines.
    return text.replace("\r\n", "\n").replace("\r", "\n")
