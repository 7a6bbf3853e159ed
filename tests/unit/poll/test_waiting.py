"""How long the poll loop sleeps: the earliest of the next full cycle, the next due run, the next verdict."""

from __future__ import annotations

import pytest

from sigma_exporter.poll.waiting import seconds_to_wait


@pytest.mark.parametrize(
    ("since_full", "next_due", "judge_at", "expected"),
    [
        (10.0, None, None, 50.0),  # nothing due: until the next full cycle
        (10.0, 1_000_020.0, None, 20.0),  # a run due sooner
        (10.0, 1_000_020.0, 1_000_005.0, 5.0),  # a verdict may change sooner still
        (10.0, 1_000_200.0, 1_000_300.0, 50.0),  # both later than the full cycle
        (70.0, None, None, -10.0),  # the full cycle is late: now
        (0.0, 999_990.0, None, -10.0),  # a run overdue: now
    ],
)
def test_the_earliest_reason_wins(
    since_full: float, next_due: float | None, judge_at: float | None, expected: float
) -> None:
    got = seconds_to_wait(
        since_full=since_full, interval=60.0, now=1_000_000.0, next_due=next_due, judge_at=judge_at
    )
    assert got == pytest.approx(expected)
