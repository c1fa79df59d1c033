"""Load YAML and validate it with pydantic, keeping the line of every value for error messages.

PyYAML's composer gives each node a start mark; we build plain Python data and, beside it, a map
from the path of each value (a tuple of keys and list indexes, as pydantic reports a location) to
its line, so a validation error can say "spec.yaml:12: resources.primitives.3.agent: ...".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hakeeper.errors import InputError, Problem, read_input_text

Path_ = tuple[str | int, ...]
Model = TypeVar("Model", bound=BaseModel)


class YamlDocument:
    """Parsed YAML data plus the source line of every value in it."""

    def __init__(self, data: Any, lines: dict[Path_, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line_of(self, path: Path_) -> int | None:
        """The line of the value at `path`, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def validate(self, model: type[Model], context: Mapping[str, Any] | None = None) -> Model:
        """Validate the whole document as `model`; every error names file, line and field."""
        try:
            return model.model_validate(self.data, context=dict(context or {}))
        except ValidationError as exc:
            raise self.to_input_error(exc) from None

    def to_input_error(self, exc: ValidationError) -> InputError:
        problems = []
        for err in exc.errors():
            loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
            field = ".".join(str(p) for p in loc) or None
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            problems.append(Problem(msg, self.file, self.line_of(loc), field))
        return InputError(problems)


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the tag of a tagged union member ("function-after[...]") into locations.
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _build(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(  # construct scalars exactly as safe_load would
                ""
            ).construct_object(key_node)
            if key in out:
                raise InputError.at(
                    f"duplicate key {key!r}", file=file, line=key_node.start_mark.line + 1, field=str(key)
                )
            # A value's line is its key's line: "b:" rather than the first item under it.
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def parse_yaml(text: str, file: str = "<input>") -> YamlDocument:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError.at(f"not valid YAML: {problem}", file=file, line=line) from None
    lines: dict[Path_, int] = {}
    data = {} if root is None else _build(root, (), lines, file)
    return YamlDocument(data, lines, file)


def load_yaml(path: str | Path) -> YamlDocument:
    return parse_yaml(read_input_text(path), str(path))
