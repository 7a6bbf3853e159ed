"""What a report's history keeps: each ended run once (report, group as a whole, each member, lost), with
Sigma's error redacted and escaped; each judged expected time, on time, missed, or met late by a run that
started after the grace."""

from __future__ import annotations

from dataclasses import replace

from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.held import Observation
from sigma_exporter.runs.history import MAX_ERROR_CHARS, escaped
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.jsonforms import identity_json, identity_of
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.records import Changes, ExpectedRun, HistoryRun, Loaded
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.errors import BadRequestError
from sigma_exporter.sigma.replies import GroupReply, ReportResult
from tests.support.factories import api_ref, config, seen

SECRET = "s3cret-client-token"
T0 = 1_800_000_000.0  # a whole minute


def holdings(clock: Clock | None = None) -> Holdings:
    store = MemoryStore()
    registry = Registry(store, StateWriter(store), max_runs=100)
    return Holdings(registry, (10.0, 60.0), Shard(), clock, redact=lambda s: s.replace(SECRET, "<secret>"))


def test_a_failed_run_is_kept_once_with_its_error_redacted_and_escaped() -> None:
    h = holdings()
    ref = api_ref("ref-1", registered_at=1000.0)
    h.registry.register(ref)
    h.take_arrivals()
    h.account(seen(ref, "GENERATED", 1001.0))
    assert h.changes().history == ()
    message = f"query failed\nwith token {SECRET}\x1b[31m"
    h.account(seen(ref, "FAILED", 1031.0, error_code="RPT-500", error_msg=message))
    h.account(seen(ref, "FAILED", 1100.0, error_code="RPT-500", error_msg=message))  # confirmed: not again
    (run,) = h.changes().history
    assert run == HistoryRun(
        "",
        "rpt-1",
        "ref-1",
        "report",
        "api",
        started_at=1000.0,  # not submitted: first seen, at its registration
        final_at=1031.0,
        duration_seconds=31.0,
        outcome="failure",
        error_code="RPT-500",
        error_message="query failed\\nwith token <secret>\\x1b[31m",
    )


def test_a_submitted_run_has_its_start_and_duration() -> None:
    h = holdings()
    ref = api_ref("ref-2")
    h.registry.register(replace(ref, submitted_at=990.0))
    h.take_arrivals()
    h.account(seen(ref, "PUBLISHED", 1030.0))
    (run,) = h.changes().history
    assert (run.started_at, run.final_at, run.duration_seconds, run.outcome) == (
        990.0,
        1030.0,
        40.0,
        "success",
    )
    assert (run.error_code, run.error_message) == ("", "")


def test_a_group_run_is_kept_as_a_whole_and_for_each_member_with_its_own_error() -> None:
    h = holdings()
    ref = api_ref("grp-ref", registered_at=1000.0)
    ref = replace(ref, kind="group", report_id="", report_group_id="grp-eod")
    h.registry.register(ref)
    h.take_arrivals()
    members = (
        ReportResult(report_id="rpt-a", report_name="A", status="NOTIFIED", report_group_id="grp-eod"),
        ReportResult(
            report_id="rpt-b",
            report_name="B",
            status="FAILED",
            report_group_id="grp-eod",
            error_code="E-42",
            error_msg="no data source",
        ),
    )
    h.account(Observation(ref, GroupReply("grp-eod", members), None, 1050.0, True))
    runs = {(r.report_group_id, r.report_id): r for r in h.changes().history}
    assert set(runs) == {("grp-eod", ""), ("grp-eod", "rpt-a"), ("grp-eod", "rpt-b")}
    assert runs[("grp-eod", "")].outcome == "failure" and runs[("grp-eod", "")].error_code == "E-42"
    assert runs[("grp-eod", "rpt-a")].outcome == "success" and runs[("grp-eod", "rpt-a")].error_code == ""
    assert (runs[("grp-eod", "rpt-b")].error_code, runs[("grp-eod", "rpt-b")].error_message) == (
        "E-42",
        "no data source",
    )
    assert {r.reference for r in runs.values()} == {"grp-ref"}


def test_a_run_sigma_forgets_is_kept_as_lost() -> None:
    h = holdings()
    ref = api_ref("ref-3")
    h.registry.register(ref)
    h.take_arrivals()
    h.account(seen(ref, "GENERATED", 1001.0))
    h.account(Observation(ref, None, BadRequestError("unknown reference", 400), 1500.0, True))
    (run,) = h.changes().history
    assert (run.outcome, run.final_at, run.started_at, run.duration_seconds) == ("lost", 1500.0, 1000.0, None)


