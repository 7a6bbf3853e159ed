"""The runs table's statements and rows, shared by the SQL stores. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.store.jsonforms import (
    labels_json,
    labels_of,
    seen_json,
    seen_of,
    since_json,
    since_of,
)
from sigma_exporter.runs.store.records import RunRecord

RUN_COLUMNS = (
    "reference, kind, source, labels, report_id, report_group_id, submitted_at, registered_at, "
    "first_seen_at, since, final_at, outcome, report_name, last_check_at, rechecks, seen"
)
_VALUES = ", ".join("?" * (RUN_COLUMNS.count(",") + 2))  # the columns and seq
# Statements are composed from the constant column list only, never from input.
SELECT_RUNS = f"SELECT {RUN_COLUMNS} FROM runs"  # noqa: S608
SELECT_RUN = f"SELECT {RUN_COLUMNS} FROM runs WHERE reference = ?"  # noqa: S608
SELECT_ARRIVALS = f"SELECT {RUN_COLUMNS}, seq FROM runs WHERE seq > ? ORDER BY seq"  # noqa: S608
SELECT_ACTIVE = f"SELECT {RUN_COLUMNS} FROM runs WHERE outcome = ''"  # noqa: S608
UPSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMNS}, seq) VALUES ({_VALUES}) "  # noqa: S608
    "ON CONFLICT (reference) DO UPDATE SET kind = excluded.kind, source = excluded.source, "
    "labels = excluded.labels, report_id = excluded.report_id, report_group_id = excluded.report_group_id, "
    "first_seen_at = excluded.first_seen_at, since = excluded.since, final_at = excluded.final_at, "
    "outcome = excluded.outcome, report_name = excluded.report_name, last_check_at = excluded.last_check_at, "
    "rechecks = excluded.rechecks, seen = excluded.seen"
)
INSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMNS}, seq) VALUES ({_VALUES}) "  # noqa: S608
    "ON CONFLICT (reference) DO NOTHING"
)
# Runs of the API and of schedules are inserted when registered; the poller only updates them, so a run
# deleted through another replica is not brought back by the owner's next write.
UPDATE_RUN = (
    "UPDATE runs SET labels = ?, report_id = ?, report_group_id = ?, first_seen_at = ?, since = ?, "
    "final_at = ?, outcome = ?, report_name = ?, last_check_at = ?, rechecks = ?, seen = ? WHERE reference = ?"
)


def run_row(record: RunRecord) -> tuple[object, ...]:
    """A run record as the values of `RUN_COLUMNS`, in order (without `seq`)."""
    ref = record.ref
    return (
        ref.reference,
        ref.kind,
        ref.source,
        labels_json(ref.labels),
        ref.report_id,
        ref.report_group_id,
        ref.submitted_at,
        ref.registered_at,
        record.first_seen_at,
        since_json(record.since),
        record.final_at,
        record.outcome,
        record.report_name,
        record.last_check_at,
        record.rechecks,
        seen_json(record.rows, record.group),
    )


def record_of(row: Sequence[Any]) -> RunRecord:
    """A run record from a row of `RUN_COLUMNS`."""
    rows, group = seen_of(row[15])
    ref = Reference(
        reference=row[0],
        kind=row[1],
        source=row[2],
        labels=labels_of(row[3]),
        report_id=row[4],
        report_group_id=row[5],
        submitted_at=row[6],
        registered_at=row[7],
    )
    return RunRecord(
        ref=ref,
        first_seen_at=row[8],
        since=since_of(row[9]),
        final_at=row[10],
        outcome=row[11],
        report_name=row[12],
        last_check_at=row[13],
        rechecks=int(row[14]),
        rows=rows,
        group=group,
    )
