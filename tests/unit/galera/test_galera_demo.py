"""The galera demo's verdict (the demo itself runs in tests/integration/galera/test_galera_vip.py)."""

from __future__ import annotations

from hakeeper.galera.demo import Outcome


def test_the_demo_passes_only_when_both_steps_resumed_and_nothing_is_missing() -> None:
    good = Outcome(kill_resume_s=3.2, outage_writable_s=41.0, acknowledged=900, missing=0, checked=True, verdict="")
    assert good.ok
    assert good.result_line() == "RESULT kill_resume_s=3.20 outage_writable_s=41.00 acknowledged=900 missing=0"
    assert not Outcome(3.2, 41.0, 900, 1, False, "").ok  # a row lost
    assert not Outcome(3.2, 41.0, 900, 0, False, "").ok  # the nodes disagree or one is unreachable
    assert not Outcome(None, 41.0, 900, 0, True, "").ok  # writes never resumed after the kill
    assert not Outcome(3.2, None, 900, 0, True, "").ok  # nor after the outage
    assert not Outcome(3.2, 41.0, 0, 0, True, "").ok  # nothing was written: nothing was shown
    assert "outage_writable_s=none" in Outcome(3.2, None, 1, 0, True, "").result_line()
