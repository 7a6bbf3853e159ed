"""The run registry's front door: registrations and deletions from the API (and, later, schedules), made
durable in the state store before they are acknowledged, then handed to the poll thread.

The poll thread owns what it polls; the registry keeps an index of every run held (so that the API can
answer 200, 409 and 404 at once) and an inbox of arrivals. With several shards on one PostgreSQL database
a sync thread also brings in runs registered (or deleted) through other shards.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.store import IdentitiesFull, StateStore, StoreError
from sigma_exporter.runs.store.records import RunRecord
from sigma_exporter.runs.store.writer import StateWriter

log = logging.getLogger(__name__)

#: How often a shard looks for runs registered through other shards.
SYNC_SECONDS = 1.0


class RegistryFull(Exception):
    """`retention.max_runs` runs are held."""


class IdentitiesRefused(Exception):
    """The run's report identity would be new beyond `retention.max_identities` (across shards)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field  # the registration's field that names the identity


class KindConflict(Exception):
    """The reference is held as a run of the other kind."""

    def __init__(self, held: Reference) -> None:
        super().__init__(f"reference {held.reference} is held as a {held.kind} run")
        self.held = held


class NotDeletable(Exception):
    """Only runs registered through the API can be deleted."""

    def __init__(self, held: Reference) -> None:
        super().__init__(f"reference {held.reference} comes from {held.source}; only api runs can be deleted")
        self.held = held


@dataclass(frozen=True)
class Registration:
    """What a registration came to, and the run held under its reference."""

    result: str  # "created" | "existing"
    ref: Reference


