"""Every reader an operator can hand a file to, fed malformed inputs through `hakeeper.cli.main`.

Each input runs in a forked child bounded to 500 MB of address space and 10 s (see fuzzrun.py);
the contract checked is issue 9's: exit 0 or 2, a located one-line error with 2, no traceback, no
secret echoed, nothing left behind after a refusal, no injected line in a generated file, and the
inputs the contract says must be refused (negative counts, NaN, names that escape) refused.

Deterministic: each reader's inputs come from a fixed seed. HAKEEPER_FUZZ_MUTATIONS sets how many
byte-level mutations of the seed corpus each reader gets on top of the structured classes;
HAKEEPER_FUZZ_REPRO=DIR saves every failing input there. bench/fuzz_readers.py runs many more.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import fuzzgen
import fuzzrun
import pytest
from fuzzreport import save_reproducer, summary

pytest_plugins = ["fuzzfixtures"]  # the suite's fixtures (see fuzzfixtures.py for why not a conftest)

pytestmark = pytest.mark.slow  # about 20 s on an idle 2-core machine; part of every run all the same

MUTATIONS = int(os.environ.get("HAKEEPER_FUZZ_MUTATIONS", "12"))
SEED = 9  # issue 9


@pytest.mark.parametrize("reader", sorted(fuzzgen.READERS))
def test_reader_keeps_the_contract(reader: str, tmp_path: Path, secret: tuple[str, str], store: str) -> None:
    secret_path, marker = secret
    rnd = random.Random(f"{reader}:{SEED}")
    failed = []
    for i, case in enumerate(fuzzgen.cases(reader, rnd, secret_path, MUTATIONS)):
        outcome = fuzzrun.run_case(case, tmp_path / f"c{i}", marker)
        if outcome.failures:
            failed.append(outcome)
            if os.environ.get("HAKEEPER_FUZZ_REPRO"):
                save_reproducer(Path(os.environ["HAKEEPER_FUZZ_REPRO"]), outcome)
    if failed:
        pytest.fail(f"{len(failed)} of {i + 1} input(s) broke the contract:\n" + summary(failed), pytrace=False)
