"""What the poll thread holds: every run of this shard with its memory and due time, the report identities
they feed, and the bookkeeping of arrivals, removals and retention. Owned by the poll thread; the registry
gets an index of it, the state store what changed."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

from sigma_exporter.config.load import Config, Reference
from sigma_exporter.config.model import Expectation
from sigma_exporter.metrics.snapshot import IdentityState, RegistryState
from sigma_exporter.poll import accounting
from sigma_exporter.poll.due import DueQueue
from sigma_exporter.poll.memory import Memory
from sigma_exporter.runs.expectations import Verdict, judge
from sigma_exporter.runs.identities import Identities, IdentityKey
from sigma_exporter.runs.references import ReferenceFiles, in_shard, merge_references, shard_of
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.records import Changes, Loaded, RunRecord

log = logging.getLogger("sigma_exporter.poll.loop")

#: Retention is looked at no more often than this.
RETENTION_EVERY_SECONDS = 5.0

Key = tuple[str, str]


class Holdings:
    def __init__(self, registry: Registry, bounds: tuple[float, ...], loaded: Loaded) -> None:
        self.registry = registry
        self.memory: dict[Key, Memory] = {}
        self.queue: DueQueue[Key] = DueQueue()
        self.identities = Identities(bounds, loaded.identities)
        self.references: tuple[Reference, ...] = ()
        self._retired: list[str] = []
        self._last_retention = 0.0
        self._restored: dict[str, RunRecord] = {}
        self.expectations: dict[IdentityKey, Expectation] = {}
        self.verdicts: dict[IdentityKey, Verdict] = {}
        for record in loaded.runs:
            if registry.owns(record.ref.reference):
                if record.ref.source in ("config", "file"):
                    self._restored[record.ref.reference] = record
                else:
                    self.add(accounting.memory_of(record))

    def __iter__(self) -> Iterator[Memory]:
        return iter(self.memory.values())

    def __len__(self) -> int:
        return len(self.memory)

    def forget_restored(self) -> None:
        """After the first config is applied: stored config and file runs it no longer lists are retired."""
        for reference in self._restored:
            self.retire_reference(reference, "removed")
        self._restored.clear()

    # -- membership ------------------------------------------------------------------------------------
    def add(self, memory: Memory, due: float = 0.0) -> None:
        if memory.first_seen_at is None:
            memory.first_seen_at = memory.ref.registered_at or time.time()
        self.memory[memory.ref.key] = memory
        self.queue.set(memory.ref.key, due)
        accounting.touch_identities(memory, self.identities)

    def retire(self, key: Key, reason: str) -> None:
        memory = self.memory.pop(key, None)
        self.queue.remove(key)
        if memory is not None:
            self.retire_reference(memory.ref.reference, reason)

    def retire_reference(self, reference: str, reason: str) -> None:
        log.info("run retired", extra={"reference": reference, "reason": reason})
        self._retired.append(reference)
        self.registry.count_retired(reason)

    def apply_references(
        self, config: Config, files: ReferenceFiles, shard_index: int, shard_count: int
    ) -> None:
        """Config and file runs: new ones join (with what the store kept of them), removed ones retire."""
        merged, notes = merge_references(config, files)
        for note in notes:
            log.warning(note)
        refs = in_shard(merged, shard_index, shard_count)
        keep = {ref.key for ref in refs}
        for key, memory in list(self.memory.items()):
            if memory.ref.source in ("config", "file") and key not in keep:
                self.retire(key, "removed")
        for ref in refs:
            current = self.memory.get(ref.key)
            if current is None:
                held = next((m for m in self.memory.values() if m.ref.reference == ref.reference), None)
                if held is not None:  # registered through the API before the config listed it
                    self.memory.pop(held.ref.key)
                    self.queue.remove(held.ref.key)
                restored = self._restored.pop(ref.reference, None)
                if restored is not None and restored.ref.kind == ref.kind:
                    memory = accounting.memory_of(restored)
                    memory.ref, memory.dirty = ref, True
                else:
                    memory = Memory(ref)
                    self.registry.count_registered(ref.source, "created")
                self.add(memory)
            elif current.ref != ref:
                current.ref, current.dirty = ref, True  # labels changed
        if refs != self.references:
            log.info(
                "watching references",
                extra={
                    "references": len(refs),
                    "total": len(merged),
                    "shard": f"{shard_index}/{shard_count}",
                },
            )
        self.references = refs
        self.publish_index()

    def publish_index(self) -> None:
        self.registry.set_held({m.ref.reference: m.ref for m in self.memory.values()})

    def take_arrivals(self) -> bool:
        """Registrations and deletions from the registry; True when any came."""
        arrivals, deletions = self.registry.take()
        for reference in deletions:
            for key in [k for k in self.memory if k[1] == reference]:
                self.retire(key, "deleted")
        self._retired = [r for r in self._retired if r not in deletions]  # the API deleted the row itself
        for record in arrivals:
            if record.ref.key not in self.memory:
                self.add(accounting.memory_of(record))
        for ref in self.registry.take_starts():  # runs of other shards still start our identities
            memory = accounting.memory_of(RunRecord(ref, first_seen_at=ref.registered_at))
            for key in accounting.identity_keys(memory):
                self.identities.started(key, accounting.started_at(memory))
        if arrivals or deletions:
            self.publish_index()
        return bool(arrivals or deletions)

    # -- retention and the store -----------------------------------------------------------------------
    def apply_retention(self, config: Config) -> None:
        now = time.time()
        if now - self._last_retention < RETENTION_EVERY_SECONDS:
            return
        self._last_retention = now
        retired = False
        for key, memory in list(self.memory.items()):
            reason = accounting.retire_reason(memory, config.retention, now)
            if reason == "abandoned":
                accounting.count_abandoned(memory, self.identities, now)
            if reason is not None:
                self.retire(key, reason)
                retired = True
        if retired:
            self.publish_index()

    def changes(self) -> Changes:
        """What changed since the last call, for one write."""
        dirty = [m for m in self.memory.values() if m.dirty]
        for memory in dirty:
            memory.dirty = False
        retired, self._retired = tuple(self._retired), []
        return Changes(
            runs=tuple(accounting.record_of(m) for m in dirty),
            retired=retired,
            identities=self.identities.take_dirty(),
        )

    # -- expectations ----------------------------------------------------------------------------------
    def apply_expectations(self, config: Config, shard_index: int, shard_count: int) -> None:
        """The expectations this shard judges: those of the identities whose name hashes to it."""
        mine = {
            e.key: e
            for e in config.expectations.all()
            if shard_count <= 1 or shard_of(f"{e.report_group_id}/{e.report_id}", shard_count) == shard_index
        }
        self.expectations = mine
        self.identities.expected = frozenset(mine)
        self.verdicts = {k: v for k, v in self.verdicts.items() if k in mine}
        for key in mine:
            self.identities.touch(key, "", ())
        for memory in self.memory.values():
            accounting.touch_identities(memory, self.identities)

    def judge_expectations(self, now: float) -> float | None:
        """Bring every expectation's verdict up to `now`; returns when one may next change."""
        if not self.expectations:
            return None
        active: dict[IdentityKey, list[float]] = {}
        for memory in self.memory.values():
            if not memory.outcome:
                for key in accounting.identity_keys(memory):
                    if key in self.expectations:
                        active.setdefault(key, []).append(accounting.started_at(memory))
        wake = float("inf")
        for key, expectation in self.expectations.items():
            record = self.identities.get(key)
            if record is None:
                self.identities.touch(key, "", ())
                record = self.identities.get(key)
                assert record is not None
            updated, verdict, missed = judge(expectation, record, now, active.get(key, ()))
            self.identities.put(updated)
            for expected in missed:
                log.warning(
                    "expected run missed: no run started within grace",
                    extra={
                        "report_group_id": key[0],
                        "report_id": key[1],
                        "expected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expected)),
                        "grace_seconds": expectation.grace_seconds,
                    },
                )
            previous = self.verdicts.get(key)
            if verdict.overdue and not (previous and previous.overdue):
                log.warning(
                    "run overdue: active longer than max_duration_seconds",
                    extra={"report_group_id": key[0], "report_id": key[1]},
                )
            self.verdicts[key] = verdict
            wake = min(wake, verdict.wake_at)
        return wake

    # -- what a snapshot shows -------------------------------------------------------------------------
    def identity_states(self) -> tuple[IdentityState, ...]:
        active: Counter[tuple[str, str]] = Counter()
        for memory in self.memory.values():
            if not memory.outcome:
                active.update(accounting.identity_keys(memory))
        states = []
        for record in self.identities.all():
            expectation = self.expectations.get(record.key)
            labels = record.labels
            if expectation is not None and expectation.labels:
                labels = tuple(sorted({**dict(record.labels), **dict(expectation.labels)}.items()))
            states.append(
                IdentityState(record, active.get(record.key, 0), self.verdicts.get(record.key), labels)
            )
        return tuple(states)

    def registry_state(
        self, state_up: bool, schedules: tuple[tuple[tuple[str, str], int], ...] = ()
    ) -> RegistryState:
        held: Counter[tuple[str, str]] = Counter()
        for memory in self.memory.values():
            held[(memory.ref.source, "final" if memory.outcome else "active")] += 1
        registered, retired = self.registry.counters()
        return RegistryState(
            held=tuple(sorted(held.items())),
            registered=tuple(sorted(registered.items())),
            retired=tuple(sorted(retired.items())),
            state_up=state_up,
            duration_bounds=self.identities.bounds,
            schedules=schedules,
        )
