"""Snapshot -> metric families. A pure function: a reference that is gone or down has no status series,
and every state of the `status` state set is emitted (unless `status_series: current`). The per-run
families are written here; the report identity and registry families in `identities.py`; both on the line
builders of `families.py`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Final

from sigma_exporter.metrics.families import (
    Family,
    add_histogram,
    counter,
    escape_value,
    format_value,
    gauge,
    histogram,
)
from sigma_exporter.metrics.snapshot import ReferenceState, Snapshot
from sigma_exporter.sigma.actions import POLLED_ACTIONS
from sigma_exporter.sigma.errors import ERROR_REASONS
from sigma_exporter.sigma.replies import ALL_STATUSES
from sigma_exporter.sigma.stats import LATENCY_BUCKETS

STATUS_LABELS = ["reference", "report_group_id", "report_id", "report_name", "status"]


#: For each status, the tail of a state-set line when it is the current status and when it is not.
_STATE_TAILS: Final = tuple((status, f'{status}"}} 1.0\n', f'{status}"}} 0.0\n') for status in ALL_STATUSES)


def _report_families(states: Iterable[ReferenceState], sparse: bool) -> Iterator[Family]:
    status = gauge(
        "sigma_report_status",
        "Current status of each watched report: 1 for the current status, 0 for the others.",
        STATUS_LABELS,
    )
    since = gauge(
        "sigma_report_status_since_timestamp_seconds",
        "Unix time when the report's current status was first observed.",
        ["reference", "report_group_id", "report_id"],
    )
    errors = gauge(
        "sigma_report_error_info",
        "Reports whose last reply carried an errorCode (value always 1).",
        ["reference", "report_group_id", "report_id", "error_code"],
    )
    status_lines, since_lines = status.lines, since.lines
    for state in states:
        if not state.up:
            continue
        ref = escape_value(state.ref.reference)
        for row in state.reports:
            # The label names are in sorted order already: reference < report_group_id < report_id < ...
            ids = f'reference="{ref}",report_group_id="{escape_value(row.report_group_id)}",report_id="{escape_value(row.report_id)}"'
            prefix = f'sigma_report_status{{{ids},report_name="{escape_value(row.report_name)}",status="'
            if sparse:
                status_lines.append(f'{prefix}{row.status}"}} 1.0\n')
            else:
                current = row.status
                status_lines.extend(
                    prefix + (one if value == current else zero) for value, one, zero in _STATE_TAILS
                )
            since_lines.append(
                f"sigma_report_status_since_timestamp_seconds{{{ids}}} {format_value(row.since)}\n"
            )
            if row.error_code:
                errors.add([state.ref.reference, row.report_group_id, row.report_id, row.error_code], 1.0)
    yield from (status, since, errors)


def _group_families(states: Iterable[ReferenceState], sparse: bool) -> Iterator[Family]:
    labels = ["reference", "report_group_id"]
    per_status = gauge(
        "sigma_group_reports",
        "Per group run, the number of its reports in each status.",
        [*labels, "status"],
    )
    failures = gauge(
        "sigma_group_report_failures",
        "reportFailureCount of a group run, as the API reports it.",
        labels,
    )
    successes = gauge(
        "sigma_group_report_successes",
        "reportSuccessCount of a group run, as the API reports it.",
        labels,
    )
    members = gauge(
        "sigma_group_report_members", "noOfReports of a group run, as the API reports it.", labels
    )
    for state in states:
        if not state.up or state.group is None:
            continue
        group_id = _group_id(state)
        key = [state.ref.reference, group_id]
        counts = Counter(row.status for row in state.reports if row.report_id or row.status != "PENDING")
        for value in ALL_STATUSES:
            if counts[value] or not sparse:
                per_status.add([*key, value], float(counts[value]))
        for family, number in (
            (failures, state.group.failures),
            (successes, state.group.successes),
            (members, state.group.members),
        ):
            if number is not None:
                family.add(key, float(number))
    yield from (per_status, failures, successes, members)


def _group_id(state: ReferenceState) -> str:
    return next((row.report_group_id for row in state.reports if row.report_group_id), "")


def _reference_families(states: Iterable[ReferenceState]) -> Iterator[Family]:
    up = gauge(
        "sigma_reference_up",
        "1 when the last check of this reference succeeded.",
        ["reference", "kind"],
    )
    info = gauge("sigma_reference_info", "Watched references with their own labels (value always 1).")
    up_lines, info_lines = up.lines, info.lines
    for state in states:
        ref = state.ref
        reference = escape_value(ref.reference)
        kind = escape_value(ref.kind)
        up_lines.append(
            f'sigma_reference_up{{kind="{kind}",reference="{reference}"}} {"1.0" if state.up else "0.0"}\n'
        )
        if ref.labels:
            info.add_labels({"reference": ref.reference, "kind": ref.kind, **dict(ref.labels)}.items(), 1.0)
        else:
            info_lines.append(f'sigma_reference_info{{kind="{kind}",reference="{reference}"}} 1.0\n')
    yield from (up, info)


def run_families(states: Iterable[ReferenceState], sparse: bool) -> list[Family]:
    """The per-run families (in exposition order) with the lines of `states`: all runs, or a bucket of
    them (the exposition renders by change, a bucket at a time)."""
    states = tuple(states)
    return [*_report_families(states, sparse), *_group_families(states, sparse), *_reference_families(states)]


def reports_family(snapshot: Snapshot) -> Family:
    """sigma_reports: the reports of the runs that are up, by status, every status from zero."""
    totals: Counter[str] = Counter()
    for state in snapshot.references:
        if state.up:
            totals.update(row.status for row in state.reports)
    reports = gauge(
        "sigma_reports",
        "Number of watched reports (individual and group members) in each status.",
        ["status"],
    )
    for value in ALL_STATUSES:
        reports.add([value], float(totals[value]))
    return reports


def references_family(snapshot: Snapshot) -> Family:
    """sigma_references: the runs held, by kind."""
    count = Counter(state.ref.kind for state in snapshot.references)
    references = gauge("sigma_references", "References this process watches.", ["kind"])
    for kind_value in ("report", "group"):
        references.add([kind_value], float(count[kind_value]))
    return references


def _api_families(snapshot: Snapshot) -> Iterator[Family]:
    api = snapshot.api
    duration = histogram("sigma_api_request_duration_seconds", "Latency of Sigma API calls.", ["action"])
    bounds = (*LATENCY_BUCKETS, float("inf"))
    for action in sorted(set(POLLED_ACTIONS) | set(api.durations)):
        hist = api.durations.get(action)
        counts = hist.counts if hist is not None else (0,) * len(bounds)
        add_histogram(
            duration, (("action", action),), bounds, counts, hist.total if hist is not None else 0.0
        )
    requests = counter("sigma_api_requests", "Sigma API calls by HTTP status.", ["action", "code"])
    for (action, code), value in sorted(api.requests.items()):
        requests.add([action, code], float(value), "_total")
    errors = counter("sigma_api_request_errors", "Failed Sigma API calls by reason.", ["action", "reason"])
    known = {(action, reason) for action in POLLED_ACTIONS for reason in ERROR_REASONS} | set(api.errors)
    for action, reason in sorted(known):
        errors.add([action, reason], float(api.errors.get((action, reason), 0)), "_total")
    yield from (duration, requests, errors)


def _exporter_families(snapshot: Snapshot) -> Iterator[Family]:
    yield gauge(
        "sigma_up",
        "1 when the last poll cycle reached and authenticated against the Sigma API.",
        value=float(snapshot.up),
    )
    yield gauge(
        "sigma_poll_duration_seconds", "Duration of the last poll cycle.", value=snapshot.poll_duration
    )
    yield gauge(
        "sigma_last_poll_timestamp_seconds",
        "Unix time when the last poll cycle ended.",
        value=snapshot.last_poll,
    )
    yield counter(
        "sigma_poll_checks_skipped",
        "Checks left undone because a poll cycle reached the end of its interval.",
        value=float(snapshot.skipped_checks_total),
    )
    yield gauge(
        "sigma_config_last_reload_successful",
        "1 when the last configuration (re)load succeeded.",
        value=float(snapshot.reload.successful),
    )
    yield gauge(
        "sigma_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration (re)load.",
        value=snapshot.reload.last_success,
    )
    info = snapshot.info
    build = gauge(
        "sigma_exporter_build_info",
        "Build information (value always 1).",
        ["version", "python_version"],
    )
    build.add([info.version, info.python_version], 1.0)
    yield build
    shard = gauge(
        "sigma_exporter_shard",
        "Which shard of the reference list this process watches (value always 1).",
        ["shard_index", "shard_count"],
    )
    shard.add([str(info.shard_index), str(info.shard_count)], 1.0)
    yield shard


def api_families(snapshot: Snapshot) -> list[Family]:
    """The Sigma API's call statistics."""
    return list(_api_families(snapshot))


def exporter_families(snapshot: Snapshot) -> list[Family]:
    """The exporter's own: sigma_up, the poll cycle, reloads, build and shard."""
    return list(_exporter_families(snapshot))
