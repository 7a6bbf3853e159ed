"""The JSON forms in which the state store keeps its records (their ids are columns of their own). Pure."""

from __future__ import annotations

import json

from sigma_exporter.runs.held import GroupCounts, ReportRow
from sigma_exporter.runs.store.records import (
    ExpectedRun,
    Handoff,
    HistoryRun,
    IdentityRecord,
)


def labels_json(labels: tuple[tuple[str, str], ...]) -> str:
    """Labels as the store keeps them: a JSON object, keys sorted."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def labels_of(text: str) -> tuple[tuple[str, str], ...]:
    """Labels from their stored JSON (empty text: none), sorted by name."""
    data = json.loads(text) if text else {}
    return tuple(sorted((str(k), str(v)) for k, v in data.items()))


def since_json(since: tuple[tuple[str, str, float], ...]) -> str:
    """A run's (report_id, status, since) triples as the store keeps them: a JSON array."""
    return json.dumps([list(item) for item in since], separators=(",", ":"))


def since_of(text: str) -> tuple[tuple[str, str, float], ...]:
    """A run's (report_id, status, since) triples from their stored JSON (empty text: none)."""
    return tuple((str(a), str(b), float(c)) for a, b, c in (json.loads(text) if text else []))


def seen_json(rows: tuple[ReportRow, ...], group: GroupCounts | None) -> str:
    """A run's reports and group counts as one JSON text ("" for none)."""
    if not rows and group is None:
        return ""
    document = {
        "rows": [
            [r.report_group_id, r.report_id, r.report_name, r.status, r.since, r.error_code, r.error_msg]
            for r in rows
        ],
        "group": None if group is None else [group.failures, group.successes, group.members],
    }
    return json.dumps(document, separators=(",", ":"))


def seen_of(text: str) -> tuple[tuple[ReportRow, ...], GroupCounts | None]:
    """`seen_json` read back."""
    if not text:
        return (), None
    document = json.loads(text)
    rows = tuple(
        ReportRow(str(g), str(i), str(n), str(st), float(since), str(code), str(msg))
        for g, i, n, st, since, code, msg in document.get("rows", [])
    )
    counts = document.get("group")
    group = None if counts is None else GroupCounts(*(None if c is None else int(c) for c in counts))
    return rows, group


def identity_json(record: IdentityRecord) -> str:
    """An identity record's history as the store keeps it: one JSON object (its ids are columns of their
    own)."""
    return json.dumps(
        {
            "report_name": record.report_name,
            "labels": dict(record.labels),
            "last_success": record.last_success,
            "last_failure": record.last_failure,
            "last_duration": record.last_duration,
            "outcomes": dict(record.outcomes),
            "bounds": list(record.bounds),
            "buckets": list(record.buckets),
            "duration_sum": record.duration_sum,
            "watched_since": record.watched_since,
            "judged_through": record.judged_through,
            "missed_total": record.missed_total,
            "starts": list(record.starts),
            "missed_open": record.missed_open,
            "latest_runs": [list(entry) for entry in record.latest_runs],
            "latest_buckets": [list(entry) for entry in record.latest_buckets],
            "seen_at": record.seen_at,
            "missed": record.missed,
            "overdue": record.overdue,
            "active": record.active,
            "next_expected_at": record.next_expected_at,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def identity_of(report_group_id: str, report_id: str, text: str) -> IdentityRecord:
    """An identity record from its ids and stored JSON; keys missing from older rows take their defaults."""
    data = json.loads(text)
    return IdentityRecord(
        report_group_id=report_group_id,
        report_id=report_id,
        report_name=str(data.get("report_name", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in data.get("labels", {}).items())),
        last_success=_opt(data.get("last_success")),
        last_failure=_opt(data.get("last_failure")),
        last_duration=_opt(data.get("last_duration")),
        outcomes=tuple(sorted((str(k), int(v)) for k, v in data.get("outcomes", {}).items())),
        bounds=tuple(float(b) for b in data.get("bounds", [])),
        buckets=tuple(int(b) for b in data.get("buckets", [])),
        duration_sum=float(data.get("duration_sum", 0.0)),
        watched_since=_opt(data.get("watched_since")),
        judged_through=_opt(data.get("judged_through")),
        missed_total=int(data.get("missed_total", 0)),
        starts=tuple(float(s) for s in data.get("starts", [])),
        missed_open=_opt(data.get("missed_open")),
        latest_runs=tuple((str(o), str(r), float(t)) for o, r, t in data.get("latest_runs", [])),
        latest_buckets=tuple(
            (int(i), str(r), float(d), float(t)) for i, r, d, t in data.get("latest_buckets", [])
        ),
        seen_at=_opt(data.get("seen_at")),
        missed=bool(data.get("missed", False)),
        overdue=bool(data.get("overdue", False)),
        active=int(data.get("active", 0)),
        next_expected_at=_opt(data.get("next_expected_at")),
    )


def history_run_fields(run: HistoryRun) -> dict[str, object]:
    """A history run's fields but its identity and reference, by the names the store and the API use."""
    return {
        "kind": run.kind,
        "source": run.source,
        "started_at": run.started_at,
        "final_at": run.final_at,
        "duration_seconds": run.duration_seconds,
        "outcome": run.outcome,
        "error_code": run.error_code,
        "error_message": run.error_message,
    }


def history_run_json(run: HistoryRun) -> str:
    """A history run as the store keeps it (its ids and reference are columns of their own)."""
    return json.dumps(history_run_fields(run), sort_keys=True, separators=(",", ":"))


def history_run_of(report_group_id: str, report_id: str, reference: str, text: str) -> HistoryRun:
    """`history_run_json` read back."""
    data = json.loads(text)
    return HistoryRun(
        report_group_id,
        report_id,
        reference,
        kind=str(data.get("kind", "")),
        source=str(data.get("source", "")),
        started_at=_opt(data.get("started_at")),
        final_at=float(data["final_at"]),
        duration_seconds=_opt(data.get("duration_seconds")),
        outcome=str(data.get("outcome", "")),
        error_code=str(data.get("error_code", "")),
        error_message=str(data.get("error_message", "")),
    )


def expected_run_json(run: ExpectedRun) -> str:
    """A judged expected time as the store keeps it (its ids and time are columns of their own)."""
    return json.dumps(
        {"started_at": run.started_at, "late": run.late, "missed": run.missed},
        sort_keys=True,
        separators=(",", ":"),
    )


def expected_run_of(report_group_id: str, report_id: str, expected_at: float, text: str) -> ExpectedRun:
    """`expected_run_json` read back."""
    data = json.loads(text)
    return ExpectedRun(
        report_group_id,
        report_id,
        float(expected_at),
        started_at=_opt(data.get("started_at")),
        late=bool(data.get("late", False)),
        missed=bool(data.get("missed", False)),
    )


def handoff_json(handoff: Handoff) -> str:
    """A hand-off as the store's `outcomes` keep it (its identity and reference are columns of their own)."""
    return json.dumps(
        {
            **history_run_fields(handoff.run),
            "report_name": handoff.report_name,
            "labels": dict(handoff.labels),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def handoff_of(report_group_id: str, report_id: str, reference: str, text: str) -> Handoff:
    """`handoff_json` read back."""
    data = json.loads(text)
    return Handoff(
        history_run_of(report_group_id, report_id, reference, text),
        report_name=str(data.get("report_name", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in data.get("labels", {}).items())),
    )
