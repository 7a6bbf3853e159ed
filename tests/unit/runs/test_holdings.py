"""What the holdings do with config references, registrations, checks, retention and a restart: each
run joins and leaves once (the due queue hears of it), is counted once at its first final status, and
hands the store what changed."""

from __future__ import annotations

from sigma_exporter.config.model import RetentionConfig
from sigma_exporter.runs import accounting
from sigma_exporter.runs.held import Observation, ReportRow
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.records import Loaded, RunRecord
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.errors import BadRequestError
from tests.support.factories import api_ref, config, seen


def holdings(store: MemoryStore | None = None) -> Holdings:
    store = store or MemoryStore()
    return Holdings(Registry(store, StateWriter(store), max_runs=100), (10.0, 60.0), Shard())


def outcomes(h: Holdings, key: tuple[str, str] = ("", "rpt-1")) -> dict[str, int]:
    record = h.identities.get(key)
    assert record is not None
    return dict(record.outcomes)


def test_config_references_join_and_leave_with_the_config() -> None:
    h = holdings()
    h.use_config(config(references={"reports": ["a", "b"], "groups": ["g"]}), strict=True)
    joined, left = h.take_membership()
    assert sorted(joined) == [("group", "g"), ("report", "a"), ("report", "b")] and left == []
    assert h.registry.held("a") is not None  # the registry's index follows
    h.use_config(config(references={"reports": ["a"]}))
    joined, left = h.take_membership()
    assert joined == [] and sorted(left) == [("group", "g"), ("report", "b")]
    assert h.registry.counters()[1] == {"removed": 2}
    assert h.changes().retired == ("b", "g")


def test_a_registration_arrives_once_and_a_deletion_retires_it() -> None:
    h = holdings()
    h.registry.register(api_ref("r1"))
    assert h.take_arrivals()
    assert h.take_membership() == ([("report", "r1")], [])
    assert not h.take_arrivals()  # nothing new
    h.registry.delete("r1")
    assert h.take_arrivals()
    assert h.take_membership() == ([], [("report", "r1")])
    assert h.registry.counters()[1] == {"deleted": 1}


def test_a_run_is_counted_once_at_its_first_final_status() -> None:
    h = holdings()
    ref = api_ref("r1", registered_at=1000.0)
    h.registry.register(ref)
    h.take_arrivals()
    assert h.account(seen(ref, "GENERATED", 1001.0)) == 1
    assert outcomes(h) == {}
    assert h.account(seen(ref, "PUBLISHED", 1031.0)) == 1
    assert h.account(seen(ref, "PUBLISHED", 1100.0)) == 0  # a re-check: no change, no count
    assert outcomes(h) == {"success": 1}
    record = h.identities.get(("", "rpt-1"))
    assert (
        record is not None and record.last_success == 1031.0 and record.last_duration == 31.0
    )  # from registration
    assert h.runs[ref.key].outcome == "success"


def test_rechecks_count_unchanged_final_checks_and_restart_at_a_change() -> None:
    h = holdings()
    ref = api_ref("r1")
    h.registry.register(ref)
    h.take_arrivals()
    h.account(seen(ref, "PUBLISHED", 1001.0))
    held = h.runs[ref.key]
    assert held.rechecks == 0  # first seen final
    h.changes()
    h.account(seen(ref, "PUBLISHED", 1901.0))
    assert held.rechecks == 1 and h.changes().runs[0].rechecks == 1  # kept in the store
    h.account(seen(ref, "NOTIFIED", 3701.0))
    assert held.rechecks == 0 and held.ended  # a new final status: confirmed once more
    assert outcomes(h) == {"success": 1}


def test_a_run_sigma_forgets_is_counted_lost_once() -> None:
    h = holdings()
    ref = api_ref("r1")
    h.registry.register(ref)
    h.take_arrivals()
    h.account(seen(ref, "GENERATED", 1001.0))
    gone = Observation(ref, None, BadRequestError("unknown reference", 400), 1002.0, True)
    h.account(gone)
    h.account(gone)
    assert outcomes(h) == {"lost": 1}


