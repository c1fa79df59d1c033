"""Date expressions: ISO 8601 times, ranges, durations and date_spec, against a given `now`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hakeeper.spec.dates import add_duration, date_matches, parse_iso_duration, parse_range, parse_time
from hakeeper.spec.model import DateExpression, Rule


def ts(text: str) -> float:
    return parse_time(text).timestamp()


def test_time_formats() -> None:
    assert parse_time("2005-020") == datetime(2005, 1, 20, tzinfo=UTC)
    assert parse_time("2005-020T12:30") == datetime(2005, 1, 20, 12, 30, tzinfo=UTC)
    assert parse_time("2005-W03-4") == datetime(2005, 1, 20, tzinfo=UTC)
    assert parse_time("2019-09-20 15:10:52 +00:00") == datetime(2019, 9, 20, 15, 10, 52, tzinfo=UTC)
    assert parse_time("2019-09-23 18:00:00 -05:00") == datetime(2019, 9, 23, 23, 0, tzinfo=UTC)
    assert parse_time("2019-09-23T18:00Z") == datetime(2019, 9, 23, 18, 0, tzinfo=UTC)
    assert parse_time("2019-09-23T18:00:00+0200") == datetime(2019, 9, 23, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "2005-13-01", "2005-367", "2005-01-20T25:00",
                                  "2005-01-20 12:00 CET", "2005-W54-1"])
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_operations() -> None:
    def expr(**kw: object) -> DateExpression:
        return DateExpression.model_validate(kw)

    noon = ts("2005-020T12:00")
    assert date_matches(expr(operation="gt", start="2005-001"), noon)
    assert not date_matches(expr(operation="gt", start="2005-021"), noon)
    assert date_matches(expr(operation="lt", end="2005-021"), noon)
    assert not date_matches(expr(operation="lt", end="2005-020T12:00"), noon)  # strictly before
    assert not date_matches(expr(end="2005-001"), noon)  # in_range is the default operation
    assert date_matches(expr(start="2005-020T11:00", end="2005-020T12:00"), noon)  # bounds included
    assert date_matches(expr(start="2005-020T11:00", duration={"hours": 1}), noon)
    assert not date_matches(expr(start="2005-020T11:00", duration={"minutes": 59}), noon)
    spec = {"operation": "date_spec", "date-spec": {"hours": "9-16", "weekdays": "1-5"}}
    assert date_matches(expr(**spec), noon)  # 2005-01-20 was a Thursday
    assert not date_matches(expr(**spec), ts("2005-022T12:00"))  # a Saturday
    assert not date_matches(expr(**spec), ts("2005-020T17:00"))
    assert not date_matches(expr(operation="gt", start="2005-001"), None)  # no time known: false


def test_incomplete_expressions_are_refused() -> None:
    for data in ({"operation": "gt", "end": "2005-001"}, {"operation": "lt", "start": "2005-001"},
                 {"operation": "in_range"}, {"operation": "date_spec"},
                 {"operation": "gt", "start": "soon"}, {"operation": "date_spec", "date-spec": {"hours": "x"}}):
        with pytest.raises(ValidationError):
            DateExpression.model_validate(data)


def test_rules_hold_date_and_attribute_expressions_apart() -> None:
    rule = Rule.model_validate({"expressions": [{"attribute": "rack", "operation": "eq", "value": "r1"},
                                                {"operation": "lt", "end": "2030-01-01"}]})
    assert [type(e).__name__ for e in rule.expressions] == ["Expression", "DateExpression"]


def test_ranges_and_durations() -> None:
    assert parse_range("5") == (5, 5) and parse_range("9-16") == (9, 16)
    assert parse_range("9-") == (9, None) and parse_range("-16") == (None, 16)
    for bad in ("", "-", "a", "1-2-3"):
        with pytest.raises(ValueError):
            parse_range(bad)
    assert parse_iso_duration("P1Y2M3DT4H5M6S") == {"years": 1, "months": 2, "days": 3, "hours": 4,
                                                    "minutes": 5, "seconds": 6}
    with pytest.raises(ValueError):
        parse_iso_duration("PT")
    jan31 = datetime(2005, 1, 31, tzinfo=UTC)
    assert add_duration(jan31, {"months": 1}) == datetime(2005, 2, 28, tzinfo=UTC)  # clamped
    assert add_duration(jan31, {"years": 1, "days": 1}) == datetime(2006, 2, 1, tzinfo=UTC)


_times = st.integers(min_value=946_684_800, max_value=4_102_444_800)  # 2000 .. 2100


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S +00:00")


@given(_times, _times, _times)
def test_in_range_is_the_closed_interval(now: int, a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    expr = DateExpression.model_validate({"start": _iso(start), "end": _iso(end)})
    assert date_matches(expr, float(now)) == (start <= now <= end)


@given(_times, st.integers(min_value=0, max_value=10 ** 7))
def test_duration_equals_explicit_end(start: int, seconds: int) -> None:
    with_duration = DateExpression.model_validate({"start": _iso(start), "duration": {"seconds": seconds}})
    explicit = DateExpression.model_validate({"start": _iso(start), "end": _iso(start + seconds)})
    for now in (start + seconds, start + seconds + 1, start - 1):
        assert date_matches(with_duration, float(now)) == date_matches(explicit, float(now))


@given(_times)
def test_date_spec_hours_partition_the_day(now: int) -> None:
    hour = datetime.fromtimestamp(now, UTC).hour
    morning = DateExpression.model_validate({"operation": "date_spec", "date-spec": {"hours": "0-11"}})
    afternoon = DateExpression.model_validate({"operation": "date_spec", "date-spec": {"hours": "12-23"}})
    assert date_matches(morning, float(now)) == (hour < 12) != date_matches(afternoon, float(now))
