"""crm shell text → statements: continuation lines joined, quotes and comments handled, lines kept."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from hakeeper.errors import InputError, Problem


@dataclass
class Statement:
    """One crm command (`primitive ...`, `order ...`), as words, with the line it starts on."""

    words: list[str]
    line: int
    file: str

    @property
    def kind(self) -> str:
        return self.words[0]

    def error(self, message: str, field: str | None = None) -> InputError:
        return InputError.at(message, file=self.file, line=self.line, field=field)


def statements(text: str, file: str) -> list[Statement]:
    result: list[Statement] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        continued = line.endswith("\\")
        pending.append(line[:-1] if continued else line)
        if continued:
            continue
        result.append(_split(" ".join(pending), start, file))
        pending = []
    if pending:
        result.append(_split(" ".join(pending), start, file))
    return [st for st in result if st.words]  # a lone continuation or empty quotes say nothing


def _split(text: str, line: int, file: str) -> Statement:
    try:
        words = shlex.split(text, comments=False, posix=True)  # `#uname` is a word, not a comment
    except ValueError as exc:  # an unclosed quote
        raise InputError.at(f"cannot read this line: {exc}", file=file, line=line) from None
    return Statement(words, line, file)


def split_pair(word: str) -> tuple[str, str] | None:
    """`name=value` → (name, value); None for a word that is not an assignment."""
    name, sep, value = word.partition("=")
    return (name, value) if sep and name else None


def validate(model: type[Any], data: dict[str, Any], st: Statement) -> Any:
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise InputError([
            Problem(err["msg"], st.file, st.line,
                    ".".join([st.words[1] if len(st.words) > 1 else st.kind] + [str(p) for p in err["loc"]]))
            for err in exc.errors()
        ]) from None
    assert isinstance(result, BaseModel)
    return result
