"""The rules for names an operator writes and hakeeper turns into files, ids and configuration words.

One rule covers every identifier: resource, group, clone and constraint ids, node and ticket names,
and in the OpenStack profile the controller and service names (routers will use it too). A name is
1 to 253 ASCII characters taken from letters, digits, `_`, `-`, `.` and `:`, and it starts with a
letter, a digit or `_`. That is what Pacemaker's XML ids allow (minus the non-ASCII letters) and
what host names use, so every CIB and crm configuration seen in practice passes; and it keeps
such a name harmless wherever it lands: it has no `/`, it is never `.` or `..`, it cannot be read as
a command-line option (no leading `-`), it has no whitespace, quotes or control characters to break
a configuration line, and it fits in a file name.

Agent names follow the directories they are looked up in (`agent_component_problem`), and
`contained_path` joins a name under a directory only if the result stays inside it: the checks on
input are the first defence, this one is the last, at the place where a file is opened.
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from pydantic import AfterValidator

MAX_NAME_LENGTH = 253  # a fully qualified host name's limit; also well under a file name's 255
NAME_CHARACTERS = "letters, digits, '_', '-', '.' and ':'"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")
# An agent's type or provider is one file or directory name; systemd unit names may also hold '@'
# (template instances) and '+'.
_AGENT_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+:-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _shown(text: str) -> str:
    # Long values are cut so an error stays one readable line; repr shows control characters escaped.
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _shape_problem(text: str, pattern: re.Pattern[str], allowed: str) -> str | None:
    if not text:
        return "must not be empty"
    if len(text) > MAX_NAME_LENGTH:
        return f"is {len(text)} characters long; at most {MAX_NAME_LENGTH} are allowed"
    if pattern.fullmatch(text):
        return None
    bad = next((c for c in text if not (c.isascii() and pattern.fullmatch("a" + c))), None)
    if bad is None:  # only the first character is wrong
        return f"{_shown(text)} must start with a letter, a digit or '_'"
    return f"{_shown(text)} has {bad!r}; a name is made of {allowed}"


def name_problem(text: str) -> str | None:
    """Why `text` is not a safe name, or None if it is one."""
    return _shape_problem(text, _NAME, NAME_CHARACTERS)


def check_name(value: str) -> str:
    """The pydantic validator behind `Name`: the value itself, or ValueError saying what is wrong."""
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(f"not a valid name: {problem}")
    return value


# A str field that holds an identifier; a refused value is a located error like any other field's.
Name = Annotated[str, AfterValidator(check_name)]


def agent_component_problem(text: str) -> str | None:
    """Why `text` cannot be one directory entry naming an agent (an OCF provider or type, a systemd
    unit), or None. No '/', never '.' or '..' (no leading '.' at all: those are the OCF helper
    files), no leading '-', no whitespace or control characters."""
    return _shape_problem(text, _AGENT_COMPONENT, "letters, digits, '_', '-', '.', '@', '+' and ':'")


def agent_path_problem(text: str, *, absolute: bool) -> str | None:
    """Why `text` is not an agent given by a relative path of safe components (`external/ipmi`) or,
    when `absolute` is allowed, an absolute one (`/usr/lib/heartbeat/cts/LSBDummy`), or None."""
    body = text[1:] if absolute and text.startswith("/") else text
    if not body:
        return "must not be empty"
    for part in body.split("/"):
        problem = agent_component_problem(part)
        if problem is not None:
            return f"path component {problem}" if "/" in body else problem
    return None


def control_character_problem(text: str) -> str | None:
    """Why `text` cannot go on one line of a generated configuration file, or None."""
    bad = _CONTROL.search(text)
    if bad is None:
        return None
    return f"{_shown(text)} holds the control character {bad.group()!r}"


# Linux refuses interface names of 16 bytes or more, '/', ':' and whitespace, and '.' and '..'.
_INTERFACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}")


def interface_problem(text: str) -> str | None:
    """Why `text` is not a network interface name hakeeper writes into a configuration, or None."""
    if _INTERFACE.fullmatch(text):
        return None
    if not text:
        return "must not be empty"
    if len(text) > 15:
        return f"{_shown(text)} is longer than 15 characters (Linux's limit for an interface name)"
    return (f"{_shown(text)} is not an interface name (letters, digits, '_', '.', '@', '-'; "
            "not starting with '.', '-' or '@')")


# A word of a generated configuration line (a path, a URI, a password): printable ASCII without the
# characters that would end the word or start something else in haproxy.cfg or keepalived.conf
# (whitespace, comments '#' '!', quotes, escapes, braces, haproxy's variables '$').
_WORD_FORBIDDEN = set(" \t\"'\\#!{}$;")


def config_word_problem(text: str) -> str | None:
    """Why `text` cannot be written as one word of haproxy.cfg or keepalived.conf, or None."""
    if not text:
        return "must not be empty"
    control = control_character_problem(text)
    if control is not None:
        return control
    bad = next((c for c in text if not c.isascii() or c in _WORD_FORBIDDEN), None)
    if bad is not None:
        return f"{_shown(text)} has {bad!r}, which a configuration file cannot carry inside one word"
    return None


def check_config_word(value: str) -> str:
    problem = config_word_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_interface(value: str) -> str:
    problem = interface_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# str fields that end up in a generated configuration file.
ConfigWord = Annotated[str, AfterValidator(check_config_word)]
InterfaceName = Annotated[str, AfterValidator(check_interface)]


class PathEscapeError(ValueError):
    """A path built from a name would leave the directory it belongs in."""


def contained_path(base: str, *parts: str) -> str:
    """`base` joined with `parts`, refusing any result that resolves (symbolic links followed)
    outside `base` or onto `base` itself: raises PathEscapeError naming both."""
    path = os.path.join(base, *parts)
    if not parts or not is_inside(path, base):
        raise PathEscapeError(f"{path!r} is not inside {base!r}")
    return path


def is_inside(path: str, directory: str) -> bool:
    """Whether `path`, resolved, is inside the resolved `directory` (not the directory itself)."""
    root = os.path.realpath(directory)
    real = os.path.realpath(path)
    return real != root and os.path.commonpath([root, real]) == root
