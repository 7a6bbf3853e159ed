"""Snapshot -> metric families. A pure function: a reference that is gone or down has no status series,
and every state of the `status` state set is emitted (unless `status_series: current`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from sigma_exporter.apistats import ACTIONS, LATENCY_BUCKETS
from sigma_exporter.sigma.errors import (
    BadRequestError,
    FailureReplyError,
    HTTPStatusError,
    InvalidReplyError,
    ReplyTooLargeError,
    ServerError,
    SigmaConnectionError,
    SigmaTimeoutError,
    SigmaTLSError,
    UnauthorizedError,
)
from sigma_exporter.sigma.replies import ALL_STATUSES
from sigma_exporter.snapshot import ReferenceState, Snapshot

#: Every `reason` an API error can have; each is exported from zero so rates work from the start.
ERROR_REASONS = tuple(
    sorted(
        {
            cls.reason
            for cls in (
                SigmaTimeoutError,
                SigmaConnectionError,
                SigmaTLSError,
                ReplyTooLargeError,
                UnauthorizedError,
                BadRequestError,
                ServerError,
                HTTPStatusError,
                FailureReplyError,
                InvalidReplyError,
            )
        }
    )
)
STATUS_LABELS = ["reference", "report_group_id", "report_id", "report_name", "status"]


def _report_families(snapshot: Snapshot, sparse: bool) -> Iterator[Metric]:
    status = GaugeMetricFamily(
        "sigma_report_status",
        "Current status of each watched report: 1 for the current status, 0 for the others.",
        labels=STATUS_LABELS,
    )
    since = GaugeMetricFamily(
        "sigma_report_status_since_timestamp_seconds",
        "Unix time when the report's current status was first observed.",
        labels=["reference", "report_group_id", "report_id"],
    )
    errors = GaugeMetricFamily(
        "sigma_report_error_info",
        "Reports whose last reply carried an errorCode (value always 1).",
        labels=["reference", "report_group_id", "report_id", "error_code"],
    )
    totals: Counter[str] = Counter()
    for state in snapshot.references:
        if not state.up:
            continue
        ref = state.ref.reference
        for row in state.reports:
            totals[row.status] += 1
            base = [ref, row.report_group_id, row.report_id, row.report_name]
            if sparse:
                status.add_metric([*base, row.status], 1.0)
            else:
                for value in ALL_STATUSES:
                    status.add_metric([*base, value], 1.0 if value == row.status else 0.0)
            since.add_metric([ref, row.report_group_id, row.report_id], row.since)
            if row.error_code:
                errors.add_metric([ref, row.report_group_id, row.report_id, row.error_code], 1.0)
    reports = GaugeMetricFamily(
        "sigma_reports",
        "Number of watched reports (individual and group members) in each status.",
        labels=["status"],
    )
    for value in ALL_STATUSES:
        reports.add_metric([value], float(totals[value]))
    yield from (status, since, errors, reports)


def _group_families(snapshot: Snapshot, sparse: bool) -> Iterator[Metric]:
    labels = ["reference", "report_group_id"]
    per_status = GaugeMetricFamily(
        "sigma_group_reports",
        "Per group run, the number of its reports in each status.",
        labels=[*labels, "status"],
    )
    failures = GaugeMetricFamily(
        "sigma_group_report_failures",
        "reportFailureCount of a group run, as the API reports it.",
        labels=labels,
    )
    successes = GaugeMetricFamily(
        "sigma_group_report_successes",
        "reportSuccessCount of a group run, as the API reports it.",
        labels=labels,
    )
    members = GaugeMetricFamily(
        "sigma_group_report_members", "noOfReports of a group run, as the API reports it.", labels=labels
    )
    for state in snapshot.references:
        if not state.up or state.group is None:
            continue
        group_id = _group_id(state)
        key = [state.ref.reference, group_id]
        counts = Counter(row.status for row in state.reports if row.report_id or row.status != "PENDING")
        for value in ALL_STATUSES:
            if counts[value] or not sparse:
                per_status.add_metric([*key, value], float(counts[value]))
        for family, number in (
            (failures, state.group.failures),
            (successes, state.group.successes),
            (members, state.group.members),
        ):
            if number is not None:
                family.add_metric(key, float(number))
    yield from (per_status, failures, successes, members)


def _group_id(state: ReferenceState) -> str:
    return next((row.report_group_id for row in state.reports if row.report_group_id), "")


def _reference_families(snapshot: Snapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "sigma_reference_up",
        "1 when the last check of this reference succeeded.",
        labels=["reference", "kind"],
    )
    info = Metric(
        "sigma_reference_info", "Watched references with their own labels (value always 1).", "gauge"
    )
    count: Counter[str] = Counter()
    for state in snapshot.references:
        ref = state.ref
        count[ref.kind] += 1
        up.add_metric([ref.reference, ref.kind], 1.0 if state.up else 0.0)
        info.add_sample(
            "sigma_reference_info", {"reference": ref.reference, "kind": ref.kind, **dict(ref.labels)}, 1.0
        )
    references = GaugeMetricFamily("sigma_references", "References this process watches.", labels=["kind"])
    for kind in ("report", "group"):
        references.add_metric([kind], float(count[kind]))
    yield from (up, info, references)


def _api_families(snapshot: Snapshot) -> Iterator[Metric]:
    api = snapshot.api
    duration = HistogramMetricFamily(
        "sigma_api_request_duration_seconds", "Latency of Sigma API calls.", labels=["action"]
    )
    for action in sorted(set(ACTIONS) | set(api.durations)):
        hist = api.durations.get(action)
        counts = hist.counts if hist is not None else (0,) * (len(LATENCY_BUCKETS) + 1)
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, value in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
            cumulative += value
            buckets.append((_le(bound), float(cumulative)))
        duration.add_metric([action], buckets, hist.total if hist is not None else 0.0)
    requests = CounterMetricFamily(
        "sigma_api_requests", "Sigma API calls by HTTP status.", labels=["action", "code"]
    )
    for (action, code), value in sorted(api.requests.items()):
        requests.add_metric([action, code], float(value))
    errors = CounterMetricFamily(
        "sigma_api_request_errors", "Failed Sigma API calls by reason.", labels=["action", "reason"]
    )
    known = {(action, reason) for action in ACTIONS for reason in ERROR_REASONS} | set(api.errors)
    for action, reason in sorted(known):
        errors.add_metric([action, reason], float(api.errors.get((action, reason), 0)))
    yield from (duration, requests, errors)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def _exporter_families(snapshot: Snapshot) -> Iterator[Metric]:
    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, value=value)

    yield gauge(
        "sigma_up",
        "1 when the last poll cycle reached and authenticated against the Sigma API.",
        float(snapshot.up),
    )
    yield gauge("sigma_poll_duration_seconds", "Duration of the last poll cycle.", snapshot.poll_duration)
    yield gauge(
        "sigma_last_poll_timestamp_seconds", "Unix time when the last poll cycle ended.", snapshot.last_poll
    )
    yield CounterMetricFamily(
        "sigma_poll_checks_skipped",
        "Checks left undone because a poll cycle reached the end of its interval.",
        value=float(snapshot.skipped_checks_total),
    )
    yield gauge(
        "sigma_config_last_reload_successful",
        "1 when the last configuration (re)load succeeded.",
        float(snapshot.reload.successful),
    )
    yield gauge(
        "sigma_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration (re)load.",
        snapshot.reload.last_success,
    )
    info = snapshot.info
    build = GaugeMetricFamily(
        "sigma_exporter_build_info",
        "Build information (value always 1).",
        labels=["version", "python_version"],
    )
    build.add_metric([info.version, info.python_version], 1.0)
    yield build
    shard = GaugeMetricFamily(
        "sigma_exporter_shard",
        "Which shard of the reference list this process watches (value always 1).",
        labels=["shard_index", "shard_count"],
    )
    shard.add_metric([str(info.shard_index), str(info.shard_count)], 1.0)
    yield shard


def families(snapshot: Snapshot) -> list[Metric]:
    """Every metric family the snapshot implies, in a stable order."""
    sparse = snapshot.info.status_series == "current"
    return [
        *_report_families(snapshot, sparse),
        *_group_families(snapshot, sparse),
        *_reference_families(snapshot),
        *_api_families(snapshot),
        *_exporter_families(snapshot),
    ]


class SnapshotCollector(Collector):
    """A prometheus_client collector over one snapshot; it never calls the Sigma API."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families(self._snapshot)

    def describe(self) -> Iterator[Metric]:
        return iter(())
