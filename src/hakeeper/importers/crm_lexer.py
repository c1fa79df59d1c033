"""crm shell text → statements: continuation lines joined, quotes and comments handled, lines kept."""

from __future__ import annotations

import re
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
        words = split_words(text)
    except ValueError as exc:  # an unclosed quote
        raise InputError.at(f"cannot read this line: {exc}", file=file, line=line) from None
    return Statement(words, line, file)


# The words of a line as a POSIX shell splits them (shlex.split(posix=True) without comments, so
# `#uname` is a word): single quotes keep everything, double quotes let a backslash escape only
# `"` and `\`, a backslash outside quotes escapes any character, and adjacent pieces form one
# word. shlex builds each word a character at a time by string concatenation, which is quadratic
# in the word's length (a 1 MB value took 16 s); here every piece is one regular expression match
# and a word is joined once, so the time is linear in the line's length.
_PIECE = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<plain>[^ \t\r\n'"\\]+)
  | '(?P<single>[^']*)'
  | "(?P<double>[^"\\]*+(?:\\.[^"\\]*+)*+)"
  | \\(?P<escaped>.)
  | (?P<unclosed>['"])
  | (?P<dangling>\\)
""", re.VERBOSE | re.DOTALL)
_DOUBLE_ESCAPE = re.compile(r'\\([\\"])')


class QuotedWord(str):
    """A word written with quotes or a backslash in it: always a value, never a keyword or a
    bracket (`#uname eq ")"` compares with a parenthesis, `#uname eq "and"` with the word)."""

    __slots__ = ()


def split_words(text: str) -> list[str]:
    """Raises ValueError for an unclosed quote or a final lone backslash, as shlex does.
    Words with quoting in them are QuotedWord (equal to the plain string)."""
    words: list[str] = []
    pieces: list[str] = []
    in_word = quoted = False  # an empty quoted string is still a word
    for m in _PIECE.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            if in_word:
                joined = "".join(pieces)
                words.append(QuotedWord(joined) if quoted else joined)
                pieces, in_word, quoted = [], False, False
            continue
        if kind == "unclosed":
            raise ValueError("No closing quotation")
        if kind == "dangling":
            raise ValueError("No escaped character")
        value = m.group(kind or "plain")
        pieces.append(_DOUBLE_ESCAPE.sub(r"\1", value) if kind == "double" else value)
        in_word = True
        quoted = quoted or kind != "plain"
    if in_word:
        joined = "".join(pieces)
        words.append(QuotedWord(joined) if quoted else joined)
    return words


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
