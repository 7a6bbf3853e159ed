"""What this shard holds: every run with what was last seen of it, the report identities the runs feed, the
expectations judged here, and the bookkeeping of arrivals, removals and retention.

Owned by the poll thread: every method is the poll thread's (or, before it starts, its builder's). What
it changed goes out by pull: the registry gets an index of the runs held (`publish_index`), the state
store what changed (`changes`), and the poller's due queue which runs joined and left (`take_membership`).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace

from sigma_exporter.config.load import Config, Reference
from sigma_exporter.config.model import Expectation, RetentionConfig
from sigma_exporter.runs import accounting
from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.expectations import ForwardStep, Verdict, judge
from sigma_exporter.runs.fold import fold
from sigma_exporter.runs.held import HeldRun, Key, Observation
from sigma_exporter.runs.history import verdict_entries
from sigma_exporter.runs.identities import Identities, IdentityKey
from sigma_exporter.runs.owned import Owned
from sigma_exporter.runs.references import ReferenceFiles, Shard, merge_references
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.records import Changes, Loaded, RunRecord
from sigma_exporter.sigma.errors import BadRequestError

log = logging.getLogger(__name__)

#: Retention is looked at no more often than this.
RETENTION_EVERY_SECONDS = 5.0


class Holdings:
    """Every run this shard holds (by key), the identities they feed and the expectations judged here.
    Owned by the poll thread: only the poller calls it (app.py at start, through `Poller.start`)."""

    def __init__(
        self,
        registry: Registry,
        bounds: tuple[float, ...],
        shard: Shard,
        clock: Clock | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.registry = registry
        self.clock = clock or Clock()
        self.shard = shard
        self.runs: dict[Key, HeldRun] = {}
        self.identities = Identities(bounds, redact, owns=lambda key: shard.owns(f"{key[0]}/{key[1]}"))
        self.identities.now = self.clock.monotonic
        self.owned = Owned(self.identities, self.runs, self.clock)
        self.references: tuple[Reference, ...] = ()
        self.expectations: dict[IdentityKey, Expectation] = {}
        self.verdicts: dict[IdentityKey, Verdict] = {}
        self._files = ReferenceFiles(())
        self._file_errors: frozenset[str] = frozenset()
        self._retired: list[str] = []
        self._joined: list[Key] = []
        self._left: list[Key] = []
        self._last_retention = 0.0
        self._restored: dict[str, RunRecord] = {}
        self._longest = math.inf  # retention.abandon_after_seconds: no duration is longer
        # The latest step of the wall clock the judge took in, and after a forward one the wall time of the
        # first judgement that saw it and the identities that had a missed run counted for it.
        self._step_seen = 0
        self._step_landed: float | None = None
        self._step_counted: set[IdentityKey] = set()
        self._missed_open: dict[
            IdentityKey, float
        ] = {}  # the latest missed expected time, until a run starts

    def __iter__(self) -> Iterator[HeldRun]:
        return iter(self.runs.values())

    def __len__(self) -> int:
        return len(self.runs)

    # -- what the store held -----------------------------------------------------------------------------
    def restore(self, loaded: Loaded) -> None:
        """Take what the state store held: runs of the API and schedules join as they were; config and
        file runs wait for the config (`use_config`) to list them again."""
        self.identities.restore(loaded.identities)
        for record in loaded.runs:
            if self.registry.owns(record.ref.reference):
                if record.ref.source in ("config", "file"):
                    self._restored[record.ref.reference] = record
                else:
                    self.add(accounting.held_of(record))

    def forget_restored(self) -> None:
        """After the first config is applied: stored config and file runs it no longer lists are retired."""
        for reference in self._restored:
            self._retire_reference(reference, "removed")
        self._restored.clear()

    # -- membership ------------------------------------------------------------------------------------
    def add(self, run: HeldRun) -> None:
        """A run joins (or replaces the one held under its key)."""
        if run.first_seen_at is None:
            run.first_seen_at = run.ref.registered_at or self.clock.time()
        self.runs[run.ref.key] = run
        self._joined.append(run.ref.key)
        accounting.touch_identities(run, self.identities)

    def retire(self, key: Key, reason: str) -> None:
        """A run leaves for `reason` (a RETIRE_REASONS value)."""
        run = self.runs.pop(key, None)
        if run is not None:
            self._left.append(key)
            self._retire_reference(run.ref.reference, reason)

    def _retire_reference(self, reference: str, reason: str) -> None:
        log.info("run retired", extra={"reference": reference, "reason": reason})
        self._retired.append(reference)
        self.registry.count_retired(reason)

    def take_membership(self) -> tuple[list[Key], list[Key]]:
        """The keys that joined and left since the last call (a key may be in both: it was replaced)."""
        joined, self._joined = self._joined, []
        left, self._left = self._left, []
        return joined, left

    # -- config and reference files ----------------------------------------------------------------------
    def use_config(self, config: Config, *, strict: bool = False) -> None:
        """Take a (new) config: its reference files are read again, its references and expectations
        applied. With `strict`, an invalid reference file raises ConfigError (at start); otherwise it keeps
        its last good references (a reload validated the files already)."""
        self._files = ReferenceFiles(config.references.files)
        self._files.refresh(strict=strict)
        self._apply_references(config)
        self._apply_expectations(config)

    def refresh_files(self, config: Config) -> list[str]:
        """Re-read the reference files that changed; returns the errors (each file keeps its last good
        references)."""
        changed, errors = self._files.refresh()
        for error in errors:
            if error not in self._file_errors:  # once per broken version of a file
                log.error(
                    "reference file is invalid; keeping its last good references", extra={"error": error}
                )
        self._file_errors = frozenset(errors)
        if changed:
            self._apply_references(config)
            self._apply_expectations(config)
        return errors

    def _apply_references(self, config: Config) -> None:
        """Config and file runs: new ones join (with what the store kept of them), removed ones retire."""
        merged, notes = merge_references(config, self._files)
        for note in notes:
            log.warning(note)
        refs = self.shard.select(merged)
        keep = {ref.key for ref in refs}
        for key, run in list(self.runs.items()):
            if run.ref.source in ("config", "file") and key not in keep:
                self.retire(key, "removed")
        self._longest = config.retention.abandon_after_seconds
        for ref in refs:
            current = self.runs.get(ref.key)
            if current is None:
                held = next((r for r in self.runs.values() if r.ref.reference == ref.reference), None)
                if held is not None:  # registered through the API before the config listed it
                    self.runs.pop(held.ref.key)
                    self._left.append(held.ref.key)
                restored = self._restored.pop(ref.reference, None)
                fresh = restored is None or restored.ref.kind != ref.kind
                if restored is not None and not fresh:
                    run = accounting.held_of(restored)
                    run.ref, run.dirty = ref, True
                else:
                    run = HeldRun(ref)
                    self.registry.count_registered(ref.source, "created")
                self.add(run)
                if fresh:  # first seen now, by this process: its durations go on the monotonic clock
                    accounting.saw_start(run, self.clock.time(), self.clock.monotonic())
            elif current.ref != ref:
                current.ref, current.dirty = ref, True  # labels changed
        if refs != self.references:
            log.info(
                "watching references",
                extra={"references": len(refs), "total": len(merged), "shard": str(self.shard)},
            )
        self.references = refs
        self.publish_index()

    def publish_index(self) -> None:
        """Tell the registry which references are held (for the API's 200, 404 and 409)."""
        self.registry.set_held({r.ref.reference: r.ref for r in self.runs.values()})

    def take_arrivals(self) -> bool:
        """Registrations and deletions from the registry; True when any came."""
        arrivals, deletions = self.registry.take()
        for reference in deletions:
            for key in [k for k in self.runs if k[1] == reference]:
                self.retire(key, "deleted")
        self._retired = [r for r in self._retired if r not in deletions]  # the API deleted the row itself
        for record in arrivals:
            if record.ref.key not in self.runs:
                run = accounting.held_of(record)
                self.add(run)
                accounting.saw_start(run, self.clock.time(), self.clock.monotonic())
        for ref in self.registry.take_starts():  # runs of other shards still start our identities
            run = accounting.held_of(RunRecord(ref, first_seen_at=ref.registered_at))
            for key in accounting.identity_keys(run):
                self.identities.started(key, accounting.started_at(run))
        if arrivals or deletions:
            self.publish_index()
        return bool(arrivals or deletions)

    # -- what a check saw --------------------------------------------------------------------------------
    def account(self, seen: Observation) -> int:
        """Fold what a check saw into its run and count the run once it ended; returns the number of
        status changes (0 for a run no longer held)."""
        run = self.runs.get(seen.ref.key)
        if run is None:
            return 0
        seen_before = bool(run.since)
        was_final = run.final
        changes = fold(run, seen)
        if seen.error is None:
            if changes:
                run.rechecks = 0
            elif was_final and run.final:
                run.rechecks += 1  # a re-check that found it as it was: the next one waits longer
                run.dirty = True
            accounting.touch_identities(run, self.identities)
            accounting.count_if_final(run, self.identities, seen_before, seen.checked_at, self._longest)
        elif isinstance(seen.error, BadRequestError):
            accounting.count_lost(run, self.identities, seen.checked_at)
        return changes

    # -- retention and the store -----------------------------------------------------------------------
    def apply_retention(self, retention: RetentionConfig, now: float) -> None:
        """Retire the api and schedule runs retention lets go (looked at every few seconds at most)."""
        if now - self._last_retention < RETENTION_EVERY_SECONDS:
            return
        self._last_retention = now
        self.owned.retire_idle(retention, now)
        retired = False
        for key, run in list(self.runs.items()):
            reason = accounting.retire_reason(run, retention, now)
            if reason == "abandoned":
                accounting.count_abandoned(run, self.identities, now)
            if reason is not None:
                self.retire(key, reason)
                retired = True
        if retired:
            self.publish_index()

    def changes(self) -> Changes:
        """What changed since the last call, for one write."""
        dirty = [r for r in self.runs.values() if r.dirty]
        for run in dirty:
            run.dirty = False
        retired, self._retired = tuple(self._retired), []
        history, expected = self.identities.take_history()
        records, epochs = self.identities.take_dirty()
        handoffs, consumed, dropped = self.identities.take_handoffs()
        return Changes(
            runs=tuple(accounting.record_of(r) for r in dirty),
            retired=retired,
            identities=records,
            history=history,
            expected=expected,
            epochs=epochs,
            handoffs=handoffs,
            consumed=consumed,
            dropped=dropped,
            max_identities=self.owned.max_identities,
        )

    # -- expectations ----------------------------------------------------------------------------------
    def _apply_expectations(self, config: Config) -> None:
        """The expectations this shard judges: those of the identities whose name hashes to it."""
        mine = {
            e.key: e
            for e in config.expectations.all()
            if self.shard.owns(f"{e.report_group_id}/{e.report_id}")
        }
        self.expectations = mine
        self.owned.use_config(config)
        self.identities.expected = frozenset(mine)
        self.verdicts = {k: v for k, v in self.verdicts.items() if k in mine}
        for key in mine:
            self.identities.touch(key, "", ())
        for run in self.runs.values():
            accounting.touch_identities(run, self.identities)

    def judge_expectations(self, now: float) -> float | None:
        """Bring every expectation's verdict up to `now`; returns when one may next change."""
        if not self.expectations:
            return None
        step = self._forward_step(now)
        mono = self.clock.monotonic()
        active: dict[IdentityKey, list[float]] = {}
        ages: dict[IdentityKey, list[float]] = {}
        for run in self.runs.values():
            if not run.outcome:
                for key in accounting.identity_keys(run):
                    if key in self.expectations:
                        active.setdefault(key, []).append(accounting.started_at(run))
                        ages.setdefault(key, []).append(accounting.age(run, now, mono))
        for key, starts in self.owned.remote_active.items():  # other shards': ages on the wall clock
            if key in self.expectations:
                active.setdefault(key, []).extend(starts)
                ages.setdefault(key, []).extend(now - start for start in starts)
        wake = float("inf")
        for key, expectation in self.expectations.items():
            record = self.identities.get(key)
            if record is None and self.identities.touch(key, "", ()):
                record = self.identities.get(key)
            if record is None:
                continue  # another process writes it (and judges it) for now
            jumped = None if step is None else ForwardStep(step, key in self._step_counted)
            updated, verdict, missed = judge(
                expectation, record, now, active.get(key, ()), ages=ages.get(key, ()), step=jumped
            )
            starts = [*updated.starts, *active.get(key, ())]
            entries, still_open = verdict_entries(expectation, updated, verdict.met, missed, starts)
            self.identities.put(
                replace(
                    updated,
                    missed_open=still_open,
                    missed=verdict.missed,
                    overdue=verdict.overdue,
                    next_expected_at=verdict.next_expected_at,
                )
            )
            self.identities.judged(entries)
            for expected in missed:
                extra: dict[str, object] = {
                    "report_group_id": key[0],
                    "report_id": key[1],
                    "expected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expected)),
                    "grace_seconds": expectation.grace_seconds,
                }
                if step is not None and expected <= step:
                    self._step_counted.add(key)
                    extra["clock_step"] = (
                        "the one missed run counted for the expected times a step jumped over"
                    )
                log.warning("expected run missed: no run started within grace", extra=extra)
            previous = self.verdicts.get(key)
            if verdict.overdue and not (previous and previous.overdue):
                log.warning(
                    "run overdue: active longer than max_duration_seconds",
                    extra={"report_group_id": key[0], "report_id": key[1]},
                )
            self.verdicts[key] = verdict
            wake = min(wake, verdict.wake_at)
        return wake

    def _forward_step(self, now: float) -> float | None:
        """After a forward step of the wall clock, the wall time of the first judgement that saw it (expected
        times up to it count as one missed run at most); None when the latest step went backward (the times
        it takes the clock back over come again: judged as they pass, unless judged already) or none came."""
        step = self.clock.last_step()
        if step is not None and step.number != self._step_seen:
            self._step_seen = step.number
            self._step_landed = now if step.seconds > 0 else None
            self._step_counted = set()
        return self._step_landed

    # -- counts for a snapshot -------------------------------------------------------------------------
    def active_by_identity(self) -> Counter[IdentityKey]:
        """Runs not yet ended, per identity they feed (other shards' included)."""
        return self.owned.active_by_identity()

    def oldest_active_by_identity(self) -> dict[IdentityKey, float]:
        """When the oldest run not yet ended started, per identity it feeds (other shards' included)."""
        return self.owned.oldest_active_by_identity()

    def held_by_source(self) -> Counter[tuple[str, str]]:
        """Runs held per (source, state)."""
        held: Counter[tuple[str, str]] = Counter()
        for run in self.runs.values():
            held[(run.ref.source, "final" if run.outcome else "active")] += 1
        return held
