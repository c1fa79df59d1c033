"""Errors about input an operator wrote: they name the file, line and field, and exit with status 2.

Every reader of operator input (YAML specs, crm shell, CIB XML, keepalived.conf, Chef environments)
raises InputError; the command-line entry point turns it into one line on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EXIT_BAD_INPUT = 2


@dataclass
class Problem:
    """One thing wrong with the input, located as precisely as the reader can."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {what}{self.message}"


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


def read_input_text(path: str | Path) -> str:
    """The text of an operator's input file, or an InputError naming it (unreadable, not UTF-8)."""
    name = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError.at(f"cannot read: {exc.strerror or exc}", file=name) from None
    except UnicodeDecodeError as exc:
        raise InputError.at(f"not UTF-8 text (byte {exc.start}: {exc.reason})", file=name) from None
