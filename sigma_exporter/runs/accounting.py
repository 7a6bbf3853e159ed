"""Per run bookkeeping after each check: which report identities a run feeds, counting it once at its
first final status (or as lost), retention, and a run's record in the state store. Pure but for the
`Identities` it is given; the poll thread's."""

from __future__ import annotations

import logging
import math

from sigma_exporter.config.model import RETAINED_SOURCES, RetentionConfig
from sigma_exporter.runs.held import HeldRun, ReportRow
from sigma_exporter.runs.history import history_run
from sigma_exporter.runs.identities import Identities, IdentityKey
from sigma_exporter.runs.outcomes import ABANDONED, LOST, outcome_of_run
from sigma_exporter.runs.store.records import Handoff, RunRecord

log = logging.getLogger(__name__)


def identity_keys(memory: HeldRun) -> tuple[IdentityKey, ...]:
    """The identities a run feeds: an individual report ("", report_id); a group run as a whole (group, "")
    and each of its members (group, report_id). Known from the registration before Sigma names them."""
    ref = memory.ref
    if ref.kind == "report":
        report_id = next((r.report_id for r in memory.rows if r.report_id), "") or ref.report_id
        return (("", report_id),) if report_id else ()
    group_id = next((r.report_group_id for r in memory.rows if r.report_group_id), "") or ref.report_group_id
    if not group_id:
        return ()
    members = tuple((group_id, r.report_id) for r in memory.rows if r.report_id)
    return ((group_id, ""), *members)


def started_at(memory: HeldRun) -> float:
    """When the run started, for expectations: submitted, else registered, else first seen."""
    ref = memory.ref
    if ref.submitted_at is not None:
        return ref.submitted_at
    return ref.registered_at or memory.first_seen_at or 0.0


def saw_start(memory: HeldRun, now: float, mono: float) -> None:
    """The run joins now (`now` on the wall clock, `mono` on the monotonic): on the monotonic clock it started
    `mono` less how long before `now` it started (nothing less when its start lies ahead of `now`)."""
    memory.start_mono = mono - max(0.0, now - started_at(memory))


def age(memory: HeldRun, now: float, mono: float) -> float:
    """How long the run has been active: on the monotonic clock when it started in this process's sight, else
    on the wall clock."""
    if memory.start_mono is not None:
        return mono - memory.start_mono
    return now - started_at(memory)


def measured(memory: HeldRun, report_ids: list[str], start: float, end: float, longest: float) -> float:
    """How long the run took until its reports `report_ids` were final: on the monotonic clock when this process
    saw both ends, else from the wall times `start` to `end`; never below 0 nor above `longest` (a run active
    that long is abandoned, so more is a clock's error)."""
    ends = [memory.since_mono[rid] for rid in report_ids if rid in memory.since_mono]
    if memory.start_mono is not None and ends and len(ends) == len(report_ids):
        took = max(ends) - memory.start_mono
    else:
        took = end - start
    return min(max(took, 0.0), longest)


def name_of(memory: HeldRun, key: IdentityKey) -> str:
    """The report's name as the run's rows give it for identity `key` ("" for a group as a whole)."""
    if not key[1]:
        return ""
    return next((r.report_name for r in memory.rows if r.report_id and r.report_id == key[1]), "")


def touch_identities(memory: HeldRun, identities: Identities) -> None:
    """Make the run's identities known (with their names and labels) and tell them when it started; only
    those this process writes take it in."""
    start = started_at(memory)
    for key in identity_keys(memory):
        if identities.touch(key, name_of(memory, key), memory.ref.labels, seen=start):
            identities.started(key, start)


def _end(
    memory: HeldRun,
    identities: Identities,
    key: IdentityKey,
    outcome: str,
    final_at: float,
    duration: float | None,
) -> None:
    """The run ended for identity `key`: counted here, or handed to the identity's owner."""
    run = history_run(memory, key, outcome, final_at, duration)
    identities.end(Handoff(run, name_of(memory, key), memory.ref.labels))


