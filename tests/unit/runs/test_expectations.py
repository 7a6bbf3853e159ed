"""Expectations, pure: the timetable around a moment (cron in a time zone through both daylight-saving
changes, every_seconds), and the judging of expected runs (met, missed once, late, overdue, restarts)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sigma_exporter.config.model import Expectation, Timetable
from sigma_exporter.runs import timetable
from sigma_exporter.runs.expectations import judge, with_start
from sigma_exporter.runs.store.jsonforms import identity_json, identity_of
from sigma_exporter.runs.store.records import IdentityRecord

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def firings(table: Timetable, start: float, end: float) -> list[str]:
    zone = ZoneInfo(table.timezone)
    return [
        datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M %Z")
        for t in timetable.between(table, start, end, 1000)
    ]


# -- daylight saving: neither doubled nor dropped ----------------------------------------------------------
DST_CASES = [
    # (zone, cron, window start, window end, the firings expected)
    pytest.param(
        "Europe/London",
        "30 1 * * *",
        (2026, 3, 28, 12),
        (2026, 3, 30, 12),
        ["03-29 02:00 BST", "03-30 01:30 BST"],
        id="london-spring-daily-in-the-skipped-hour-runs-at-the-jump",
    ),
    pytest.param(
        "Europe/London",
        "30 1 * * *",
        (2026, 10, 24, 12),
        (2026, 10, 26, 12),
        ["10-25 01:30 BST", "10-26 01:30 GMT"],
        id="london-autumn-daily-in-the-repeated-hour-runs-once",
    ),
    pytest.param(
        "Europe/London",
        "0 6 * * 1-5",
        (2026, 3, 27, 12),
        (2026, 3, 31, 12),
        ["03-30 06:00 BST", "03-31 06:00 BST"],
        id="london-spring-weekday-0600-unaffected",
    ),
    pytest.param(
        "America/New_York",
        "30 2 * * *",
        (2026, 3, 7, 12),
        (2026, 3, 9, 12),
        ["03-08 03:00 EDT", "03-09 02:30 EDT"],
        id="new-york-spring-0230-does-not-exist-runs-at-0300",
    ),
    pytest.param(
        "America/New_York",
        "30 1 * * *",
        (2026, 10, 31, 12),
        (2026, 11, 2, 12),
        ["11-01 01:30 EDT", "11-02 01:30 EST"],
        id="new-york-autumn-0130-twice-runs-once",
    ),
    pytest.param(
        "Europe/London",
        "0 * * * *",
        (2026, 10, 25, 0, 30),
        (2026, 10, 25, 3, 30),
        ["10-25 01:00 BST", "10-25 01:00 GMT", "10-25 02:00 GMT", "10-25 03:00 GMT"],
        id="london-autumn-hourly-keeps-firing-every-real-hour",
    ),
]


@pytest.mark.parametrize(("zone", "cron", "start", "end", "expected"), DST_CASES)
def test_daylight_saving_changes_neither_double_nor_drop_a_run(
    zone: str, cron: str, start: tuple[int, ...], end: tuple[int, ...], expected: list[str]
) -> None:
    table = Timetable(cron=cron, timezone=zone)
    tz = ZoneInfo(zone)
    assert firings(table, local(tz, *start), local(tz, *end)) == expected


def test_previous_and_following_bracket_a_moment_and_include_an_exact_hit() -> None:
    table = Timetable(cron="0 6 * * *", timezone="Europe/London")
    six = local(LONDON, 2026, 7, 1, 6)
    assert timetable.previous(table, six) == six
    assert timetable.previous(table, six - 1) == six - 86400
    assert timetable.following(table, six) == six + 86400
    assert timetable.following(table, six - 0.5) == six
    every = Timetable(every_seconds=300)
    assert timetable.previous(every, 1_000_000_123.0) == 1_000_000_200.0 - 300
    assert timetable.following(every, 1_000_000_200.0) == 1_000_000_500.0


# -- judging --------------------------------------------------------------------------------------------
T0 = 1_800_000_000.0  # a multiple of 60 and of 3600
HOURLY = Expectation("", "rpt-hourly", Timetable(every_seconds=3600), grace_seconds=600)


def fresh(watched: float) -> IdentityRecord:
    return IdentityRecord("", "rpt-hourly", watched_since=watched)


def test_a_run_started_within_grace_meets_the_expected_time() -> None:
    record = with_start(fresh(T0 - 3600), T0 + 120)
    updated, verdict, missed = judge(HOURLY, record, T0 + 700, ())
    assert missed == [] and not verdict.missed and verdict.missed_total == 0
    assert verdict.expected_at == T0 and verdict.next_expected_at == T0 + 3600
    assert updated.judged_through == T0


def test_a_run_started_a_little_early_is_on_time_but_not_one_meant_for_the_hour_before() -> None:
    early = with_start(fresh(T0 - 1000), T0 - 500)  # within min(grace, half the period) before T0
    assert judge(HOURLY, early, T0 + 700, ())[2] == []
    way_early = with_start(fresh(T0 - 1000), T0 - 700)  # outside the 600 s early window
    assert judge(HOURLY, way_early, T0 + 700, ())[2] == [T0]


def test_a_missed_run_is_counted_once_and_the_gauge_holds_until_a_run_starts() -> None:
    record = fresh(T0 - 3600)
    record, verdict, missed = judge(HOURLY, record, T0 + 599, ())
    assert missed == [] and not verdict.missed  # still within grace
    record, verdict, missed = judge(HOURLY, record, T0 + 601, ())
    assert missed == [T0] and verdict.missed and verdict.missed_total == 1
    record, verdict, missed = judge(HOURLY, record, T0 + 1800, ())  # judged again: not counted again
    assert missed == [] and verdict.missed and verdict.missed_total == 1
    record = with_start(record, T0 + 1900)  # someone starts it late
    record, verdict, missed = judge(HOURLY, record, T0 + 2000, ())
    assert not verdict.missed and verdict.missed_total == 1


def test_expected_times_before_the_exporter_watched_are_never_counted() -> None:
    record, verdict, missed = judge(HOURLY, IdentityRecord("", "rpt-hourly"), T0 + 900, ())
    assert record.watched_since == T0 + 900 and missed == [] and not verdict.missed
    record, verdict, missed = judge(HOURLY, record, T0 + 3600 + 601, ())
    assert missed == [T0 + 3600] and verdict.missed_total == 1


def test_downtime_misses_are_counted_once_after_a_restart_through_the_store_record() -> None:
    record, _, missed = judge(HOURLY, with_start(fresh(T0 - 3600), T0 + 100), T0 + 700, ())
    assert missed == []
    stored = identity_of("", "rpt-hourly", identity_json(record))  # what a restart reads back
    assert stored == record
    after, verdict, missed = judge(HOURLY, stored, T0 + 3 * 3600 + 700, ())
    assert missed == [T0 + 3600, T0 + 7200, T0 + 3 * 3600]
    _, verdict2, missed2 = judge(
        HOURLY, identity_of("", "rpt-hourly", identity_json(after)), T0 + 4 * 3600, ()
    )
    assert missed2 == [] and verdict2.missed_total == 3 == verdict.missed_total


def test_overdue_while_an_active_run_outlives_max_duration() -> None:
    limited = Expectation("", "rpt-hourly", Timetable(every_seconds=3600), 600, max_duration_seconds=1200)
    record = with_start(fresh(T0 - 3600), T0 + 60)
    _, verdict, _ = judge(limited, record, T0 + 1200, (T0 + 60,))
    assert not verdict.overdue and verdict.wake_at == T0 + 1260
    _, verdict, _ = judge(limited, record, T0 + 1261, (T0 + 60,))
    assert verdict.overdue
    _, verdict, _ = judge(limited, record, T0 + 1261, ())  # the run ended
    assert not verdict.overdue
    _, verdict, _ = judge(HOURLY, record, T0 + 99999, (T0 + 60,))  # no max_duration: never overdue
    assert not verdict.overdue


def test_starts_are_kept_once_each_and_bounded() -> None:
    record = IdentityRecord("", "r")
    for n in range(40):
        record = with_start(record, T0 + n)
    assert with_start(record, T0 + 39) is record
    assert record.starts == tuple(T0 + n for n in range(8, 40))


def test_cron_expectation_across_the_autumn_change_judges_the_repeated_hour_once() -> None:
    daily = Expectation("", "rpt", Timetable(cron="30 1 * * *", timezone="Europe/London"), grace_seconds=900)
    watched = local(LONDON, 2026, 10, 24, 12)
    record = IdentityRecord("", "rpt", watched_since=watched)
    record = with_start(record, local(LONDON, 2026, 10, 25, 1, 31))  # the first 01:31 (BST)
    _, verdict, missed = judge(daily, record, local(LONDON, 2026, 10, 25, 12), ())
    assert missed == [] and verdict.missed_total == 0
    _, verdict, missed = judge(
        daily, IdentityRecord("", "rpt", watched_since=watched), local(LONDON, 2026, 10, 25, 12), ()
    )
    assert missed == [local(LONDON, 2026, 10, 25, 1, 30)]  # one expected time, one miss, not two
