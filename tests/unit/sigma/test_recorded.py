"""Recorded exchanges (tests/recorded/, the `--record` format) as parser cases: each recorded reply parses
as its file says (`"expect"`), or is refused with the expected typed error. (Replaying them through
`simulate --replay`: tests/integration/cli/test_replay.py.)"""

from __future__ import annotations

import pytest

from sigma_exporter.sigma.errors import SigmaError
from tests.support.recorded import Case, cases, parse

ALL = cases()


def test_the_vendor_samples_are_recorded() -> None:
    names = {case.name for case in ALL}
    assert {n.split("/")[0] for n in names} >= {"vendor-samples"}
    assert sum(case.expect is not None for case in ALL) >= 5


@pytest.mark.parametrize("case", ALL, ids=[case.name for case in ALL])
def test_a_recorded_reply_parses_as_expected(case: Case) -> None:
    try:
        got = parse(case)
    except SigmaError as exc:  # a rejected reply must be a typed error, and an expected one when said
        assert case.expect is not None and case.expect.get("error") == exc.reason, exc
        return
    if case.expect is not None:
        assert got == case.expect