def test_error_text_is_cut_and_every_control_character_escaped() -> None:
    assert escaped("  a\tb\r\n\x00\u2028é  ") == "a\\tb\\r\\n\\x00\\u2028é"
    long = escaped("x" * (MAX_ERROR_CHARS + 10))
    assert len(long) == MAX_ERROR_CHARS and long.endswith("…")


EVERY_MINUTE = {"report_id": "rpt-1", "every_seconds": 60, "grace_seconds": 10}


class Watched:
    """Holdings judging rpt-1 every minute (grace 10 s) on a wall clock the test moves (T0 + seconds)."""

    def __init__(self, wall: float = T0, restored: Loaded | None = None) -> None:
        self.wall = wall
        self.h = holdings(Clock(wall=lambda: self.wall, mono=lambda: self.wall))
        if restored is not None:
            self.h.restore(restored)
        self.h.use_config(config(api={"token": "t" * 16}, expectations=[EVERY_MINUTE]), strict=True)

    def judge(self, seconds: float) -> None:
        self.wall = T0 + seconds
        self.h.judge_expectations(self.wall)

    def start(self, reference: str, seconds: float) -> None:
        self.wall = T0 + seconds
        self.h.registry.register(api_ref(reference, registered_at=self.wall))
        self.h.take_arrivals()

    def expected(self) -> tuple[ExpectedRun, ...]:
        """The verdicts gathered so far, the latest of each expected time (as the writer merges them)."""
        return Changes().merged(self.h.changes()).expected


def test_expected_times_are_kept_on_time_missed_and_late() -> None:
    w = Watched()
    w.judge(1)  # watched from here
    w.start("on-time", 58)  # within [50, 70] of T0+60
    w.judge(71)
    w.judge(131)  # nothing started for T0+120
    w.start("late", 140)  # after its grace, before the next expected time
    w.judge(141)
    w.judge(191)  # T0+180: the late run started too early for it
    assert w.expected() == (
        ExpectedRun("", "rpt-1", T0 + 60, started_at=T0 + 58),
        ExpectedRun("", "rpt-1", T0 + 120, started_at=T0 + 140, late=True, missed=True),
        ExpectedRun("", "rpt-1", T0 + 180, missed=True),
    )
    record = w.h.identities.get(("", "rpt-1"))
    assert record is not None and record.missed_total == 2  # a late start does not undo the count


def test_a_start_in_the_next_windows_meets_the_next_time_not_the_missed_one_late() -> None:
    w = Watched()
    w.judge(1)
    w.judge(131)  # T0+60 and T0+120 missed
    w.start("early-for-180", 175)  # within [170, 190]
    w.judge(176)
    w.judge(191)
    assert w.expected() == (
        ExpectedRun("", "rpt-1", T0 + 60, missed=True),
        ExpectedRun("", "rpt-1", T0 + 120, missed=True),
        ExpectedRun("", "rpt-1", T0 + 180, started_at=T0 + 175),
    )


def test_a_judgement_that_spans_periods_never_makes_a_missed_time_late_with_a_later_times_start() -> None:
    w = Watched()
    w.judge(1)
    w.start("for-120", 118)
    w.judge(135)  # one judgement: T0+60 missed, T0+120 met at 118
    w.judge(150)
    assert w.expected() == (
        ExpectedRun("", "rpt-1", T0 + 60, missed=True),
        ExpectedRun("", "rpt-1", T0 + 120, started_at=T0 + 118),
    )


def test_a_missed_time_met_late_after_a_restart_turns_late() -> None:
    before = Watched()
    before.judge(1)
    before.judge(131)  # T0+60 and T0+120 missed
    (record,) = before.h.changes().identities
    assert record.missed_open == T0 + 120
    # As a SQL store keeps it: the identity's JSON.
    stored = identity_of(*record.key, identity_json(record))
    assert stored == record
    after = Watched(before.wall, Loaded(identities=(stored,)))  # a restart on the same store
    after.start("late", 140)
    after.judge(141)
    assert after.expected() == (
        ExpectedRun("", "rpt-1", T0 + 120, started_at=T0 + 140, late=True, missed=True),
    )
