"""How long the poll loop may sleep before its next cycle. Pure."""

from __future__ import annotations


def seconds_to_wait(
    *,
    since_full: float,
    interval: float,
    now: float,
    next_due: float | None,
    judge_at: float | None,
) -> float:
    """Until the next full cycle (`interval` after the last one, which was `since_full` seconds ago), the
    next run's due time, or the next moment an expectation's verdict may change, whichever comes first
    (wall times compared with `now`). Zero or less: a cycle is due now."""
    wait = interval - since_full
    if next_due is not None:
        wait = min(wait, next_due - now)
    if judge_at is not None:
        wait = min(wait, judge_at - now)
    return wait
