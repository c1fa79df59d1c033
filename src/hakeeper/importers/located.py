"""Where each imported object came from, so problems found later still name a source line."""

from __future__ import annotations

from collections.abc import Iterable

from hakeeper.errors import InputError, Problem
from hakeeper.spec.checks import SpecPath, SpecProblem


class SourceMap:
    """Spec paths (as in SpecProblem.path) → the source line that defined that object."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._lines: dict[SpecPath, int] = {}

    def record(self, path: SpecPath, line: int | None) -> None:
        if line is not None:
            self._lines[path] = line

    def line_of(self, path: SpecPath) -> int | None:
        # The most precise recorded prefix: a group member maps to the group's line, and so on.
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None

    def error(self, problems: Iterable[SpecProblem]) -> InputError:
        return InputError([
            Problem(p.message, self.file, self.line_of(p.path), ".".join(str(x) for x in p.path))
            for p in problems
        ])
