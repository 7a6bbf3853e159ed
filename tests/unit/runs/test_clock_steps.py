"""A wall clock that steps an hour forward and back, pure: the judge counts the expected times a forward
step jumped over as one missed run at most and never judges an expected time twice after a backward step;
durations seen from end to end go on the monotonic clock, and none is negative or longer than
`retention.abandon_after_seconds`; overdue is measured on the monotonic clock too."""

from __future__ import annotations

import math

import pytest

from sigma_exporter.config.model import Expectation, RetentionConfig, Timetable
from sigma_exporter.runs import accounting
from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.expectations import ForwardStep, judge, with_start
from sigma_exporter.runs.fold import fold
from sigma_exporter.runs.held import HeldRun, Observation
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.identities import Identities
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.records import IdentityRecord
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.replies import ReportReply, ReportResult
from tests.support.factories import api_ref, config

T0 = 1_800_000_000.0  # a multiple of 5
HOUR = 3600.0
EVERY_5 = Expectation("", "rpt-1", Timetable(every_seconds=5), grace_seconds=1.5)
KEY = ("", "rpt-1")


def watched(through: float) -> IdentityRecord:
    return IdentityRecord("", "rpt-1", watched_since=T0 - 60, judged_through=through)


# -- the judge ------------------------------------------------------------------------------------------
def test_a_forward_step_counts_the_times_it_jumped_over_as_one_missed_run() -> None:
    record = watched(T0)
    _, _, one_by_one = judge(EVERY_5, record, T0 + HOUR, ())
    assert len(one_by_one) == 719  # what the step would cost without knowing of it
    step = ForwardStep(landed=T0 + HOUR)
    after, verdict, missed = judge(EVERY_5, record, T0 + HOUR, (), step=step)
    assert missed == [T0 + 5] and after.missed_total == 1 and verdict.missed
    # The next judgement: the expected time still within its grace at the step was jumped over too.
    later, _, missed = judge(EVERY_5, after, T0 + HOUR + 2, (), step=ForwardStep(T0 + HOUR, counted=True))
    assert missed == [] and later.missed_total == 1
    # After the step's times, each missed time counts again, once.
    last, _, missed = judge(EVERY_5, later, T0 + HOUR + 7, (), step=ForwardStep(T0 + HOUR, counted=True))
    assert missed == [T0 + HOUR + 5] and last.missed_total == 2


def test_times_jumped_over_that_a_run_met_cost_nothing() -> None:
    record = watched(T0)
    for at in range(5, 30, 5):  # runs started every 5 s until the step
        record = with_start(record, T0 + at)
    after, _, missed = judge(EVERY_5, record, T0 + 28, (), step=ForwardStep(landed=T0 + 28))
    assert missed == [] and after.missed_total == 0


def test_a_backward_step_never_judges_an_expected_time_twice() -> None:
    record, _, missed = judge(EVERY_5, watched(T0), T0 + HOUR, (), step=ForwardStep(T0 + HOUR))
    assert len(missed) == 1
    through = record.judged_through
    assert through is not None and through >= T0 + HOUR - 5
    # Back an hour, then the wall clock lives through that hour again: nothing already judged comes again.
    total = record.missed_total
    for now in range(int(T0) + 2, int(T0 + HOUR), 7):
        record, verdict, missed = judge(EVERY_5, record, float(now), ())
        assert missed == [] and record.judged_through == through
        assert verdict.expected_at <= now
    assert record.missed_total == total
    # Past what was judged (T0 + HOUR was still within its grace at the step), each time is judged, once.
    record, _, missed = judge(EVERY_5, record, T0 + HOUR + 12, ())
    assert missed == [T0 + HOUR, T0 + HOUR + 5, T0 + HOUR + 10] and record.missed_total == total + 3


def test_overdue_goes_by_the_ages_given_not_by_the_wall_clock() -> None:
    limited = Expectation(
        "", "rpt-1", Timetable(every_seconds=HOUR), grace_seconds=600, max_duration_seconds=60
    )
    record = watched(T0)
    start = T0 + 10
    # The wall clock stepped an hour forward 20 s after the run started: by the wall it is overdue.
    _, verdict, _ = judge(limited, record, start + HOUR + 20, (start,))
    assert verdict.overdue
    _, verdict, _ = judge(limited, record, start + HOUR + 20, (start,), ages=(20.0,))
    assert not verdict.overdue and verdict.wake_at == pytest.approx(start + HOUR + 60)
    _, verdict, _ = judge(limited, record, start - HOUR + 61, (start,), ages=(61.0,))  # and after a step back
    assert verdict.overdue


# -- durations ------------------------------------------------------------------------------------------
def observed(run: HeldRun, status: str, wall: float, mono: float | None) -> Observation:
    report = ReportResult(report_id="rpt-1", report_name="Report", status=status)
    return Observation(run.ref, ReportReply(report), None, wall, True, mono)


