"""What a snapshot shows of the holdings: a run that is down has no reports; identities carry the runs'
labels then the expectation's; the registry's counts come sorted."""

from __future__ import annotations

from sigma_exporter.config.model import Reference
from sigma_exporter.poll.publish import identity_states, reference_state, registry_state
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
    assert reference_state(held).reports == held.rows
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
    (state,) = identity_states(h)
    assert state.record.key == ("", "rpt-1")
    assert state.active == 1
    assert dict(state.labels) == {"team": "ops", "tier": "1"}  # the expectation's win


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