def count_if_final(
    memory: HeldRun, identities: Identities, seen_before: bool, checked_at: float, longest: float = math.inf
) -> str:
    """Count the run at its first final status; returns the outcome ("" when not counted now). Durations are
    `measured` (at most `longest`: `retention.abandon_after_seconds`)."""
    if memory.outcome or not memory.up or not memory.rows:
        return ""
    outcome = outcome_of_run(row.status for row in memory.rows)
    if outcome is None:
        return ""
    ended = max((row.since for row in memory.rows), default=checked_at)
    start = memory.ref.submitted_at if memory.ref.submitted_at is not None else memory.first_seen_at
    # Without submitted_at, a run already final at its first check has no known duration.
    known = memory.ref.submitted_at is not None or seen_before
    report_ids = [row.report_id for row in memory.rows]
    duration = measured(memory, report_ids, start, ended, longest) if known and start is not None else None
    memory.outcome, memory.final_at, memory.dirty = outcome, ended, True
    keys = identity_keys(memory)
    if keys:
        _end(memory, identities, keys[0], outcome, ended, duration)
    for key in keys[1:]:  # members of a group, each with its own outcome
        row = next(r for r in memory.rows if r.report_id == key[1])
        member = outcome_of_run((row.status,)) or outcome
        member_duration = (
            measured(memory, [row.report_id], start, row.since, longest)
            if known and start is not None
            else None
        )
        _end(memory, identities, key, member, row.since, member_duration)
    log.info(
        "run ended",
        extra={
            "reference": memory.ref.reference,
            "kind": memory.ref.kind,
            "outcome": outcome,
            "duration_seconds": None if duration is None else round(duration, 3),
        },
    )
    return outcome


def count_lost(memory: HeldRun, identities: Identities, checked_at: float) -> bool:
    """A run Sigma knew and now rejects as unknown: counted once as lost."""
    if memory.outcome or not memory.since or memory.ref.source not in RETAINED_SOURCES:
        return False
    memory.outcome, memory.final_at, memory.dirty = LOST, checked_at, True
    keys = identity_keys(memory)
    if keys:
        _end(memory, identities, keys[0], LOST, checked_at, None)
    log.warning("Sigma no longer knows a run; counted as lost", extra={"reference": memory.ref.reference})
    return True


def retire_reason(memory: HeldRun, retention: RetentionConfig, now: float) -> str | None:
    """Why an api/schedule run should be let go now, or None."""
    if memory.ref.source not in RETAINED_SOURCES:
        return None
    if memory.outcome:
        if memory.final_at is not None and now - memory.final_at >= retention.final_seconds:
            return "retention"
        return None
    if now - memory.ref.registered_at >= retention.abandon_after_seconds:
        return "abandoned"
    return None


def count_abandoned(memory: HeldRun, identities: Identities, now: float) -> None:
    """A run retired before it ended: counted once as abandoned."""
    memory.outcome, memory.final_at = ABANDONED, now
    keys = identity_keys(memory)
    if keys:
        _end(memory, identities, keys[0], ABANDONED, now, None)
    log.warning(
        "run abandoned: not final within retention.abandon_after_seconds",
        extra={"reference": memory.ref.reference, "kind": memory.ref.kind},
    )


def record_of(memory: HeldRun) -> RunRecord:
    """The run as the state store keeps it."""
    return RunRecord(
        ref=memory.ref,
        first_seen_at=memory.first_seen_at,
        since=tuple((rid, status, since) for rid, (status, since) in sorted(memory.since.items())),
        final_at=memory.final_at,
        outcome=memory.outcome,
        report_name=memory.report_name,
        last_check_at=memory.last_check,
        rechecks=memory.rechecks,
        rows=memory.rows,
        group=memory.group,
    )


def held_of(record: RunRecord) -> HeldRun:
    """A run as the store kept it: what its last good check saw (shown at once, without checking it again),
    when that was, and how often it was re-checked since final, from which its next check follows."""
    return HeldRun(
        ref=record.ref,
        up=bool(record.since),
        last_check=record.last_check_at,
        rechecks=record.rechecks,
        rows=rows_of(record),
        group=record.group,
        since={rid: (status, since) for rid, status, since in record.since},
        first_seen_at=record.first_seen_at,
        final_at=record.final_at,
        outcome=record.outcome,
        report_name=record.report_name,
        dirty=False,
    )


def rows_of(record: RunRecord) -> tuple[ReportRow, ...]:
    """The reports a stored run shows: as its last check saw them, or (a store of schema 2, or a row a
    shard of the previous version updated) made from its statuses, names unknown but the report's own."""
    statuses = {rid: (status, since) for rid, status, since in record.since}
    if {r.report_id: (r.status, r.since) for r in record.rows} == statuses:
        return record.rows
    ref = record.ref
    group_id = ref.report_group_id if ref.kind == "group" else ""
    names = {r.report_id: r.report_name for r in record.rows}
    return tuple(
        ReportRow(
            group_id,
            rid,
            names.get(rid, record.report_name if ref.kind == "report" else ""),
            status,
            since,
        )
        for rid, (status, since) in statuses.items()
    )
