"""Pacemaker's date expressions, evaluated purely against a given time (`now`, seconds since the epoch).

A rule's `date_expression` is one of:

- `gt` (now is after `start`), `lt` (now is before `end`),
- `in_range` (start <= now <= end; `end` may instead be `start` plus a duration),
- `date_spec` (every field given, such as `hours: 9-16` or `weekdays: 1-5`, contains now's value).

Times are ISO 8601 as Pacemaker's crm_time reads them: `2005-01-20`, `2005-020` (day of the year),
`2005-W03-4` (week date), then optionally `T` or a space and `12:30[:00]`, then optionally `Z` or an
offset (`+02:00`, `-0500`). A time without an offset is read as UTC: Pacemaker uses the local zone,
and its regression suite runs in UTC. Nothing here reads a clock.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hakeeper.spec.model import DateExpression, DateSpec, DurationSpec

_DATE = re.compile(r"(?P<y>\d{4})-(?:(?P<mo>\d{2})-(?P<d>\d{2})|W(?P<w>\d{2})-(?P<wd>\d)|(?P<yd>\d{3}))")
_TIME = re.compile(r"(?P<h>\d{2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?")
_OFFSET = re.compile(r"Z|(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2})?")
_ISO_DURATION = re.compile(r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
                           r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?")
DURATION_FIELDS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
DATE_SPEC_FIELDS = ("years", "months", "monthdays", "hours", "minutes", "seconds", "yeardays",
                    "weekyears", "weeks", "weekdays")


def parse_time(text: str) -> datetime:
    """An ISO 8601 date and time (see the module's docstring); ValueError naming the text if not one."""
    rest = text.strip()
    date = _DATE.match(rest)
    if date is None:
        raise ValueError(f"date expected (such as 2019-09-20 15:10:52 +00:00), not {text!r}")
    try:
        year = int(date["y"])
        if date["mo"]:
            day = datetime(year, int(date["mo"]), int(date["d"]))
        elif date["w"]:
            day = datetime.fromisocalendar(year, int(date["w"]), int(date["wd"]))
        else:
            ordinal = int(date["yd"])
            if not 1 <= ordinal <= (366 if calendar.isleap(year) else 365):
                raise ValueError("day of the year out of range")
            day = datetime(year, 1, 1) + timedelta(days=ordinal - 1)
    except ValueError as exc:
        raise ValueError(f"not a valid date: {text!r} ({exc})") from None
    rest = rest[date.end():]
    if rest[:1] in ("T", " ") and rest[1:2].isdigit():
        clock = _TIME.match(rest[1:])
        assert clock is not None  # a digit follows
        hours, minutes, seconds = int(clock["h"]), int(clock["mi"] or 0), int(clock["s"] or 0)
        if hours > 24 or minutes > 59 or seconds > 60 or (hours == 24 and minutes + seconds):
            raise ValueError(f"not a valid time of day in {text!r}")
        try:
            day += timedelta(hours=hours, minutes=minutes, seconds=seconds)
        except OverflowError:  # 24:00 on 9999-12-31: past the last date Python can hold
            raise ValueError(f"not a valid date: {text!r} (after year 9999)") from None
        rest = rest[1 + clock.end():]
    rest = rest.strip()
    zone = UTC
    if rest:
        offset = _OFFSET.fullmatch(rest)
        if offset is None:
            raise ValueError(f"unexpected {rest!r} after the date in {text!r}")
        if offset["sign"]:
            delta = timedelta(hours=int(offset["oh"]), minutes=int(offset["om"] or 0))
            zone = timezone(delta if offset["sign"] == "+" else -delta)
    return day.replace(tzinfo=zone)


def parse_iso_duration(text: str) -> dict[str, int]:
    """`P1Y2M3DT4H5M6S` (any part may be left out) → its parts."""
    match = _ISO_DURATION.fullmatch(text.strip().upper())
    if match is None or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"ISO 8601 duration expected (such as P1D or PT30M), not {text!r}")
    return {k: int(v) for k, v in match.groupdict().items() if v}


def add_duration(start: datetime, parts: dict[str, int]) -> datetime:
    """Calendar arithmetic: months and years keep the day of the month (clamped at its end)."""
    months = start.month - 1 + parts.get("months", 0) + 12 * parts.get("years", 0)
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    moved = start.replace(year=year, month=month, day=day)
    return moved + timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0),
                             hours=parts.get("hours", 0), minutes=parts.get("minutes", 0),
                             seconds=parts.get("seconds", 0))


def parse_range(text: str) -> tuple[int | None, int | None]:
    """A date_spec field: `5`, `9-16`, `9-` or `-16` (bounds included)."""
    match = re.fullmatch(r"\s*(\d*)\s*(-?)\s*(\d*)\s*", text)
    if match is None or not (match[1] or match[3]) or (not match[2] and match[3]):
        raise ValueError(f"a number or a range such as 9-16 expected, not {text!r}")
    low = int(match[1]) if match[1] else None
    high = (int(match[3]) if match[3] else None) if match[2] else low
    return low, high


def duration_parts(duration: DurationSpec) -> dict[str, int]:
    return {name: int(value) for name in DURATION_FIELDS if (value := getattr(duration, name)) is not None}


def end_of(expr: DateExpression) -> datetime | None:
    if expr.end is not None:
        return parse_time(expr.end)
    if expr.start is not None and expr.duration is not None:
        try:
            return add_duration(parse_time(expr.start), duration_parts(expr.duration))
        except (OverflowError, ValueError):
            # The end falls after year 9999: no time hakeeper will ever evaluate is past it.
            return datetime.max.replace(tzinfo=UTC)
    return None


def spec_matches(spec: DateSpec, now: datetime) -> bool:
    iso = now.isocalendar()
    actual = {"years": now.year, "months": now.month, "monthdays": now.day, "hours": now.hour,
              "minutes": now.minute, "seconds": now.second, "yeardays": now.timetuple().tm_yday,
              "weekyears": iso[0], "weeks": iso[1], "weekdays": iso[2]}
    for name in DATE_SPEC_FIELDS:
        text = getattr(spec, name)
        if text is None:
            continue
        low, high = parse_range(text)
        value = actual[name]
        if (low is not None and value < low) or (high is not None and value > high):
            return False
    return True


def date_matches(expr: DateExpression, now: float | None) -> bool:
    """Whether the expression holds at `now`; with no evaluation time known, it does not."""
    if now is None:
        return False
    when = datetime.fromtimestamp(now, UTC)
    if expr.operation == "date_spec":
        return expr.date_spec is not None and spec_matches(expr.date_spec, when)
    if expr.operation == "gt":
        return expr.start is not None and when > parse_time(expr.start)
    if expr.operation == "lt":
        return expr.end is not None and when < parse_time(expr.end)
    start = parse_time(expr.start) if expr.start is not None else None
    end = end_of(expr)
    if start is None and end is None:
        return False
    return (start is None or when >= start) and (end is None or when <= end)
