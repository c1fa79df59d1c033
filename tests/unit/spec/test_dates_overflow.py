"""Dates at the edge of what Python can hold: a located error or a rule that never ends, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hakeeper.spec.dates import date_matches, end_of, parse_time
from hakeeper.spec.model import DateExpression, DurationSpec


def test_midnight_after_the_last_day_is_an_error_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="after year 9999"):
        parse_time("9999-12-31T24:00:00")


def test_a_range_ending_after_year_9999_has_not_ended() -> None:
    expr = DateExpression(start="9999-06-01", duration=DurationSpec(years=1))
    assert end_of(expr) == datetime.max.replace(tzinfo=UTC)
    assert not date_matches(expr, datetime(2026, 1, 1, tzinfo=UTC).timestamp())  # not started yet
    started = DateExpression(start="2020-01-01", duration=DurationSpec(years=100))
    assert date_matches(started, datetime(2026, 1, 1, tzinfo=UTC).timestamp())
