"""Load YAML and validate it with pydantic, keeping the line of every value for error messages.

This is the one YAML reader every operator file goes through (specs, states, profiles, the VRRP
YAML, the agent's configuration). It builds plain Python data from the parser's events and, beside
it, a map from the path of each value (a tuple of keys and list indexes, as pydantic reports a
location) to its line, so a validation error can say "spec.yaml:12: resources.primitives.3.agent: ...".

Building from events, with an explicit stack rather than PyYAML's recursive composer and
constructor, is what lets the reader bound everything a hostile or mistaken file could make it do.
What it accepts, and what it refuses with a file, a line and (where there is one) a field:

- **Size**: at most `MAX_BYTES` (10 MB) of text; configuration files are a few kilobytes.
- **Depth**: at most `MAX_DEPTH` (100) nested mappings and lists, counting those an alias brings in.
- **Aliases** (`&name` ... `*name`) are supported and expanded (each use is a copy), but the
  expanded document may hold at most ten values per character of input (and at least 10,000,
  at most `MAX_NODES`, 1,000,000). An "alias bomb" (each level aliasing the previous one nine
  times) is refused when its expansion passes that budget, after work proportional to the
  budget, never to the exponential size it describes.
- **Recursive aliases** (an alias inside the value its anchor names) are refused.
- **Merge keys** (`<<: *defaults`) are refused: write the keys out, or alias a whole value. They
  are a YAML 1.1 extension with subtle precedence rules, and no hakeeper file needs them.
- **Keys** must be plain values (strings, numbers...): a mapping or a list as a key is refused.
- **Tags**: the standard scalar tags (`!!str`, `!!int`...) are honoured; any other tag, and any
  tag on a mapping or list other than `!!map`/`!!seq`, is refused.
- Duplicate keys, and more than one document in a file, are refused.

The scanner and parser are libyaml's (`yaml.CSafeLoader`) when PyYAML was built with it, which
is several times faster; PyYAML's pure-Python parser otherwise. Both report the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hakeeper.errors import MAX_INPUT_BYTES, InputError, Problem, read_input_text

Path_ = tuple[str | int, ...]
Model = TypeVar("Model", bound=BaseModel)

MAX_BYTES = MAX_INPUT_BYTES
MAX_DEPTH = 100
MAX_NODES = 1_000_000
_NODES_PER_CHAR = 10
_MIN_NODE_BUDGET = 10_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER: Any = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = {yaml.MappingStartEvent: "tag:yaml.org,2002:map",
                    yaml.SequenceStartEvent: "tag:yaml.org,2002:seq"}


@dataclass(frozen=True)
class Limits:
    """How much a document may hold; the defaults are the documented ones (see the module)."""

    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES

    def node_budget(self, text: str) -> int:
        return min(self.max_nodes, max(_MIN_NODE_BUDGET, _NODES_PER_CHAR * len(text)))


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


@dataclass
class _Anchored:
    """A finished value with an anchor: what an alias to it copies, and what that costs."""

    value: Any
    nodes: int  # values in it, itself included
    height: int  # levels of mappings/lists in it (0 for a scalar)
    lines: list[tuple[Path_, int]]  # lines of the values inside it, by path relative to it


@dataclass
class _Open:
    """A mapping or list being built."""

    value: dict[Any, Any] | list[Any]
    path: Path_
    anchor: str | None
    first_line: int  # index into the builder's line list where this collection's lines start
    first_node: int  # node count when it started
    height: int = 1
    key: tuple[Any, int] | None = None  # a mapping's key waiting for its value, with the key's line


@dataclass
class _Builder:
    file: str
    limits: Limits
    budget: int
    stack: list[_Open] = field(default_factory=list)
    lines: list[tuple[Path_, int]] = field(default_factory=list)
    anchors: dict[str, _Anchored] = field(default_factory=dict)
    nodes: int = 0
    root: Any = None

    def fail(self, message: str, event: Any, path: Path_ | None = None) -> InputError:
        where = ".".join(str(p) for p in path) if path else None
        return InputError.at(message, file=self.file, line=event.start_mark.line + 1, field=where)

    def count(self, n: int, event: Any, path: Path_ | None = None) -> None:
        self.nodes += n
        if self.nodes > self.budget:
            raise self.fail(
                f"with its aliases expanded, the document holds more than {self.budget:,} values "
                f"(the limit: {_NODES_PER_CHAR} per character of input, at least "
                f"{_MIN_NODE_BUDGET:,}, at most {self.limits.max_nodes:,})", event, path)

    def child_path(self, event: Any) -> tuple[Path_, int] | None:
        """Where the value that `event` starts goes, and its line; None if it is a mapping key."""
        if not self.stack:
            return (), event.start_mark.line + 1
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value)), event.start_mark.line + 1
        if top.key is None:
            return None
        return (*top.path, top.key[0]), top.key[1]

    def check_depth(self, event: Any, path: Path_, height: int) -> None:
        if len(path) + height > self.limits.max_depth:
            raise self.fail(f"nested more than {self.limits.max_depth} levels deep", event)

    def attach(self, value: Any, event: Any, is_scalar: bool) -> None:
        """Put a finished value into the collection being built (or make it the document)."""
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if top.key is None:
            if not is_scalar:
                raise self.fail("a key must be a plain value (a name or a number), not a mapping or "
                                "a list", event, top.path)
            if value in top.value:
                raise self.fail(f"duplicate key {value!r}", event, (*top.path, value))
            top.key = (value, event.start_mark.line + 1)
            return
        top.value[top.key[0]] = value
        top.key = None

    def scalar(self, event: Any) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
        where = self.child_path(event)
        if tag == _MERGE_TAG:
            if where is None:
                top = self.stack[-1]
                raise self.fail("merge keys (<<) are not supported: write the keys out, or alias "
                                "the whole value", event, (*top.path, "<<"))
            tag = _RESOLVER.DEFAULT_SCALAR_TAG  # `<<` as a value is only text
        construct = _CONSTRUCTOR.yaml_constructors.get(tag)
        if construct is None or tag in _COLLECTION_TAGS.values():
            raise self.fail(f"the tag {tag} is not supported", event, where[0] if where else None)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = construct(_CONSTRUCTOR, node)
        except (yaml.YAMLError, ValueError, KeyError, AttributeError, TypeError, OverflowError):
            # `!!int abc`, `!!bool maybe`, `!!timestamp x`, an integer of 5,000 digits...
            short = tag.rsplit(":", 1)[-1]
            raise self.fail(f"not a valid {short}", event, where[0] if where else None) from None
        self.count(1, event)
        if where is not None:
            self.lines.append(where)
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchored(value, 1, 0, [])
        self.attach(value, event, is_scalar=True)

    def start(self, event: Any) -> None:
        where = self.child_path(event)
        if where is None:
            raise self.fail("a key must be a plain value (a name or a number), not a mapping or a "
                            "list", event, self.stack[-1].path)
        if event.tag not in (None, "!", _COLLECTION_TAGS[type(event)]):
            raise self.fail(f"the tag {event.tag} is not supported here", event, where[0])
        path, line = where
        self.check_depth(event, path, 1)
        self.count(1, event)
        self.lines.append((path, line))
        value: dict[Any, Any] | list[Any] = {} if isinstance(event, yaml.MappingStartEvent) else []
        self.stack.append(_Open(value, path, event.anchor, len(self.lines) - 1, self.nodes - 1))

    def end(self, event: Any) -> None:
        done = self.stack.pop()
        if done.anchor is not None:
            skip = len(done.path)
            inner = [(p[skip:], line) for p, line in self.lines[done.first_line + 1:]]
            self.anchors[done.anchor] = _Anchored(done.value, self.nodes - done.first_node,
                                                  done.height, inner)
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, done.height + 1)
        self.attach(done.value, event, is_scalar=False)

    def alias(self, event: Any) -> None:
        name: str = event.anchor
        where = self.child_path(event)
        if any(o.anchor == name for o in self.stack):
            raise self.fail(f"the alias *{name} is inside the value it names (a recursive alias)",
                            event, where[0] if where else None)
        anchored = self.anchors.get(name)
        if anchored is None:
            raise self.fail(f"the alias *{name} names no anchor (&{name}) before it", event,
                            where[0] if where else None)
        is_scalar = anchored.height == 0
        if where is None:
            if not is_scalar:
                raise self.fail("a key must be a plain value (a name or a number), not a mapping or "
                                "a list", event, self.stack[-1].path)
            self.attach(anchored.value, event, is_scalar=True)
            return
        path, line = where
        self.check_depth(event, path, anchored.height)
        self.count(anchored.nodes, event, path)  # before copying: the budget bounds the work
        self.lines.append((path, line))
        self.lines.extend(((*path, *rel), at) for rel, at in anchored.lines)
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, anchored.height + 1)
        self.attach(_copy(anchored.value), event, is_scalar)


def _copy(value: Any) -> Any:
    # Each use of an alias gets its own containers, so no later change to one shows in another.
    # Recursion is bounded by the depth limit.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _events(text: str, builder: _Builder) -> None:
    loader = _Loader(text)
    try:
        documents = 0
        while True:
            event = loader.get_event()
            if isinstance(event, yaml.ScalarEvent):
                builder.scalar(event)
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                builder.start(event)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                builder.end(event)
            elif isinstance(event, yaml.AliasEvent):
                builder.alias(event)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise builder.fail("more than one document (---) in the file", event)
            elif isinstance(event, yaml.StreamEndEvent):
                return
    finally:
        loader.dispose()


def parse_yaml(text: str, file: str = "<input>", limits: Limits = Limits()) -> YamlDocument:
    """The document in `text`, or an InputError naming `file`, the line and the field."""
    if len(text.encode("utf-8", errors="surrogatepass")) > limits.max_bytes:
        raise InputError.at(f"larger than {limits.max_bytes:,} bytes", file=file)
    builder = _Builder(file, limits, limits.node_budget(text))
    try:
        _events(text, builder)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        position = getattr(exc, "position", None)  # a ReaderError (a control character) has only this
        if line is None and isinstance(position, int):
            line = text.count("\n", 0, position) + 1
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        raise InputError.at(f"not valid YAML: {problem}", file=file, line=line) from None
    lines: dict[Path_, int] = {}
    for path, line in builder.lines:
        lines.setdefault(path, line)
    # No document at all (an empty file, only comments) reads as an empty mapping.
    data = {} if builder.nodes == 0 else builder.root
    return YamlDocument(data, lines, file)


def load_yaml(path: str | Path, limits: Limits = Limits()) -> YamlDocument:
    return parse_yaml(read_input_text(path, max_bytes=limits.max_bytes), str(path), limits)
