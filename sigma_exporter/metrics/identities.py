"""Snapshot -> the report identity and run registry families (design.md, "Report identity metrics").
Pure. Every outcome, source, state, result and reason is exported from zero, so rates work from the start;
a timestamp that never happened (no success yet) has no series rather than a zero. In OpenMetrics each
`sigma_report_runs_total` series and each duration bucket carries an exemplar naming the latest run counted
in it (`{reference="..."}`), when its reference fits in an exemplar."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sigma_exporter.config.model import SOURCES
from sigma_exporter.metrics.families import (
    Family,
    add_histogram,
    counter,
    format_value,
    gauge,
    histogram,
    labels_text,
    reference_exemplar,
)
from sigma_exporter.metrics.links import report_page_url
from sigma_exporter.metrics.snapshot import IdentityState, Snapshot
from sigma_exporter.runs.outcomes import OUTCOMES, REGISTER_RESULTS, RETIRE_REASONS, RUN_STATES
from sigma_exporter.runs.store.records import IdentityRecord

IDENTITY = ["report_group_id", "report_id"]


def identity_families(
    states: Iterable[IdentityState], duration_bounds: tuple[float, ...], external_url: str = ""
) -> list[Family]:
    """The per report identity families (in exposition order) with the lines of `states`: all identities,
    or a bucket of them. Runs by outcome, last success, failure and duration, the duration histogram,
    active runs and info (with `report_url`, the identity's page, under a non-empty `external_url`), then
    the five expectation families (`EXPECTATION_FAMILIES` of them, exported only when some identity has an
    expectation: see `has_expectations`)."""
    runs = counter(
        "sigma_report_runs", "Runs that ended, by outcome; each run counted once.", [*IDENTITY, "outcome"]
    )
    last_success = gauge(
        "sigma_report_last_success_timestamp_seconds",
        "Unix time when the last successful run ended.",
        IDENTITY,
    )
    last_failure = gauge(
        "sigma_report_last_failure_timestamp_seconds",
        "Unix time when the last failed, abandoned or lost run ended.",
        IDENTITY,
    )
    last_duration = gauge(
        "sigma_report_last_run_duration_seconds",
        "Submitted (or first seen) to first final status, of the last run that ended.",
        IDENTITY,
    )
    duration = histogram(
        "sigma_report_run_duration_seconds",
        "Submitted (or first seen) to first final status, per run.",
        IDENTITY,
    )
    active = gauge("sigma_report_runs_active", "Runs held that are not final.", IDENTITY)
    oldest_active = gauge(
        "sigma_report_oldest_active_run_start_timestamp_seconds",
        "Unix time the oldest run not yet final started (submitted, else registered, else first seen); "
        "absent while none is active.",
        IDENTITY,
    )
    info = gauge("sigma_report_info", "Report identities with their name and labels (value always 1).")
    expected = gauge(
        "sigma_report_expected_run_timestamp_seconds",
        "Unix time of the latest expected run that has passed (identities with an expectation).",
        IDENTITY,
    )
    next_expected = gauge(
        "sigma_report_next_expected_run_timestamp_seconds", "Unix time of the next expected run.", IDENTITY
    )
    missed = gauge(
        "sigma_report_run_missed",
        "1 while the latest expected run has not started within its grace (a late start clears it).",
        IDENTITY,
    )
    overdue = gauge(
        "sigma_report_run_overdue",
        "1 while a run has been active longer than the expectation's max_duration_seconds.",
        IDENTITY,
    )
    missed_runs = counter(
        "sigma_report_missed_runs", "Expected runs that never started within their grace.", IDENTITY
    )
    bounds = (*duration_bounds, float("inf"))
    for state in states:
        record = state.record
        pairs = (("report_group_id", record.report_group_id), ("report_id", record.report_id))
        labels = labels_text(pairs)  # written once for the identity's series
        outcomes = dict(record.outcomes)
        latest = {outcome: (reference, at) for outcome, reference, at in record.latest_runs}
        for outcome in OUTCOMES:
            run = latest.get(outcome)
            # "outcome" sorts before the identity's labels
            runs.add_line(
                f'sigma_report_runs_total{{outcome="{outcome}",{labels[1:]} '
                f"{format_value(float(outcomes.get(outcome, 0)))}\n",
                reference_exemplar(run[0], 1.0, run[1]) if run is not None else "",
            )
        for family, value in (
            (last_success, record.last_success),
            (last_failure, record.last_failure),
            (last_duration, record.last_duration),
        ):
            if value is not None:
                family.add_written(labels, value)
        fits = len(record.buckets) == len(bounds)
        buckets = record.buckets if fits else (0,) * len(bounds)
        exemplars = bucket_exemplars(record, len(bounds)) if fits and record.latest_buckets else ()
        add_histogram(duration, pairs, bounds, buckets, record.duration_sum, exemplars)
        active.add_written(labels, float(state.active))
        if state.oldest_active_start is not None:
            oldest_active.add_written(labels, state.oldest_active_start)
        info.add_labels((*pairs, ("report_name", record.report_name), *_links(external_url, state)), 1.0)
        verdict = state.verdict
        if verdict is not None:
            expected.add_written(labels, verdict.expected_at)
            next_expected.add_written(labels, verdict.next_expected_at)
            missed.add_written(labels, float(verdict.missed))
            overdue.add_written(labels, float(verdict.overdue))
            missed_runs.add_written(labels, float(verdict.missed_total), "_total")
    return [
        runs,
        last_success,
        last_failure,
        last_duration,
        duration,
        active,
        oldest_active,
        info,
        expected,
        next_expected,
        missed,
        overdue,
        missed_runs,
    ]


def bucket_exemplars(record: IdentityRecord, count: int) -> list[str]:
    """The exemplar of each of `count` cumulative buckets: the run that ended last among the buckets up to
    it (`record.latest_buckets` is per bucket, not cumulative), its duration and end; "" for a bucket that
    has none, or whose run's reference does not fit in an exemplar."""
    own = {
        index: (at, reference_exemplar(reference, took, at))
        for index, reference, took, at in record.latest_buckets
    }
    exemplars, best, best_at = [], "", float("-inf")
    for index in range(count):
        at, text = own.get(index, (best_at, best))
        if at > best_at:
            best, best_at = text, at
        exemplars.append(best)
    return exemplars


def _links(external_url: str, state: IdentityState) -> tuple[tuple[str, str], ...]:
    """The identity's own labels, and its page's URL when there is an external URL. `report_url` is
    reserved, but a run stored before it was may still carry one: the exporter's wins."""
    labels = state.labels or state.record.labels
    if not external_url:
        return labels
    record = state.record
    url = report_page_url(external_url, record.report_group_id, record.report_id)
    return (*(pair for pair in labels if pair[0] != "report_url"), ("report_url", url))


#: The last families of `identity_families`, exported only when some identity has an expectation.
EXPECTATION_FAMILIES = 5


def has_expectations(snapshot: Snapshot) -> bool:
    """Some identity has an expectation judged by this shard: the expectation families are exported."""
    return any(state.verdict is not None for state in snapshot.identities)


def registry_families(snapshot: Snapshot) -> Iterator[Family]:
    """The run registry's families: runs held by source and state, registrations, retirements,
    `sigma_state_up`, and the schedules' starts when there are schedules. Pure."""
    registry = snapshot.registry
    held = dict(registry.held)
    runs = gauge("sigma_runs", "Runs held, by source and state.", ["source", "state"])
    for source in SOURCES:
        for state in RUN_STATES:
            runs.add([source, state], float(held.get((source, state), 0)))
    registered = dict(registry.registered)
    counts = counter(
        "sigma_runs_registered", "Registrations of runs, by source and result.", ["source", "result"]
    )
    for source in SOURCES:
        for result in REGISTER_RESULTS:
            counts.add([source, result], float(registered.get((source, result), 0)), "_total")
    retired = dict(registry.retired)
    gone = counter("sigma_runs_retired", "Runs let go, by reason.", ["reason"])
    for reason in RETIRE_REASONS:
        gone.add([reason], float(retired.get(reason, 0)), "_total")
    up = gauge(
        "sigma_state_up",
        "1 when the last write to the state store succeeded.",
        value=float(registry.state_up),
    )
    refused = counter(
        "sigma_identities_refused",
        "Report identities not created because retention.max_identities are held (their runs are exported "
        "per run only).",
        [],
    )
    refused.add([], float(registry.identities_refused), "_total")
    yield from (runs, counts, gone, refused, up)
    if registry.schedules:
        started = counter(
            "sigma_schedule_runs_started",
            "Runs the exporter's schedules started (ok), failed to start (error) or skipped while the "
            "previous run was active (skipped).",
            ["schedule", "result"],
        )
        for (schedule, result), count in registry.schedules:
            started.add([schedule, result], float(count), "_total")
        yield started
