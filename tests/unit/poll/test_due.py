"""Due times: the re-check rule (decay, ends confirmed once, PUBLISHED kept, config references capped and
never dropped, today's fixed rule, 0 for every cycle), and the queue that finds the due runs earliest first."""

from __future__ import annotations

import pytest

from sigma_exporter.config.model import PollConfig
from sigma_exporter.poll.due import DueQueue, next_check
from sigma_exporter.runs.held import HeldRun
from tests.support.factories import run

DEFAULTS = PollConfig()  # interval 60, first re-check 900, decay, cap 3600 for config references
DAY = 86400.0


def rechecks_in(held_run: HeldRun, poll: PollConfig, span: float) -> list[float]:
    """The re-check times of a run found unchanged at each re-check, over `span` after it became final."""
    times: list[float] = []
    at: float | None = 0.0
    while True:
        assert at is not None
        due = next_check(held_run, poll, at)
        if due is None or due > span:
            return times
        times.append(due)
        held_run.rechecks += 1
        at = due


def test_an_active_run_is_checked_every_interval() -> None:
    assert next_check(run("r", "GENERATED"), DEFAULTS, 100.0) == 160.0
    assert next_check(run("r"), DEFAULTS, 100.0) == 160.0  # never seen: not final


def test_a_failed_check_of_a_final_run_is_retried_after_the_interval() -> None:
    held = run("r", "FAILED", rechecks=1)
    held.up = False
    assert next_check(held, DEFAULTS, 100.0) == 160.0


@pytest.mark.parametrize("status", ["FAILED", "NOTIFIED", "NO_DATA_AVAILABLE", "NOTIFICATION_FAILED"])
@pytest.mark.parametrize("source", ["api", "schedule"])
def test_an_end_of_an_api_or_schedule_run_is_confirmed_once(status: str, source: str) -> None:
    assert rechecks_in(run("r", status, source=source), DEFAULTS, DAY) == [900.0]


def test_published_decays_doubling_and_gets_at_most_seven_rechecks_a_day() -> None:
    times = rechecks_in(run("r", "PUBLISHED"), DEFAULTS, DAY)
    assert times == [900.0, 2700.0, 6300.0, 13500.0, 27900.0, 56700.0]
    assert len(times) <= 7


def test_an_even_mix_of_outcomes_averages_at_most_three_rechecks_a_run() -> None:
    counts = [
        len(rechecks_in(run("r", s), DEFAULTS, DAY)) for s in ("PUBLISHED", "FAILED", "NO_DATA_AVAILABLE")
    ]
    assert sum(counts) / len(counts) <= 3


def test_a_group_is_an_end_only_when_every_member_is() -> None:
    assert rechecks_in(run("g", "FAILED", "NOTIFIED"), DEFAULTS, DAY) == [900.0]
    assert len(rechecks_in(run("g", "FAILED", "PUBLISHED"), DEFAULTS, DAY)) == 6


@pytest.mark.parametrize("source", ["config", "file"])
def test_config_references_decay_to_the_cap_and_are_never_dropped(source: str) -> None:
    times = rechecks_in(run("r", "FAILED", source=source), DEFAULTS, DAY)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[:3] == [900.0, 1800.0, 3600.0]
    assert set(gaps[3:]) == {3600.0}
    assert len(times) == 2 + int((DAY - 2700) // 3600)


def test_fixed_keeps_todays_rule_for_every_run() -> None:
    fixed = PollConfig(final_recheck="fixed")
    assert rechecks_in(run("r", "FAILED"), fixed, 3600.0) == [900.0, 1800.0, 2700.0, 3600.0]


def test_zero_checks_final_runs_every_cycle() -> None:
    every = PollConfig(final_recheck_seconds=0)
    assert next_check(run("r", "FAILED", rechecks=5), every, 100.0) == 160.0


def test_a_recheck_never_comes_sooner_than_the_interval() -> None:
    short = PollConfig(interval_seconds=60, final_recheck_seconds=10)
    assert next_check(run("r", "PUBLISHED"), short, 100.0) == 160.0


def test_the_queue_pops_due_keys_earliest_first_and_keeps_the_rest() -> None:
    queue: DueQueue[str] = DueQueue()
    queue.set("late", 30.0)
    queue.set("soon", 10.0)
    queue.set("middle", 20.0)
    assert queue.next_due() == 10.0
    assert queue.pop_due(25.0) == ["soon", "middle"]
    assert len(queue) == 1 and "late" in queue and queue.next_due() == 30.0


def test_set_replaces_a_due_time_and_remove_forgets_it() -> None:
    queue: DueQueue[str] = DueQueue()
    queue.set("a", 10.0)
    queue.set("a", 50.0)  # the old entry is stale, not popped
    queue.set("b", 20.0)
    queue.remove("b")
    assert queue.pop_due(30.0) == []
    assert queue.next_due() == 50.0
    assert queue.pop_due(50.0) == ["a"]
    assert queue.next_due() is None


def test_many_replacements_do_not_grow_the_heap_without_bound() -> None:
    queue: DueQueue[int] = DueQueue()
    for step in range(10_000):
        queue.set(step % 10, float(step))
    assert len(queue) == 10
    assert len(queue._heap) <= 4 * 10 + 64 + 1
    assert sorted(queue.pop_due(1e9)) == list(range(10))
