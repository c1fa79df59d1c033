"""Scalar value types shared by the spec: scores, durations, agent references.

Scores follow Pacemaker: integers clamped to ±INFINITY (1,000,000), written `INFINITY`, `+INFINITY`,
`-INFINITY`, `inf` or `-inf` as crm and the CIB do. Durations accept Pacemaker's forms
(`30s`, `2min`, `1h`, `500ms`, a bare number of seconds, ISO 8601 `PT1M`), finite, not negative and
at most MAX_DURATION (a year: no timeout, interval or failure-timeout needs more, and a bound keeps
every later sum finite).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from hakeeper.names import agent_component_problem, agent_path_problem

INFINITY = 1_000_000
MAX_DURATION = 365 * 86400.0

_SCORE_WORDS = {"infinity": INFINITY, "+infinity": INFINITY, "-infinity": -INFINITY,
                "inf": INFINITY, "+inf": INFINITY, "-inf": -INFINITY}


def _shown(value: Any) -> Any:
    # Error messages quote what was given, cut short so they stay one readable line.
    if isinstance(value, str) and len(value) > 40:
        return value[:40] + "..."
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit number"  # repr() of a huge int is itself an error
    return value


def parse_score(value: Any) -> int:
    """A score as Pacemaker reads it; raises ValueError naming what was given."""
    if isinstance(value, bool):
        raise ValueError(f"score must be a number or ±INFINITY, not {value!r}")
    if isinstance(value, int):
        return max(-INFINITY, min(INFINITY, value))
    if isinstance(value, float) and value.is_integer():
        return parse_score(int(value))
    if isinstance(value, str):
        text = value.strip()
        word = _SCORE_WORDS.get(text.lower())
        if word is not None:
            return word
        if re.fullmatch(r"[+-]?\d+", text):
            # Pacemaker saturates at ±INFINITY; so do we, without converting a thousand digits.
            if len(text.lstrip("+-")) > 18:
                return -INFINITY if text.startswith("-") else INFINITY
            return parse_score(int(text))
    raise ValueError(f"score must be a number or ±INFINITY, not {_shown(value)!r}")


def format_score(score: int) -> int | str:
    if score >= INFINITY:
        return "INFINITY"
    if score <= -INFINITY:
        return "-INFINITY"
    return score


def add_scores(a: int, b: int) -> int:
    """Pacemaker's score arithmetic: -INFINITY wins over +INFINITY, both saturate."""
    if a <= -INFINITY or b <= -INFINITY:
        return -INFINITY
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    return max(-INFINITY, min(INFINITY, a + b))


Score = Annotated[int, BeforeValidator(parse_score), PlainSerializer(format_score)]

_DURATION_UNITS = {"ms": 0.001, "msec": 0.001, "s": 1.0, "sec": 1.0, "": 1.0, "m": 60.0, "min": 60.0,
                   "h": 3600.0, "hr": 3600.0, "d": 86400.0}
_ISO = re.compile(r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")


def _bounded(seconds: float, given: Any) -> float:
    # NaN fails every comparison, so it is refused by the same test as the out-of-range values.
    if not 0 <= seconds <= MAX_DURATION:
        raise ValueError(f"duration must be between 0 and {format_duration(MAX_DURATION)} "
                         f"(a year), not {_shown(given)!r}")
    return seconds


def parse_duration(value: Any) -> float:
    """Seconds from a Pacemaker-style duration, within 0..MAX_DURATION."""
    if isinstance(value, bool):
        raise ValueError(f"duration expected, not {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float is out of range all the same
            seconds = math.inf
        return _bounded(seconds, value)
    if isinstance(value, str) and len(value) <= 100:
        text = value.strip()
        iso = _ISO.fullmatch(text.upper()) if text.upper().startswith("P") else None
        if iso:
            parts = {k: float(v) for k, v in iso.groupdict().items() if v}
            return _bounded(parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600
                            + parts.get("m", 0) * 60 + parts.get("s", 0), value)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text)
        if match and match.group(2).lower() in _DURATION_UNITS:
            return _bounded(float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()], value)
    raise ValueError(f"duration expected (such as 30s, 2min, 500ms), not {_shown(value)!r}")


def format_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]

AGENT_CLASSES = ("ocf", "systemd", "service", "upstart", "lsb", "process", "stonith", "vip",
                 "rabbitmq",  # rabbitmq: hakeeper's native class (docs/rabbitmq.md)
                 "instanceha")  # instanceha:evacuator, the evacuation engine (docs/instance-ha.md)


# Where an agent's type may be a path: Pacemaker runs LSB scripts and fence agents given by absolute
# path, cluster-glue's fence plugins are `external/NAME`, and its own old test CIBs name OCF agents
# by absolute path. Every other type is one directory entry. Whether such an agent can run is the
# node agent's concern (an OCF agent must be a file of resource.d/PROVIDER); the spec refuses only
# what could never name a file safely: '..', '.', empty components, whitespace, control characters.
_ABSOLUTE_TYPES = {"ocf", "lsb", "stonith"}
_RELATIVE_PATH_TYPES = {"stonith"}


def _agent_part(text: str, what: str, klass: str, full: str) -> str:
    if what == "provider" or klass not in _ABSOLUTE_TYPES:
        problem = agent_component_problem(text)
    else:
        problem = agent_path_problem(text, absolute=True)
        if (problem is None and "/" in text and not text.startswith("/")
                and klass not in _RELATIVE_PATH_TYPES):
            problem = f"{text!r} is not a single name; a {klass} agent is a name or an absolute path"
    if problem is not None:
        raise ValueError(f"agent {_shown(full)!r}: {what} {problem}")
    return text


@dataclass(frozen=True)
class AgentRef:
    """Which resource agent runs a primitive: `ocf:PROVIDER:TYPE`, `systemd:UNIT`, `process`, ..."""

    cls: str
    provider: str | None
    type: str

    @classmethod
    def parse(cls, text: str) -> AgentRef:
        parts = text.split(":")
        klass = parts[0]
        if klass not in AGENT_CLASSES:
            raise ValueError(
                f"unknown agent class {_shown(klass)!r} in {_shown(text)!r}; known: {', '.join(AGENT_CLASSES)}")
        if klass == "ocf":
            if len(parts) != 3 or not all(parts[1:]):
                raise ValueError(f"an OCF agent is written ocf:PROVIDER:TYPE, not {_shown(text)!r}")
            return cls("ocf", _agent_part(parts[1], "provider", klass, text),
                       _agent_part(parts[2], "type", klass, text))
        if klass in ("process", "vip") and len(parts) == 1:
            return cls(klass, None, klass)
        if len(parts) != 2 or not parts[1]:
            raise ValueError(f"an agent of class {klass} is written {klass}:NAME, not {_shown(text)!r}")
        return cls(klass, None, _agent_part(parts[1], "type", klass, text))

    def __str__(self) -> str:
        if self.cls == "ocf":
            return f"ocf:{self.provider}:{self.type}"
        if self.cls in ("process", "vip") and self.type == self.cls:
            return self.cls
        return f"{self.cls}:{self.type}"


def _agent(value: Any) -> AgentRef:
    if isinstance(value, AgentRef):
        return value
    if not isinstance(value, str):
        raise ValueError(f"agent must be a string such as ocf:heartbeat:IPaddr2, not {value!r}")
    return AgentRef.parse(value)


Agent = Annotated[AgentRef, BeforeValidator(_agent), PlainSerializer(str)]
