"""`state.url: memory:`: an explicit choice to keep nothing across restarts (runs registered through the
API are lost). Same interface as the SQL stores, so the rest of the exporter does not know the difference."""

from __future__ import annotations

import threading

from sigma_exporter.runs.store.records import (
    HISTORY_LENGTH,
    Arrivals,
    Changes,
    ExpectedRun,
    History,
    HistoryRun,
    IdentityRecord,
    Loaded,
    RunRecord,
)
from sigma_exporter.runs.store.schema import LATEST


class MemoryStore:
    """Keeps nothing across restarts: the same calls as the SQL stores (see `StateStore`), in a dict."""

    description = "memory:"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[RunRecord, int]] = {}
        self._tombstones: list[tuple[str, int]] = []
        self._identities: dict[tuple[str, str], IdentityRecord] = {}
        self._seq = 0
        self._firings: dict[str, float] = {}
        self._history: dict[tuple[str, str], dict[str, HistoryRun]] = {}
        self._expected: dict[tuple[str, str], dict[float, ExpectedRun]] = {}

    def start(self) -> None:
        """Nothing to connect to."""

    def stop(self, timeout: float) -> None:
        """Nothing to let go."""

    def migrate(self) -> int:
        """Nothing to migrate: the newest schema."""
        return LATEST

    def cursor(self) -> int:
        """The newest sequence number."""
        with self._lock:
            return self._seq

    def load(self) -> Loaded:
        """Every run and identity held, and the newest sequence number."""
        with self._lock:
            return Loaded(
                tuple(r for r, _ in self._runs.values()), tuple(self._identities.values()), self._seq
            )

    def register(self, record: RunRecord) -> RunRecord | None:
        """Insert a new run (None); or the run already held under its reference."""
        with self._lock:
            held = self._runs.get(record.ref.reference)
            if held is not None:
                return held[0]
            self._seq += 1
            self._runs[record.ref.reference] = (record, self._seq)
        return None

    def get(self, reference: str) -> RunRecord | None:
        """The run held under `reference`, if any."""
        with self._lock:
            held = self._runs.get(reference)
        return None if held is None else held[0]

    def delete(self, reference: str) -> bool:
        """Delete a run, leaving a tombstone; False when none was held."""
        with self._lock:
            if self._runs.pop(reference, None) is None:
                return False
            self._seq += 1
            self._tombstones.append((reference, self._seq))
        return True

    def write(self, changes: Changes) -> None:
        """What the poller changed. Like the SQL stores, a run of the API or a schedule is only updated, never
        brought back once deleted; config and file runs are upserted."""
        with self._lock:
            for record in changes.runs:
                held = self._runs.get(record.ref.reference)
                if held is not None:
                    self._runs[record.ref.reference] = (record, held[1])
                elif record.ref.source in ("config", "file"):
                    self._runs[record.ref.reference] = (record, 0)
            for reference in changes.retired:
                self._runs.pop(reference, None)
            for identity in changes.identities:
                self._identities[identity.key] = identity
            for run in changes.history:
                runs = self._history.setdefault(run.key[:2], {})
                runs[run.reference] = run
                if len(runs) > HISTORY_LENGTH:
                    newest = sorted(runs.values(), key=lambda r: r.final_at)[-HISTORY_LENGTH:]
                    self._history[run.key[:2]] = {r.reference: r for r in newest}
            for item in changes.expected:
                times = self._expected.setdefault(item.key[:2], {})
                times[item.expected_at] = item
                for old in sorted(times)[:-HISTORY_LENGTH]:
                    del times[old]

    def identities(self) -> tuple[IdentityRecord, ...]:
        """Every identity held, sorted by identity."""
        with self._lock:
            return tuple(self._identities[k] for k in sorted(self._identities))

    def history(self, report_group_id: str, report_id: str) -> History | None:
        """An identity's history, newest first; None when the identity is not held."""
        key = (report_group_id, report_id)
        with self._lock:
            identity = self._identities.get(key)
            if identity is None:
                return None
            runs = sorted(self._history.get(key, {}).values(), key=lambda r: (-r.final_at, r.reference))
            times = self._expected.get(key, {})
            return History(identity, tuple(runs), tuple(times[t] for t in sorted(times, reverse=True)))

    def arrivals(self, cursor: int) -> Arrivals:
        """Runs registered and deleted after `cursor`."""
        with self._lock:
            runs = tuple(r for r, seq in self._runs.values() if seq > cursor)
            deleted = tuple(ref for ref, seq in self._tombstones if seq > cursor)
            return Arrivals(runs, deleted, self._seq)

    def prune_tombstones(self, below: int) -> None:
        """Forget tombstones at or below `below`."""
        with self._lock:
            self._tombstones = [(r, s) for r, s in self._tombstones if s > below]

    def firings(self) -> dict[str, float]:
        """Per schedule, the latest firing claimed."""
        with self._lock:
            return dict(self._firings)

    def claim_firing(self, name: str, firing: float) -> bool:
        """Claim a schedule's firing; False when it (or a later one) was claimed."""
        with self._lock:
            if self._firings.get(name, float("-inf")) >= firing:
                return False
            self._firings[name] = firing
            return True

    def close(self) -> None:
        """Nothing to let go."""
