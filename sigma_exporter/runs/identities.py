"""Per report identity history (last success, last failure, durations, runs by outcome) of the identities
this process writes, owned by the poll thread. One writer per identity: a process holds an identity it
took from the store (at an epoch) or created; a run of another identity is handed to its owner. Counted
once per run (a reference its history holds is not counted again); what changed is handed to the store."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from sigma_exporter.runs.expectations import with_start
from sigma_exporter.runs.history import cleaned
from sigma_exporter.runs.outcomes import FAILED_OUTCOMES, SUCCESS
from sigma_exporter.runs.store.records import HISTORY_LENGTH, ExpectedRun, Handoff, HistoryRun, IdentityRecord

IdentityKey = tuple[str, str]  # (report_group_id, report_id)
Latest = TypeVar("Latest", tuple[str, str, float], tuple[int, str, float, float])
#: An identity another process owns (or one refused) is not created here again for this long.
RETRY_SECONDS = 10.0


def _all(_key: IdentityKey) -> bool:
    return True


class Identities:
    """Every report identity this shard exports, with its history. Owned by the poll thread."""

    def __init__(
        self,
        bounds: tuple[float, ...],
        redact: Callable[[str], str] = str,
        owns: Callable[[IdentityKey], bool] = _all,
    ) -> None:
        self.bounds = bounds
        self.redact = redact  # Sigma's error texts, before they are kept
        self.owns = owns  # the identities that hash to this shard
        self._history: list[HistoryRun] = []
        self._expected: list[ExpectedRun] = []
        self._records: dict[IdentityKey, IdentityRecord] = {}
        self._epochs: dict[IdentityKey, int] = {}
        self._counted: dict[IdentityKey, list[str]] = {}  # the references its history holds, oldest first
        self._dirty: set[IdentityKey] = set()
        self._sorted: tuple[IdentityRecord, ...] | None = None  # `all`, until a record changes
        self._handoffs: list[Handoff] = []
        self._consumed: list[tuple[str, str, str]] = []
        # Stored outcomes counted here whose delete has not been seen yet: a read of the outcomes from before
        # that delete lists them still, and they are not counted again (however many wait).
        self._consuming: set[tuple[str, str, str]] = set()
        self._created: dict[IdentityKey, float] = {}  # made here, and when the store had it (monotonic)
        self._dropped: list[tuple[IdentityKey, int]] = []
        self._not_here: dict[IdentityKey, float] = {}  # another owner's, or refused: until when (monotonic)
        self.refused_total = 0
        self._refused: set[IdentityKey] = set()
        self.expected: frozenset[IdentityKey] = frozenset()  # identities with an expectation
        self.now: Callable[[], float] = lambda: 0.0  # the monotonic clock of `_not_here`

    def adopt(self, stored: IdentityRecord, epoch: int, counted: tuple[str, ...], now: float) -> None:
        """Take an identity from the store (this process owns it at `epoch` now): its record as stored, the
        references its history holds."""
        bounds = self.bounds
        # Reconfigured buckets: the old counts cannot be re-binned, so the histogram starts again.
        record = stored
        if stored.bounds != bounds:
            record = replace(
                stored, bounds=bounds, buckets=(0,) * (len(bounds) + 1), duration_sum=0.0, latest_buckets=()
            )
        if record.seen_at is None:  # kept before retention of identities: its 400 days start now
            record = replace(record, seen_at=now)
        key = record.key
        self._records[key] = record
        self._epochs[key] = epoch
        self._counted[key] = list(counted)
        self._not_here.pop(key, None)
        self._created.pop(key, None)
        self._drop_consuming(key)
        if record is not stored:
            self._dirty.add(key)
        self._sorted = None

    def restore(self, records: tuple[IdentityRecord, ...]) -> None:
        """Take records as this process's own (a store of one process; tests)."""
        for record in records:
            self.adopt(record, 1, (), record.seen_at or 0.0)

    def lose(self, key: IdentityKey, epoch: int) -> None:
        """A write of the identity at `epoch` found another owner: forget it, unless it was taken again since
        (its counts went to the store's outcomes for that owner)."""
        if self._epochs.get(key) != epoch:
            return
        self._forget(key)
        self._not_here[key] = self.now() + RETRY_SECONDS

    def refuse(self, key: IdentityKey) -> None:
        """The identity is new beyond retention.max_identities: not created, not exported."""
        self._forget(key)
        if key not in self._refused:  # each identity once, however often its runs try again
            self._refused.add(key)
            self.refused_total += 1
        self._not_here[key] = self.now() + RETRY_SECONDS

    def retire(self, key: IdentityKey) -> None:
        """The identity is let go: its series end, and its record and history are deleted."""
        epoch = self._epochs.get(key)
        self._forget(key)
        if epoch is not None:
            self._dropped.append((key, epoch))

    def _forget(self, key: IdentityKey) -> None:
        self._records.pop(key, None)
        self._epochs.pop(key, None)
        self._counted.pop(key, None)
        self._created.pop(key, None)
        self._drop_consuming(key)
        self._dirty.discard(key)
        self._sorted = None

    def _drop_consuming(self, key: IdentityKey) -> None:
        self._consuming = {k for k in self._consuming if k[:2] != key}

    def created(self, keys: Iterable[IdentityKey], at: float) -> None:
        """The store has the identities this process made (a write committed at `at`, monotonic)."""
        for key in keys:
            if self._epochs.get(key) == 0:
                self._created.setdefault(key, at)

    def created_at(self, key: IdentityKey) -> float | None:
        """When the store had the identity this process made (None: not known to yet)."""
        return self._created.get(key)

    def outcomes_now(self, keys: set[tuple[str, str, str]]) -> None:
        """The outcomes the store holds now (a fresh read): the ones counted here and gone are done with."""
        self._consuming &= keys

    def held(self) -> dict[IdentityKey, int]:
        """The identities held, with their epochs."""
        return dict(self._epochs)

    def may_create(self, key: IdentityKey) -> bool:
        """The identity hashes here and no other process is known to own it (or it was refused) lately."""
        if not self.owns(key):
            return False
        until = self._not_here.get(key)
        if until is None:
            return True
        if self.now() >= until:
            del self._not_here[key]
            return True
        return False

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

    def touch(
        self,
        key: IdentityKey,
        report_name: str,
        labels: tuple[tuple[str, str], ...],
        seen: float | None = None,
    ) -> bool:
        """Make the identity known when this process writes it (it is exported from its first run on; one it
        may create is created, at epoch 0); keep its name and labels, and `seen`, when a run joined. False
        when another process writes it."""
        record = self._records.get(key)
        if record is None:
            if not self.may_create(key):
                return False
            record = IdentityRecord(
                key[0],
                key[1],
                report_name,
                labels,
                bounds=self.bounds,
                buckets=(0,) * (len(self.bounds) + 1),
                seen_at=seen,
            )
            self._epochs[key] = 0  # created here: stored at epoch 1
            self._counted[key] = []
        elif (
            (report_name and record.report_name != report_name)
            or (labels and record.labels != labels)
            or (seen is not None and seen > (record.seen_at or 0.0))
        ):
            record = replace(
                record,
                report_name=report_name or record.report_name,
                labels=labels or record.labels,
                seen_at=seen if seen is not None and seen > (record.seen_at or 0.0) else record.seen_at,
            )
        else:
            return True
        self._set(record)
        return True

    def end(self, handoff: Handoff, *, stored: bool = False) -> bool:
        """A run of an identity ended: counted here when this process writes the identity (unless its history
        holds the reference: counted once), else handed to its owner through the store. `stored`: the
        outcome came from the store (another shard's), and is deleted once counted. True when counted."""
        run = handoff.run
        key = handoff.identity
        if not self.touch(key, handoff.report_name, handoff.labels):
            if not stored:
                self._handoffs.append(handoff)
            return False
        if stored:
            if handoff.key in self._consuming:
                return False  # counted here already; its delete is on its way
            self._consuming.add(handoff.key)
            self._consumed.append(handoff.key)
        counted = self._counted.setdefault(key, [])
        if run.reference in counted:
            if stored:
                self._dirty.add(key)  # written, so that the stored outcome is deleted
            return False
        counted.append(run.reference)
        del counted[:-HISTORY_LENGTH]
        if not stored:
            self._handoffs.append(handoff)  # the store counts it for the owner, should this write be lost
        self.count(key, run.outcome, run.final_at, run.duration_seconds, run.reference)
        self.ran(run)
        return True

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
            "seen_at": max(ended_at, record.seen_at or 0.0),
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

    def take_dirty(self) -> tuple[tuple[IdentityRecord, ...], tuple[tuple[IdentityKey, int], ...]]:
        """The records changed since the last call, and the epochs they are written under, for the store."""
        keys = sorted(self._dirty)
        self._dirty.clear()
        return tuple(self._records[k] for k in keys), tuple((k, self._epochs[k]) for k in keys)

    def take_handoffs(
        self,
    ) -> tuple[tuple[Handoff, ...], tuple[tuple[str, str, str], ...], tuple[tuple[IdentityKey, int], ...]]:
        """Since the last call: the outcomes of runs polled here, the stored outcomes counted, the
        identities retired."""
        taken = (tuple(self._handoffs), tuple(self._consumed), tuple(self._dropped))
        self._handoffs.clear()
        self._consumed.clear()
        self._dropped.clear()
        return taken


def _newer(entries: tuple[Latest, ...], entry: Latest) -> tuple[Latest, ...]:
    """`entries` (one per first item, sorted) with `entry` in its slot, unless the one there ended later (the
    last item is when it ended); on a tie the run counted now wins."""
    kept = {held[0]: held for held in entries}
    held = kept.get(entry[0])
    if held is None or entry[-1] >= held[-1]:
        kept[entry[0]] = entry
    return tuple(sorted(kept.values()))
