"""What a snapshot shows of the holdings: a run that is down has no reports; identities carry the runs'
labels then the expectation's; the registry's counts come sorted."""

from __future__ import annotations

from sigma_exporter.config.model import Reference
from sigma_exporter.metrics.identities import identity_families
from sigma_exporter.poll.publish import IdentityViews, reference_state, registry_state
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.writer import StateWriter
from tests.support.factories import api_ref, config, run, seen


def holdings() -> Holdings:
    store = MemoryStore()
    return Holdings(Registry(store, StateWriter(store), max_runs=10), (10.0, 60.0), Shard())


def test_a_run_that_is_down_shows_no_reports_and_no_group_counts() -> None:
    held = run("r", "FAILED")
    first = reference_state(held)
    assert first.reports == held.rows
    assert reference_state(held) is first  # unchanged: the same object
    held.dirty = False  # written to the store: not a change the snapshot shows
    assert reference_state(held) is first
    held.up, held.last_error = False, "timeout"
    state = reference_state(held)
    assert state.reports == () and state.group is None and state.last_error == "timeout"


def test_identities_merge_the_runs_labels_with_the_expectations() -> None:
    h = holdings()
    h.use_config(
        config(
            expectations=[{"report_id": "rpt-1", "every_seconds": 60, "labels": {"team": "ops", "tier": "1"}}]
        )
    )
    ref = Reference(
        "r1", "report", labels=(("team", "finance"),), source="api", report_id="rpt-1", registered_at=1.0
    )
    h.registry.register(ref)
    h.take_arrivals()
    views = IdentityViews()
    (state,) = views.states(h)
    assert state.record.key == ("", "rpt-1")
    assert state.active == 1
    assert dict(state.labels) == {"team": "ops", "tier": "1"}  # the expectation's win
    assert views.states(h)[0] is state  # unchanged: the same object, which the exposition skips at once
    h.account(seen(ref, "FAILED", 2000.0))
    (after,) = views.states(h)
    assert after is not state and after.active == 0 and dict(after.record.outcomes) == {"failure": 1}


def test_registry_state_counts_runs_by_source_and_state() -> None:
    h = holdings()
    h.use_config(config(references={"reports": ["cfg-1"]}))
    for name in ("a", "b"):
        h.registry.register(api_ref(name))
    h.take_arrivals()
    h.account(seen(api_ref("a"), "PUBLISHED", 2000.0))
    state = registry_state(h, h.registry.counters(), state_up=False, schedules=((("s", "ok"), 3),))
    assert state.held == ((("api", "active"), 1), (("api", "final"), 1), (("config", "active"), 1))
    assert dict(state.registered)[("api", "created")] == 2
    assert state.state_up is False and state.schedules == ((("s", "ok"), 3),)
    assert state.duration_bounds == (10.0, 60.0)


def test_an_identitys_counts_are_shown_once_the_store_has_written_them() -> None:
    h = holdings()
    h.registry.register(api_ref("a", report_id="rpt-1"))
    h.registry.register(api_ref("b", report_id="rpt-1"))
    h.take_arrivals()
    views = IdentityViews()
    first = h.changes().identities  # the identity became known: submission 1
    views.submitted(1, first)
    assert views.states(h, written=0) == ()  # not durable yet: a new identity waits
    (known,) = views.states(h, written=1)
    h.account(seen(api_ref("a", report_id="rpt-1"), "FAILED", 2000.0))
    views.submitted(2, h.changes().identities)
    (waiting,) = views.states(h, written=1)
    assert waiting.record is known.record  # the count a kill could take back is not shown
    h.account(seen(api_ref("b", report_id="rpt-1"), "PUBLISHED", 2001.0))
    views.submitted(3, h.changes().identities)
    assert views.states(h, written=2)[0].record is known.record  # the latest record is in submission 3
    (durable,) = views.states(h, written=3)
    assert dict(durable.record.outcomes) == {"failure": 1, "success": 1}


def test_an_identity_shows_when_its_oldest_active_run_started_and_nothing_once_none_is_active() -> None:
    h = holdings()
    h.registry.register(api_ref("late", report_id="rpt-1", registered_at=1500.0))
    h.registry.register(api_ref("early", report_id="rpt-1", registered_at=1200.0))
    h.take_arrivals()
    views = IdentityViews()
    (state,) = views.states(h)
    assert state.oldest_active_start == 1200.0 and state.active == 2
    h.account(seen(api_ref("early", report_id="rpt-1", registered_at=1200.0), "FAILED", 2000.0))
    (state,) = views.states(h)
    assert state.oldest_active_start == 1500.0  # the next oldest
    h.account(seen(api_ref("late", report_id="rpt-1", registered_at=1500.0), "PUBLISHED", 2001.0))
    (state,) = views.states(h)
    assert state.oldest_active_start is None and state.active == 0
    family = next(
        f
        for f in identity_families((state,), (10.0,))
        if f.name == "sigma_report_oldest_active_run_start_timestamp_seconds"
    )
    assert family.lines == []  # absent, not 0
