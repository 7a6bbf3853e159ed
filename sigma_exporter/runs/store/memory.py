"""`state.url: memory:`: an explicit choice to keep nothing across restarts (runs registered through the
API are lost). Same interface as the SQL stores, so the rest of the exporter does not know the difference."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sigma_exporter.runs.store.records import (
    HISTORY_LENGTH,
    Arrivals,
    Changes,
    ExpectedRun,
    Handoff,
    History,
    HistoryRun,
    IdentitiesFull,
    IdentityKey,
    IdentityRecord,
    Loaded,
    RunRecord,
    WriteResult,
    owner_token,
    registered_identity,
)
from sigma_exporter.runs.store.schema import LATEST


class MemoryStore:
    """Keeps nothing across restarts: the same calls as the SQL stores (see `StateStore`), in a dict."""

    description = "memory:"

    def __init__(self) -> None:
        self.token = owner_token()
        self._owners: dict[IdentityKey, tuple[str | None, int]] = {}  # identity -> (owner, epoch)
        self._outcomes: dict[tuple[str, str, str], Handoff] = {}
        self._reserved: set[IdentityKey] = set()  # reserved by a registration, nothing written to them yet
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
        """Every run held, and the newest sequence number (identities are taken with `acquire`)."""
        with self._lock:
            return Loaded(tuple(r for r, _ in self._runs.values()), (), self._seq)

    def register(self, record: RunRecord, max_identities: int = 0) -> RunRecord | None:
        """Insert a new run (None), its identity reserved; or the run already held under its reference.
        Raises IdentitiesFull when its identity would be new beyond `max_identities`."""
        with self._lock:
            held = self._runs.get(record.ref.reference)
            if held is not None:
                return held[0]
            key = registered_identity(record)
            if key is not None and key not in self._identities:
                if max_identities and len(self._identities) >= max_identities:
                    raise IdentitiesFull(f"{max_identities} report identities are held")
                self._identities[key] = IdentityRecord(*key)
                self._owners[key] = (None, 1)
                self._reserved.add(key)
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

    def write(self, changes: Changes) -> WriteResult:
        """What the poller changed. Like the SQL stores, a run of the API or a schedule is only updated, never
        brought back once deleted; config and file runs are upserted; an identity is written only under the
        epoch its owner holds."""
        with self._lock:
            for record in changes.runs:
                held = self._runs.get(record.ref.reference)
                if held is not None:
                    self._runs[record.ref.reference] = (record, held[1])
                elif record.ref.source in ("config", "file"):
                    self._runs[record.ref.reference] = (record, 0)
            for reference in changes.retired:
                self._runs.pop(reference, None)
            result, written = self._write_identities(changes)
            for run in (h for h in changes.history if h.key[:2] in written):
                runs = self._history.setdefault(run.key[:2], {})
                runs[run.reference] = run
                if len(runs) > HISTORY_LENGTH:
                    newest = sorted(runs.values(), key=lambda r: r.final_at)[-HISTORY_LENGTH:]
                    self._history[run.key[:2]] = {r.reference: r for r in newest}
            for item in (e for e in changes.expected if e.key[:2] in written):
                times = self._expected.setdefault(item.key[:2], {})
                times[item.expected_at] = item
                for old in sorted(times)[:-HISTORY_LENGTH]:
                    del times[old]
        return result

    def _write_identities(self, changes: Changes) -> tuple[WriteResult, set[IdentityKey]]:
        epochs = dict(changes.epochs)
        written: set[IdentityKey] = set()
        lost: list[tuple[IdentityKey, int]] = []
        refused: list[IdentityKey] = []
        created: list[IdentityKey] = []
        for key, epoch in changes.dropped:
            if self._owners.get(key) == (self.token, epoch or 1):
                del self._owners[key]
                self._identities.pop(key, None)
                self._history.pop(key, None)
                self._expected.pop(key, None)
        for record in changes.identities:
            key, epoch = record.key, epochs.get(record.key, 0)
            held = self._owners.get(key)
            if epoch == 0 and held == (None, 1) and key in self._reserved:
                self._owners[key] = (self.token, 1)  # a reservation, taken by the process that makes it
                created.append(key)
            elif held is None and epoch == 0:
                if changes.max_identities and len(self._identities) >= changes.max_identities:
                    refused.append(key)
                    continue
                self._owners[key] = (self.token, 1)
                created.append(key)
            elif held != (self.token, epoch or 1):
                lost.append((key, epoch))
                continue
            elif epoch == 0:
                created.append(key)
            self._identities[key] = record
            self._reserved.discard(key)
            written.add(key)
        for handoff in changes.handoffs:
            if handoff.identity not in written and handoff.identity not in refused:
                self._outcomes.setdefault(handoff.key, handoff)
        for consumed in changes.consumed:
            if consumed[:2] in written or consumed[:2] in refused:
                self._outcomes.pop(consumed, None)
        return WriteResult(tuple(lost), tuple(refused), tuple(created)), written

    # -- one writer per identity (one process here: it owns whatever it takes) --------------------------
    def renew(self, until: float) -> dict[IdentityKey, int]:
        """The identities this process owns, with their epochs."""
        with self._lock:
            return {k: e for k, (owner, e) in self._owners.items() if owner == self.token}

    def release(self) -> None:
        """Let every identity go."""
        with self._lock:
            self._owners = {k: (None, e) for k, (_, e) in self._owners.items()}

    def free_identities(self, now: float, takeover: bool = False) -> list[IdentityKey]:
        """The identities nobody owns."""
        with self._lock:
            return [k for k, (owner, _) in self._owners.items() if owner is None]

    def acquire(
        self, keys: Sequence[IdentityKey], now: float, takeover: bool = False
    ) -> list[tuple[IdentityRecord, int, tuple[str, ...]]]:
        """Take the free identities of `keys`."""
        taken = []
        with self._lock:
            for key in keys:
                held = self._owners.get(key)
                if held is None or held[0] is not None:
                    continue
                self._owners[key] = (self.token, held[1] + 1)
                self._reserved.discard(key)
                refs = tuple(self._history.get(key, {}))
                taken.append((self._identities[key], held[1] + 1, refs))
        return taken

    def outcomes(self) -> list[Handoff]:
        """Every outcome waiting for its identity's owner."""
        with self._lock:
            return list(self._outcomes.values())

    def active_runs(self) -> tuple[RunRecord, ...]:
        """Every run held that is not final."""
        with self._lock:
            return tuple(r for r, _ in self._runs.values() if not r.outcome)

    def active_count(self, report_group_id: str, report_id: str) -> int:
        """How many runs registered for the identity are not final."""
        with self._lock:
            return sum(
                1
                for r, _ in self._runs.values()
                if not r.outcome and (r.ref.report_group_id, r.ref.report_id) == (report_group_id, report_id)
            )

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
            again = {r.ref.reference: seq for r, seq in self._runs.values()}
            deleted = tuple(ref for ref, seq in self._tombstones if seq > cursor and again.get(ref, 0) < seq)
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
