"""Folding what one check saw into what the exporter holds of a run: statuses, `since` times (on the wall
clock, and on the monotonic clock for durations), group counts, and the log lines an operator wants (status
changes, failures, recoveries, undocumented statuses)."""

from __future__ import annotations

import logging

from sigma_exporter.runs.held import GroupCounts, HeldRun, Observation, row_of
from sigma_exporter.sigma.replies import PENDING, UNKNOWN, GroupReply, ReportResult

log = logging.getLogger(__name__)


def fold(memory: HeldRun, outcome: Observation) -> int:
    """Fold what one check saw into the run; returns the number of status changes."""
    ref = outcome.ref
    memory.last_check = outcome.checked_at
    if outcome.error is not None:
        # Warn when a reference starts failing or fails differently; repeats go to DEBUG.
        level = logging.WARNING if memory.last_error_reason != outcome.error.reason else logging.DEBUG
        log.log(
            level,
            "check failed",
            extra={
                "reference": ref.reference,
                "kind": ref.kind,
                "reason": outcome.error.reason,
                "error": str(outcome.error),
            },
        )
        memory.up = False
        memory.last_error = str(outcome.error)
        memory.last_error_reason = outcome.error.reason
        return 0
    if not memory.up and memory.last_check is not None and memory.last_error:
        log.info("check recovered", extra={"reference": ref.reference, "kind": ref.kind})
    memory.up = True
    memory.last_error = ""
    memory.last_error_reason = ""
    reply = outcome.reply
    if isinstance(reply, GroupReply):
        reports = reply.reports
        if reply.pending:
            reports = (ReportResult(report_id="", report_name="", status=PENDING),)
        for note in reply.notes:
            log.debug("group reply oddity", extra={"reference": ref.reference, "note": note})
        memory.group = GroupCounts(reply.failure_count, reply.success_count, reply.member_count)
    else:
        assert reply is not None
        reports = (reply.report,)
        memory.group = None
    changes = 0
    since: dict[str, tuple[str, float]] = {}
    rows = []
    for report in reports:
        previous = memory.since.get(report.report_id)
        if previous is not None and previous[0] == report.status:
            since[report.report_id] = previous
        else:
            since[report.report_id] = (report.status, outcome.checked_at)
            if outcome.checked_mono is None:
                memory.since_mono.pop(report.report_id, None)
            else:
                memory.since_mono[report.report_id] = outcome.checked_mono
            changes += 1
            log.info(
                "report status changed",
                extra={
                    "reference": ref.reference,
                    "report_id": report.report_id,
                    "report_name": report.report_name,
                    "from": previous[0] if previous else "",
                    "to": report.status,
                },
            )
        if report.status == UNKNOWN and report.raw_status not in memory.unknown_logged:
            memory.unknown_logged.add(report.raw_status)
            log.warning(
                "Sigma sent an undocumented reportStatus; exported as UNKNOWN",
                extra={
                    "reference": ref.reference,
                    "report_id": report.report_id,
                    "raw_status": report.raw_status,
                },
            )
        rows.append(row_of(report, since[report.report_id][1]))
    memory.since = since
    memory.rows = tuple(rows)
    if ref.kind == "report" and rows and rows[0].report_name:
        memory.report_name = rows[0].report_name
    if changes:
        memory.dirty = True
    return changes
