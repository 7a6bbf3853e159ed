"""Judging expected runs: did each expected time of an identity see a run start, is a run taking too long.
Pure: an identity's record, the start times of its active runs and the time in; the updated record and a
`Verdict` out.

An expected time `t` is met by a run that started in `[t - early, t + grace]`, where `early` is the smaller
of the grace and half the gap to the previous expected time (a job started a little before its time is
on time, never one meant for the time before). `t` is judged once `t + grace` has passed, once only (the
judged-through time is kept in the state store), and only when this exporter was watching the identity
for the whole window: expected times from before the expectation was first seen are never counted.
`missed` stays 1 from then until a run of the identity starts (late) or the next expected time is met.

Clock steps. A backward step never judges an expected time again: the judged-through time only moves
forward. After a forward step, the expected times up to the first judgement that saw it (`ForwardStep`)
count as at most one missed run, not one per period the step jumped over. A run's age against
`max_duration_seconds` is measured on the monotonic clock when the exporter saw it start (`ages`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sigma_exporter.config.model import Expectation
from sigma_exporter.runs import timetable
from sigma_exporter.runs.store.records import IdentityRecord

#: Start times kept per identity (the newest), enough to judge any window an operator would configure.
MAX_STARTS = 32
#: Expected times judged per identity in one go (after a long downtime with a tight timetable).
JUDGE_LIMIT = 10_000


@dataclass(frozen=True)
class Verdict:
    """Where an identity stands against its expectation now, as the metrics and the status page show it;
    `wake_at` tells the poll loop when to judge again."""

    expected_at: float  # the latest expected time that has passed
    next_expected_at: float
    missed: bool
    overdue: bool
    missed_total: int
    wake_at: float  # when the verdict may next change without a run arriving
    #: Expected times this judgement found met: (expected time, start of the run that met it).
    met: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class ForwardStep:
    """A forward step of the wall clock: the missed expected times up to `landed` (the wall time of the first
    judgement after the step) count as one missed run at most; `counted` when one already was."""

    landed: float
    counted: bool = False


def with_start(record: IdentityRecord, at: float) -> IdentityRecord:
    """`record` knowing of a run that started at `at` (the same start twice is one start)."""
    if at in record.starts:
        return record
    starts = list(record.starts)
    bisect.insort(starts, at)
    return replace(record, starts=tuple(starts[-MAX_STARTS:]))


def early_tolerance(expectation: Expectation, expected: float) -> float:
    """How long before expected time `expected` a run may start and still meet it: the smaller of the grace
    and half the gap to the previous expected time."""
    before = timetable.previous(expectation.timetable, expected - 0.001)
    return min(expectation.grace_seconds, (expected - before) / 2)


def judge(
    expectation: Expectation,
    record: IdentityRecord,
    now: float,
    active_starts: Sequence[float],
    *,
    ages: Sequence[float] | None = None,
    step: ForwardStep | None = None,
) -> tuple[IdentityRecord, Verdict, list[float]]:
    """The record with its judgements brought up to `now`, the verdict, and the expected times newly missed.
    `ages`: how long each active run has been active (default `now` less its start); `step`: a forward step
    of the wall clock whose jumped-over expected times count as one missed run at most."""
    table, grace = expectation.timetable, expectation.grace_seconds
    jumped = step.counted if step is not None else False
    starts = sorted({*record.starts, *active_starts})
    watched = record.watched_since if record.watched_since is not None else now
    through = record.judged_through if record.judged_through is not None else watched
    missed: list[float] = []
    met: list[tuple[float, float]] = []
    for expected in timetable.between(table, through, now - grace, JUDGE_LIMIT):
        early = early_tolerance(expectation, expected)
        through = expected
        if expected - early < watched:
            continue  # its window opened before this exporter watched: unknown, not missed
        low = bisect.bisect_left(starts, expected - early)
        if low == len(starts) or starts[low] > expected + grace:
            if step is not None and expected <= step.landed:
                if jumped:
                    continue  # jumped over by the step, which counted one missed run already
                jumped = True
            missed.append(expected)
        else:
            met.append((expected, starts[low]))
    latest = timetable.previous(table, now - grace)  # the latest expected time whose grace has passed
    early = early_tolerance(expectation, latest)
    late = latest - early >= watched and (not starts or starts[-1] < latest - early)
    limit = expectation.max_duration_seconds
    if ages is None:
        ages = [now - start for start in active_starts]
    overdue = limit is not None and any(age > limit for age in ages)
    expected_at = timetable.previous(table, now)
    next_expected = timetable.following(table, now)
    wake = min(next_expected, timetable.following(table, now - grace) + grace)
    if limit is not None:
        pending = [now + limit - age for age in ages if age <= limit]
        wake = min([wake, *pending])
    updated = replace(
        record,
        watched_since=watched,
        judged_through=max(through, record.judged_through or through),
        missed_total=record.missed_total + len(missed),
    )
    verdict = Verdict(
        expected_at=expected_at,
        next_expected_at=next_expected,
        missed=late,
        overdue=overdue,
        missed_total=updated.missed_total,
        wake_at=wake,
        met=tuple(met),
    )
    return updated, verdict, missed