class Registry:
    """The front door of the runs: registrations and deletions made durable, then handed to the poll thread.

    Who calls what: the API's handlers and the scheduler call `register`, `delete`, `held`, `all_held`,
    `lookup` and `count_registered` from any thread; the poll thread calls `take`, `take_starts`,
    `set_held`, `count_retired` and `counters`; app.py calls `start` and `stop`. Every arrival sets `wake`,
    which the poll loop waits on.
    """

    def __init__(
        self,
        store: StateStore,
        writer: StateWriter,
        *,
        max_runs: int,
        max_identities: int = 0,
        shard: Shard | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.max_runs = max_runs
        self.max_identities = max_identities
        self.shard = shard or Shard()
        self._wake = wake or threading.Event()
        self._lock = threading.Lock()
        self._held: dict[str, Reference] = {}
        self._inbox: dict[str, RunRecord] = {}
        self._deletions: list[str] = []
        self._starts: list[Reference] = []  # every run registered anywhere, for expectations (any shard)
        self._cursor = 0
        self.registered: Counter[tuple[str, str]] = Counter()
        self.retired: Counter[str] = Counter()
        self._stop = threading.Event()
        self._sync: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Follow the store for runs registered (or deleted) through other processes, from its newest
        sequence number on: the other shards, and while shard counts change (a rolling restart) the
        processes of the old count, whose runs this one may poll now. Raises StoreError."""
        if self._sync is None and self.store.description != "memory:":
            self._cursor = self.store.cursor()
            self._sync = threading.Thread(target=self._sync_forever, name="sigma-registry-sync", daemon=True)
            self._sync.start()

    def stop(self, timeout: float) -> None:
        """Stop following the shared store."""
        self._stop.set()
        if self._sync is not None:
            self._sync.join(timeout)

    def owns(self, reference: str) -> bool:
        """This shard polls the run `reference`."""
        return self.shard.owns(reference)

    # -- the API's calls (any thread) ------------------------------------------------------------------
    def held(self, reference: str) -> Reference | None:
        """The run held (or just registered) under `reference`, if any. Any thread."""
        with self._lock:
            pending = self._inbox.get(reference)
            return pending.ref if pending is not None else self._held.get(reference)

    def all_held(self) -> dict[str, Reference]:
        """Every run held or just registered (the poll thread may not have published it yet)."""
        with self._lock:
            return {**self._held, **{ref: record.ref for ref, record in self._inbox.items()}}

    def size(self) -> int:
        """How many runs are held or just registered, against `max_runs`. Any thread."""
        with self._lock:
            return len(self._held) + len(self._inbox)

    def register(self, ref: Reference) -> Registration:
        """Raises RegistryFull, IdentitiesRefused, KindConflict or StoreError (then nothing was registered)."""
        held = self.held(ref.reference)
        if held is None:
            if self.size() >= self.max_runs:
                self._count(ref.source, "rejected")
                raise RegistryFull(f"{self.max_runs} runs are held (retention.max_runs)")
            try:
                stored = self.store.register(
                    RunRecord(ref, first_seen_at=ref.registered_at), self.max_identities
                )
            except IdentitiesFull:
                self._count(ref.source, "rejected")
                field = "report_group_id" if ref.kind == "group" else "report_id"
                raise IdentitiesRefused(
                    f"{self.max_identities} report identities are held (retention.max_identities); "
                    f"{field} would be a new one",
                    field,
                ) from None
            except StoreError as exc:
                self._refused(ref.reference, exc)
                self._count(ref.source, "rejected")
                raise
            self.writer.mark(True)
            if stored is None:
                with self._lock:
                    self._starts.append(ref)
                if self.owns(ref.reference):
                    with self._lock:
                        self._inbox[ref.reference] = RunRecord(ref, first_seen_at=ref.registered_at)
                    self._wake.set()
                self._count(ref.source, "created")
                log.info(
                    "run registered",
                    extra={"reference": ref.reference, "kind": ref.kind, "source": ref.source},
                )
                return Registration("created", ref)
            held = stored.ref
        if held.kind != ref.kind:
            self._count(ref.source, "rejected")
            raise KindConflict(held)
        self._count(ref.source, "existing")
        return Registration("existing", held)

    def delete(self, reference: str) -> Reference | None:
        """The deleted run, None when none is held. Raises NotDeletable or StoreError."""
        held = self.held(reference)
        if held is None and not self.owns(reference):
            stored = self.store.get(reference)
            held = stored.ref if stored is not None else None
        if held is None:
            return None
        if held.source != "api":
            raise NotDeletable(held)
        try:
            self.store.delete(reference)
        except StoreError as exc:
            self._refused(reference, exc)
            raise
        self.writer.mark(True)
        if self.owns(reference):
            with self._lock:
                self._inbox.pop(reference, None)
                self._held.pop(reference, None)
                self._deletions.append(reference)
            self._wake.set()
        return held

    def _refused(self, reference: str, exc: StoreError) -> None:
        """One log line per outage of the store, however many requests it refuses."""
        if self.writer.mark(False):
            log.error(
                "cannot write to the state store; registrations and deletions are refused (503) until it can",
                extra={"reference": reference, "error": str(exc)},
            )

    def lookup(self, reference: str) -> RunRecord | None:
        """A run held by another shard (the shared store knows it)."""
        try:
            return self.store.get(reference)
        except StoreError:
            return None

    # -- the poll thread's calls -----------------------------------------------------------------------
    def take(self) -> tuple[list[RunRecord], list[str]]:
        """Arrivals and deletions since the last call."""
        with self._lock:
            arrivals, self._inbox = list(self._inbox.values()), {}
            deletions, self._deletions = self._deletions, []
            # Held from now on, before the poll thread publishes its index: no moment in which a run just
            # registered answers 404.
            self._held = {**self._held, **{record.ref.reference: record.ref for record in arrivals}}
        return arrivals, deletions

    def take_starts(self) -> list[Reference]:
        """Runs registered since the last call, through this shard or (from the shared store) another."""
        with self._lock:
            starts, self._starts = self._starts, []
        return starts

    def set_held(self, refs: dict[str, Reference]) -> None:
        """The index of the runs the poll thread holds (replaces the previous one)."""
        with self._lock:
            self._held = refs

    def count_retired(self, reason: str, n: int = 1) -> None:
        """Count runs let go, for sigma_runs_retired_total."""
        with self._lock:
            self.retired[reason] += n

    def count_registered(self, source: str, result: str) -> None:
        """Count a registration, for sigma_runs_registered_total."""
        self._count(source, result)

    def _count(self, source: str, result: str) -> None:
        with self._lock:
            self.registered[(source, result)] += 1

    def counters(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """Registrations by (source, result) and retirements by reason, so far."""
        with self._lock:
            return dict(self.registered), dict(self.retired)

    # -- replicas --------------------------------------------------------------------------------------
    def _sync_forever(self) -> None:
        while not self._stop.wait(SYNC_SECONDS):
            try:
                arrivals = self.store.arrivals(self._cursor)
            except StoreError as exc:
                log.debug("cannot read arrivals from the state store", extra={"error": str(exc)})
                continue
            mine = [r for r in arrivals.runs if self.owns(r.ref.reference)]
            gone = [ref for ref in arrivals.deleted if self.owns(ref)]
            with self._lock:
                self._starts.extend(r.ref for r in arrivals.runs if not self.owns(r.ref.reference))
                for record in mine:
                    if record.ref.reference not in self._held:
                        self._inbox.setdefault(record.ref.reference, record)
                self._deletions.extend(ref for ref in gone if ref in self._held or ref in self._inbox)
                for ref in gone:
                    self._inbox.pop(ref, None)
            self._cursor = arrivals.cursor
            if mine or gone:
                self._wake.set()
