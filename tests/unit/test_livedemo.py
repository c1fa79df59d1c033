"""The shell every lab demo runs in (netlab/livedemo.py): exit status from the outcome, cleanup
whatever happened, the ticker's lines."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from conftest import needs_root
from hakeeper.netlab.livedemo import Closable, Say, first_within, run_lab_demo, seconds, ticker


@dataclass
class Result:
    ok: bool

    def result_line(self) -> str:
        return f"RESULT ok={self.ok}"


@dataclass
class FakeLab:
    closed: int = 0
    log: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize(("ok", "status"), [(True, 0), (False, 1)])
def test_the_outcome_decides_the_exit_status_and_the_lab_is_closed(ok: bool, status: int) -> None:
    needs_root()
    lab, said = FakeLab(), []

    def body(base: str, say: Say, labs: list[Closable]) -> Result:
        labs.append(lab)
        say("step")
        return Result(ok)

    assert run_lab_demo("t", ["sh"], body, say=said.append) == status
    assert lab.closed == 1 and said[-1] == f"RESULT ok={ok}" and "] step" in said[0]


def test_a_failing_scenario_still_cleans_up_and_says_why() -> None:
    needs_root()
    lab, said = FakeLab(), []

    def body(base: str, say: Say, labs: list[Closable]) -> Result:
        labs.append(lab)
        raise TimeoutError("no cluster")

    assert run_lab_demo("t", ["sh"], body, say=said.append) == 1
    assert lab.closed == 1 and any("failed: TimeoutError: no cluster" in line for line in said)
    assert not any(line.startswith("RESULT") for line in said)


def test_a_missing_program_is_named_and_nothing_runs() -> None:
    needs_root()
    ran: list[str] = []
    said: list[str] = []

    def body(base: str, say: Say, labs: list[Closable]) -> Result:
        ran.append(base)
        return Result(True)

    status = run_lab_demo("t", ["sh", "no-such-program-here"], body, say=said.append)
    assert status == 1 and not ran and said == ["hakeeper demo t: missing: no-such-program-here (see scripts/setup)"]


def test_ticker_and_first_within() -> None:
    lines: list[str] = []
    with ticker(lines.append, lambda: "state", 0.05):
        time.sleep(0.3)
    count = len(lines)
    time.sleep(0.15)
    assert count >= 2 and len(lines) == count and set(lines) == {"  state"}  # stops with the body
    flag = threading.Event()
    threading.Timer(0.1, flag.set).start()
    assert first_within(lambda: 1.5 if flag.is_set() else None, 5) == 1.5
    assert first_within(lambda: None, 0.1) is None
    assert (seconds(None), seconds(2.345)) == ("none", "2.35")
