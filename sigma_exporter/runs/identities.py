"""Per report identity history (last success, last failure, durations, runs by outcome), owned by the poll
thread. Updated once per run, at its first final status; what changed is handed to the state store."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from sigma_exporter.runs.expectations import with_start
from sigma_exporter.runs.history import cleaned
from sigma_exporter.runs.outcomes import FAILED_OUTCOMES, SUCCESS
from sigma_exporter.runs.store.records import ExpectedRun, HistoryRun, IdentityRecord

IdentityKey = tuple[str, str]  # (report_group_id, report_id)
Latest = TypeVar("Latest", tuple[str, str, float], tuple[int, str, float, float])


class Identities:
    """Every report identity this shard exports, with its history. Owned by the poll thread."""

    def __init__(self, bounds: tuple[float, ...], redact: Callable[[str], str] = str) -> None:
        self.bounds = bounds
        self.redact = redact  # Sigma's error texts, before they are kept
        self._history: list[HistoryRun] = []
        self._expected: list[ExpectedRun] = []
        self._records: dict[IdentityKey, IdentityRecord] = {}
        self._dirty: set[IdentityKey] = set()
        self._sorted: tuple[IdentityRecord, ...] | None = None  # `all`, until a record changes
        self.expected: frozenset[IdentityKey] = frozenset()  # identities with an expectation

    def restore(self, records: tuple[IdentityRecord, ...]) -> None:
        """Take the identities the state store kept."""
        bounds = self.bounds
        for stored in records:
            # Reconfigured buckets: the old counts cannot be re-binned, so the histogram starts again.
            fresh = replace(
                stored,
                bounds=bounds,
                buckets=(0,) * (len(bounds) + 1),
                duration_sum=0.0,
                latest_buckets=(),
            )
            self._records[stored.key] = stored if stored.bounds == bounds else fresh
        self._sorted = None

    def get(self, key: IdentityKey) -> IdentityRecord | None:
        """The identity's record, None when it is not known."""
        return self._records.get(key)

    def all(self) -> tuple[IdentityRecord, ...]:
        """Every record, sorted by identity."""
        if self._sorted is None:
            self._sorted = tuple(self._records[k] for k in sorted(self._records))
        return self._sorted

    def _set(self, record: IdentityRecord) -> None:
        self._records[record.key] = record
        self._dirty.add(record.key)
        self._sorted = None

    def touch(self, key: IdentityKey, report_name: str, labels: tuple[tuple[str, str], ...]) -> None:
        """Make the identity known (it is exported from its first run on); keep its name and labels."""
        record = self._records.get(key)
        if record is None:
            record = IdentityRecord(
                key[0], key[1], report_name, labels, bounds=self.bounds, buckets=(0,) * (len(self.bounds) + 1)
            )
        elif (report_name and record.report_name != report_name) or (labels and record.labels != labels):
            record = replace(
                record, report_name=report_name or record.report_name, labels=labels or record.labels
            )
        else:
            return
        self._set(record)

    def count(
        self, key: IdentityKey, outcome: str, ended_at: float, duration: float | None, reference: str
    ) -> None:
        """One run of the identity, `reference`, ended (counted once, by the caller's guarantee)."""
        record = self._records[key]
        outcomes = dict(record.outcomes)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        changes: dict[str, object] = {
            "outcomes": tuple(sorted(outcomes.items())),
            "latest_runs": _newer(record.latest_runs, (outcome, reference, ended_at)),
        }
        if outcome == SUCCESS:
            changes["last_success"] = max(ended_at, record.last_success or 0.0)
        elif outcome in FAILED_OUTCOMES:
            changes["last_failure"] = max(ended_at, record.last_failure or 0.0)
        if duration is not None:
            buckets = list(record.buckets)
            index = bisect.bisect_left(self.bounds, duration)
            buckets[index] += 1
            changes.update(
                last_duration=duration,
                buckets=tuple(buckets),
                duration_sum=record.duration_sum + duration,
                latest_buckets=_newer(record.latest_buckets, (index, reference, duration, ended_at)),
            )
        self._set(replace(record, **changes))  # type: ignore[arg-type]

    def started(self, key: IdentityKey, at: float) -> None:
        """A run of the identity started at `at`; kept for identities with an expectation only."""
        record = self._records.get(key)
        if record is None or key not in self.expected:
            return
        updated = with_start(record, at)
        if updated is not record:
            self._set(updated)

    def put(self, record: IdentityRecord) -> None:
        """Replace a record (the expectation judge's); written to the store when it changed."""
        if self._records.get(record.key) != record:
            self._set(record)

    def ran(self, run: HistoryRun) -> None:
        """A run of an identity ended: kept in its history (its error texts redacted and escaped)."""
        self._history.append(cleaned(run, self.redact))

    def judged(self, entries: Iterable[ExpectedRun]) -> None:
        """Expected times of an identity judged (or met late): kept in its history."""
        self._expected.extend(entries)

    def take_history(self) -> tuple[tuple[HistoryRun, ...], tuple[ExpectedRun, ...]]:
        """The history gathered since the last call, for the state store."""
        taken = (tuple(self._history), tuple(self._expected))
        self._history.clear()
        self._expected.clear()
        return taken

    def take_dirty(self) -> tuple[IdentityRecord, ...]:
        """The records changed since the last call, for the state store."""
        dirty = tuple(self._records[k] for k in sorted(self._dirty))
        self._dirty.clear()
        return dirty


def _newer(entries: tuple[Latest, ...], entry: Latest) -> tuple[Latest, ...]:
    """`entries` (one per first item, sorted) with `entry` in its slot, unless the one there ended later (the
    last item is when it ended); on a tie the run counted now wins."""
    kept = {held[0]: held for held in entries}
    held = kept.get(entry[0])
    if held is None or entry[-1] >= held[-1]:
        kept[entry[0]] = entry
    return tuple(sorted(kept.values()))