def test_an_observation_of_a_run_no_longer_held_changes_nothing() -> None:
    h = holdings()
    assert h.account(seen(api_ref("nobody"), "FAILED", 1.0)) == 0
    assert h.identities.all() == ()


def test_retention_retires_final_runs_and_abandons_stuck_ones() -> None:
    h = holdings()
    done, stuck = api_ref("done", registered_at=1000.0), api_ref("stuck", registered_at=1000.0)
    for ref in (done, stuck):
        h.registry.register(ref)
    h.take_arrivals()
    h.take_membership()
    h.account(seen(done, "FAILED", 1010.0))
    h.apply_retention(RetentionConfig(final_seconds=100, abandon_after_seconds=500), 1050.0)
    assert h.take_membership() == ([], [])  # nothing old enough yet
    h.apply_retention(RetentionConfig(final_seconds=100, abandon_after_seconds=500), 1600.0)
    assert sorted(h.take_membership()[1]) == [("report", "done"), ("report", "stuck")]
    assert h.registry.counters()[1] == {"retention": 1, "abandoned": 1}
    assert outcomes(h) == {"failure": 1, "abandoned": 1}


def test_changes_hand_the_store_each_dirty_run_once() -> None:
    h = holdings()
    ref = api_ref("r1")
    h.registry.register(ref)
    h.take_arrivals()
    h.account(seen(ref, "GENERATED", 1001.0))
    first = h.changes()
    assert [r.ref.reference for r in first.runs] == ["r1"] and first.identities
    assert not h.changes()  # nothing changed since


def test_a_restart_restores_api_runs_and_retires_config_runs_no_longer_listed() -> None:
    before = holdings()
    before.use_config(config(references={"reports": ["kept", "dropped"]}), strict=True)
    ref = api_ref("api-1")
    before.registry.register(ref)
    before.take_arrivals()
    before.account(seen(ref, "NOTIFIED", 2000.0))
    changes = before.changes()
    loaded = Loaded(runs=changes.runs, identities=changes.identities)
    after = holdings()
    after.restore(loaded)
    assert list(after.runs) == [ref.key]  # config runs wait for the config
    after.use_config(config(references={"reports": ["kept"]}), strict=True)
    after.forget_restored()
    assert sorted(after.runs) == [("report", "api-1"), ("report", "kept")]
    assert after.registry.counters()[1] == {"removed": 1}  # "dropped"
    assert after.runs[ref.key].outcome == "success"  # not counted again
    assert outcomes(after) == {"success": 1}


def test_a_restored_record_round_trips_through_the_run() -> None:
    rows = (ReportRow("", "rpt-1", "Report", "FAILED", 9.0, "E42", "no disk"),)
    record = RunRecord(
        api_ref("r"),
        first_seen_at=5.0,
        since=(("rpt-1", "FAILED", 9.0),),
        final_at=9.0,
        outcome="failure",
        last_check_at=20.0,
        rechecks=1,
        rows=rows,
    )
    held = accounting.held_of(record)
    assert held.up and held.final and held.rows == rows  # shown at once, as last seen
    assert accounting.record_of(held) == record


def test_a_record_of_schema_2_shows_its_statuses_under_the_reports_own_name() -> None:
    record = RunRecord(
        api_ref("r"), since=(("rpt-1", "NOTIFIED", 9.0),), outcome="success", report_name="Daily"
    )
    (row,) = accounting.held_of(record).rows
    assert (row.report_id, row.report_name, row.status, row.since) == ("rpt-1", "Daily", "NOTIFIED", 9.0)


def test_rows_a_previous_shard_left_behind_its_statuses_give_way_to_them() -> None:
    stale = (ReportRow("", "rpt-1", "Daily", "GENERATED", 5.0),)
    record = RunRecord(api_ref("r"), since=(("rpt-1", "PUBLISHED", 9.0),), rows=stale, report_name="Daily")
    (row,) = accounting.held_of(record).rows
    assert (row.status, row.since, row.report_name) == ("PUBLISHED", 9.0, "Daily")
