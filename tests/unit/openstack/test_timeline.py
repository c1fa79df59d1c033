"""The failover analysis: outage and lost requests from the client's samples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.openstack.timeline import Sample, analyse, count_lost, summary_line


def stream(pattern: str, start: float = 10.0, step: float = 0.02) -> list[Sample]:
    """'.' a good request, 'x' a failed one, one every `step` seconds."""
    return [Sample(start + i * step, c == ".", "c2" if c == "." else None, 1.0) for i, c in enumerate(pattern)]


def test_outage_from_first_failure_to_good_after_last() -> None:
    samples = stream("....." + "xxxxx" + ".x" + "....")  # a straggler after one success
    r = analyse(samples, "c1", crash_at=10.09, until=20.0)
    assert r.lost == 6
    assert r.first_failed_at == samples[5].t
    assert r.first_good_at == samples[12].t
    assert round(r.outage_ms) == 140


def test_no_failure_no_outage() -> None:
    r = analyse(stream("........"), "c1", crash_at=10.05, until=20.0)
    assert r.lost == 0 and r.outage_ms == 0.0


def test_never_recovered_is_nan_and_skipped_by_the_median() -> None:
    bad = analyse(stream("...xxxx"), "c1", crash_at=10.05, until=20.0)
    assert bad.outage_ms != bad.outage_ms
    good = analyse(stream("..xx.."), "c1", crash_at=10.03, until=20.0)
    assert "summary: outage 40 ms" in summary_line([bad, good])


@given(st.text(alphabet=".x", min_size=1, max_size=200))
def test_lost_counts_failures_in_the_window(pattern: str) -> None:
    samples = stream(pattern)
    r = analyse(list(reversed(samples)), "c1", crash_at=10.0, until=100.0)  # any arrival order
    assert r.lost == pattern.count("x") == count_lost(samples, 0, 100)
    if "x" in pattern:
        last = pattern.rindex("x")
        recovered = "." in pattern[last:]
        assert (r.first_good_at is not None) == recovered
        if recovered:
            assert r.outage_ms >= (last - pattern.index("x")) * 20 - 1e-6