def counted(run: HeldRun, identities: Identities, *seen: tuple[str, float, float | None]) -> float | None:
    before = False
    for status, wall, mono in seen:
        fold(run, observed(run, status, wall, mono))
        accounting.touch_identities(run, identities)
        accounting.count_if_final(run, identities, before, wall, RetentionConfig().abandon_after_seconds)
        before = True
    record = identities.get(KEY)
    assert record is not None
    return record.last_duration


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "backward"])
def test_a_run_seen_from_end_to_end_is_measured_on_the_monotonic_clock(step: float) -> None:
    run = HeldRun(api_ref("r1", registered_at=T0))
    run.first_seen_at = T0
    accounting.saw_start(run, T0 + 0.5, 100.5)  # joined half a second after its registration
    assert run.start_mono == 100.0
    took = counted(
        run, Identities((10.0, 60.0)), ("GENERATED", T0 + 1, 101.0), ("PUBLISHED", T0 + step + 3, 103.0)
    )
    assert took == 3.0


def test_a_run_not_seen_from_its_start_is_measured_on_the_wall_clock_within_bounds() -> None:
    longest = RetentionConfig().abandon_after_seconds
    run = HeldRun(api_ref("r1", registered_at=T0))  # restored after a restart: no monotonic start
    run.first_seen_at = T0
    run.since_mono = {"rpt-1": 50.0}
    assert accounting.measured(run, ["rpt-1"], T0, T0 + 30, longest) == 30.0
    assert accounting.measured(run, ["rpt-1"], T0, T0 - HOUR, longest) == 0.0  # a step back: not negative
    assert accounting.measured(run, ["rpt-1"], T0, T0 + 3 * 86400, longest) == longest
    run.start_mono = 40.0
    assert accounting.measured(run, ["rpt-1"], T0, T0 - HOUR, longest) == 10.0
    assert accounting.measured(run, ["rpt-1", "rpt-2"], T0, T0 + 5, longest) == 5.0  # one end not seen here
    assert accounting.measured(run, ["rpt-1"], T0, T0, math.inf) == 10.0


def test_a_run_without_a_monotonic_check_time_falls_back_to_the_wall_clock_clamped() -> None:
    run = HeldRun(api_ref("r1", registered_at=T0))
    run.first_seen_at = T0
    accounting.saw_start(run, T0, 100.0)
    # A status seen with a monotonic time, then the final one without: the stale one is not used.
    took = counted(run, Identities((10.0,)), ("GENERATED", T0 + 1, 101.0), ("PUBLISHED", T0 - HOUR, None))
    assert took == 0.0


# -- the holdings over a stepping clock ----------------------------------------------------------------
class Hands:
    def __init__(self) -> None:
        self.wall, self.mono = T0, 1000.0

    def tick(self, seconds: float, wall_extra: float = 0.0) -> None:
        self.mono += seconds
        self.wall += seconds + wall_extra


def test_holdings_count_one_missed_run_per_expectation_for_a_forward_step_and_none_again_after_the_step_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hands = Hands()
    clock = Clock(wall=lambda: hands.wall, mono=lambda: hands.mono)
    store = MemoryStore()
    holdings = Holdings(Registry(store, StateWriter(store), max_runs=10), (10.0,), Shard(), clock)
    expectations = [
        {"report_id": "rpt-1", "every_seconds": 5, "grace_seconds": 1.5},
        {"report_id": "rpt-2", "every_seconds": 5, "grace_seconds": 1.5, "max_duration_seconds": 120},
    ]
    holdings.use_config(config(api={"token": "t" * 16}, expectations=expectations), strict=True)
    holdings.registry.register(api_ref("slow", report_id="rpt-2", registered_at=hands.wall))
    holdings.take_arrivals()

    def judged() -> dict[str, int]:
        holdings.judge_expectations(clock.time())
        return {k[1]: holdings.identities.get(k).missed_total for k in holdings.expectations}  # type: ignore[union-attr]

    for _ in range(8):  # 40 s: the expected times missed by each, one by one
        hands.tick(5)
        before = judged()
    assert before == {"rpt-1": 6, "rpt-2": 6}
    hands.tick(0.5, wall_extra=HOUR)
    after = judged()
    assert after == {k: v + 1 for k, v in before.items()}
    assert not holdings.verdicts[("", "rpt-2")].overdue  # active 40 s of 120, by the monotonic clock
    hands.tick(1)
    assert judged() == after  # the time within its grace at the step was jumped over too
    hands.tick(5)
    stepped = judged()
    assert stepped == {k: v + 1 for k, v in after.items()}  # the first expected time after the step
    # Back an hour: nothing is judged again while the wall clock lives through the hour once more.
    hands.tick(0.5, wall_extra=-HOUR)
    for _ in range(10):
        hands.tick(5)
        assert judged() == stepped
    assert sum("clock_step" in r.__dict__ for r in caplog.records) == 2  # one per expectation
