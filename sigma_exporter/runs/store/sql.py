"""The state store over SQL, shared by SQLite and PostgreSQL: the dialects differ only in how they
connect, their placeholders and how they lock a migration. Every method is one transaction."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sigma_exporter.runs.store.group import GroupCommit
from sigma_exporter.runs.store.records import (
    Arrivals,
    Changes,
    Handoff,
    History,
    IdentitiesFull,
    IdentityKey,
    IdentityRecord,
    Loaded,
    RunRecord,
    StoreError,
    WriteResult,
    owner_token,
    registered_identity,
)
from sigma_exporter.runs.store.schema import LATEST, MIGRATIONS
from sigma_exporter.runs.store.sqlhistory import HistoryTables
from sigma_exporter.runs.store.sqlidentities import IdentityTables
from sigma_exporter.runs.store.sqlruns import (
    INSERT_RUN,
    SELECT_ACTIVE,
    SELECT_ARRIVALS,
    SELECT_RUN,
    SELECT_RUNS,
    UPDATE_RUN,
    UPSERT_RUN,
    record_of,
    run_row,
)

Registered = RunRecord | IdentitiesFull | None


class SQLStore(ABC):
    """A state store on one DB-API connection, used by one thread at a time (behind a lock). See
    `StateStore` for what each method promises and who calls it."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.token = owner_token()
        self._lock = threading.Lock()
        self._conn: Any = None
        self._registrations: GroupCommit[tuple[RunRecord, int], Registered] = GroupCommit(
            self._register_batch
        )
        self._history = HistoryTables()
        self._identities = IdentityTables()

    # -- dialect ---------------------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any: ...

    @abstractmethod
    def _errors(self) -> tuple[type[BaseException], ...]: ...

    def _sql(self, statement: str) -> str:
        return statement

    def _lock_for_migration(self, cursor: Any) -> None:  # noqa: B027 - optional for a dialect
        """Serialise migrations of replicas that start together (PostgreSQL); SQLite's write lock does."""

    # -- plumbing --------------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                cursor = self._conn.cursor()
                try:
                    yield cursor
                    self._conn.commit()
                except BaseException:
                    self._rollback()
                    raise
                finally:
                    cursor.close()
            except self._errors() as exc:
                self._drop()
                raise StoreError(f"state store {self.description}: {_first_line(exc)}") from None

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except Exception:  # the connection is already broken; _drop follows
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                conn.close()

    def _run(self, cursor: Any, statement: str, params: Sequence[object] = ()) -> None:
        cursor.execute(self._sql(statement), tuple(params))

    def _next_seq(self, cursor: Any, count: int = 1) -> int:
        """Take `count` sequence numbers; returns the last of them."""
        self._run(cursor, "UPDATE meta SET value = value + ? WHERE name = 'seq'", (count,))
        self._run(cursor, "SELECT value FROM meta WHERE name = 'seq'")
        return int(cursor.fetchone()[0])

    # -- the interface ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and migrate. Raises StoreError."""
        self.migrate()

    def stop(self, timeout: float) -> None:
        """Close the connection."""
        self.close()

    def migrate(self) -> int:
        """Bring the schema up to date; returns the version in force."""
        with self._transaction() as cur:
            self._lock_for_migration(cur)
            self._run(cur, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            self._run(cur, "SELECT version FROM schema_version")
            row = cur.fetchone()
            version = int(row[0]) if row else 0
            if version > LATEST:
                raise StoreError(
                    f"state store {self.description}: its schema version {version} is newer than this "
                    f"exporter's ({LATEST}); run a newer sigma-exporter or point state.url elsewhere"
                )
            for number, statements in MIGRATIONS:
                if number > version:
                    for statement in statements:
                        self._run(cur, statement)
            if row is None:
                self._run(cur, "INSERT INTO schema_version (version) VALUES (?)", (LATEST,))
            elif version < LATEST:
                self._run(cur, "UPDATE schema_version SET version = ?", (LATEST,))
        return LATEST

    def load(self) -> Loaded:
        """Every run held, and the newest sequence number (identities are taken with `acquire`)."""
        with self._transaction() as cur:
            self._run(cur, SELECT_RUNS)
            runs = tuple(record_of(row) for row in cur.fetchall())
            self._run(cur, "SELECT value FROM meta WHERE name = 'seq'")
            cursor = int(cur.fetchone()[0])
        return Loaded(runs, (), cursor)

    def register(self, record: RunRecord, max_identities: int = 0) -> RunRecord | None:
        """Insert a run unless one with its reference is held; returns that one, or None once the new run
        is committed (durable), its identity reserved (without an owner: its shard takes it). Atomic: of
        concurrent registrations of one reference, one creates it. Concurrent callers are committed together
        (group commit), each still only once durable. Raises IdentitiesFull when the run's identity would be
        new beyond `max_identities`."""
        result = self._registrations.submit((record, max_identities))
        if isinstance(result, IdentitiesFull):
            raise result
        return result

    def _register_batch(self, items: Sequence[tuple[RunRecord, int]]) -> list[Registered]:
        held: list[Registered] = []
        with self._transaction() as cur:
            last = self._next_seq(cur, len(items))  # takes the write lock (SQLite) or row lock (PostgreSQL)
            for seq, (record, limit) in enumerate(items, start=last - len(items) + 1):
                self._run(cur, INSERT_RUN, (*run_row(record), seq))
                if cur.rowcount == 1:
                    key = registered_identity(record)
                    if key is not None and not self._identities.reserve(cur, self._sql, key, limit):
                        self._run(cur, "DELETE FROM runs WHERE reference = ?", (record.ref.reference,))
                        held.append(IdentitiesFull(f"{limit} report identities are held"))
                        continue
                    held.append(None)
                    continue
                self._run(cur, SELECT_RUN, (record.ref.reference,))
                row = cur.fetchone()
                held.append(None if row is None else record_of(row))
        return held

    def get(self, reference: str) -> RunRecord | None:
        """The run held under `reference`, if any."""
        with self._transaction() as cur:
            self._run(cur, SELECT_RUN, (reference,))
            row = cur.fetchone()
        return None if row is None else record_of(row)

    def delete(self, reference: str) -> bool:
        """Delete a run, leaving a tombstone for the replica that polls it. False when it was not held."""
        with self._transaction() as cur:
            self._run(cur, "DELETE FROM runs WHERE reference = ?", (reference,))
            deleted = bool(cur.rowcount > 0)
            if deleted:
                self._run(
                    cur,
                    "INSERT INTO tombstones (reference, seq) VALUES (?, ?)",
                    (reference, self._next_seq(cur)),
                )
        return deleted

    def write(self, changes: Changes) -> WriteResult:
        """What the poller changed, in one transaction; the identities it could not write."""
        with self._transaction() as cur:
            for record in changes.runs:
                if record.ref.source in ("config", "file"):
                    self._run(cur, UPSERT_RUN, (*run_row(record), 0))
                else:
                    row = run_row(record)
                    self._run(cur, UPDATE_RUN, (*row[3:6], *row[8:], record.ref.reference))
            for reference in changes.retired:
                self._run(cur, "DELETE FROM runs WHERE reference = ?", (reference,))
            result, written = self._identities.write(cur, self._sql, changes, self.token)
            self._history.write(
                cur,
                self._sql,
                [h for h in changes.history if h.key[:2] in written],
                [e for e in changes.expected if e.key[:2] in written],
            )
        return result

    def identities(self) -> tuple[IdentityRecord, ...]:
        """Every identity held (by any shard), sorted by identity."""
        with self._transaction() as cur:
            return self._identities.read_all(cur, self._sql)

    def history(self, report_group_id: str, report_id: str) -> History | None:
        """An identity's history, newest first; None when the identity is not held."""
        key = (report_group_id, report_id)
        with self._transaction() as cur:
            record = self._identities.read_one(cur, self._sql, key)
            if record is None:
                return None
            runs, expected = self._history.read(cur, self._sql, key)
        return History(record, runs, expected)

    # -- one writer per identity -----------------------------------------------------------------------
    def renew(self, until: float) -> dict[IdentityKey, int]:
        """Renew this process's lease to `until`; the identities it owns, with their epochs."""
        with self._transaction() as cur:
            self._identities.renew(cur, self._sql, self.token, until)
            return self._identities.mine(cur, self._sql, self.token)

    def release(self) -> None:
        """Let every identity this process owns go, for their shards to take at once."""
        with self._transaction() as cur:
            self._identities.release(cur, self._sql, self.token)

    def free_identities(self, now: float, takeover: bool = False) -> list[IdentityKey]:
        """The identities no live process owns (with `takeover`, also this process's predecessor's)."""
        with self._transaction() as cur:
            return self._identities.free(cur, self._sql, self.token, now, takeover)

    def acquire(
        self, keys: Sequence[IdentityKey], now: float, takeover: bool = False
    ) -> list[tuple[IdentityRecord, int, tuple[str, ...]]]:
        """Take the free identities of `keys`: each record, its epoch and its history's references."""
        with self._transaction() as cur:
            return self._identities.acquire(cur, self._sql, self.token, keys, now, takeover)

    def outcomes(self) -> list[Handoff]:
        """Every outcome waiting for its identity's owner."""
        with self._transaction() as cur:
            return self._identities.outcomes(cur, self._sql)

    def active_runs(self) -> tuple[RunRecord, ...]:
        """Every run held, by any shard, that is not final."""
        with self._transaction() as cur:
            self._run(cur, SELECT_ACTIVE)
            return tuple(record_of(row) for row in cur.fetchall())

    def active_count(self, report_group_id: str, report_id: str) -> int:
        """How many runs registered for the identity, by any shard, are not final."""
        with self._transaction() as cur:
            self._run(
                cur,
                "SELECT count(*) FROM runs WHERE outcome = '' AND report_group_id = ? AND report_id = ?",
                (report_group_id, report_id),
            )
            return int(cur.fetchone()[0])

    def cursor(self) -> int:
        """The newest sequence number."""
        with self._transaction() as cur:
            self._run(cur, "SELECT value FROM meta WHERE name = 'seq'")
            return int(cur.fetchone()[0])

    def arrivals(self, cursor: int) -> Arrivals:
        """Runs registered and deleted after `cursor` (by this replica or another); a deletion of a reference
        registered again since is not one any more."""
        with self._transaction() as cur:
            self._run(cur, SELECT_ARRIVALS, (cursor,))
            rows = cur.fetchall()
            self._run(
                cur,
                "SELECT t.reference, t.seq FROM tombstones t WHERE t.seq > ? AND NOT EXISTS "
                "(SELECT 1 FROM runs r WHERE r.reference = t.reference AND r.seq > t.seq) ORDER BY t.seq",
                (cursor,),
            )
            tombs = cur.fetchall()
        newest = max([cursor, *(int(r[-1]) for r in rows), *(int(t[1]) for t in tombs)])
        return Arrivals(tuple(record_of(r) for r in rows), tuple(t[0] for t in tombs), newest)

    def prune_tombstones(self, below: int) -> None:
        """Forget tombstones at or below `below`."""
        with self._transaction() as cur:
            self._run(cur, "DELETE FROM tombstones WHERE seq <= ?", (below,))

    def firings(self) -> dict[str, float]:
        """Per schedule, the latest firing claimed."""
        with self._transaction() as cur:
            self._run(cur, "SELECT name, fired_through FROM schedules")
            return {str(name): float(through) for name, through in cur.fetchall()}

    def claim_firing(self, name: str, firing: float) -> bool:
        """Claim a schedule's firing before starting its run; False when it (or a later one) was claimed
        already, by this process before a restart or by another replica."""
        with self._transaction() as cur:
            self._run(
                cur,
                "INSERT INTO schedules (name, fired_through) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                "SET fired_through = excluded.fired_through WHERE schedules.fired_through < excluded.fired_through",
                (name, firing),
            )
            return bool(cur.rowcount == 1)

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
