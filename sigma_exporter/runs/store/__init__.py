"""The state store: runs, their `since` times and per-identity history, kept so that a restart (or
`kill -9`) loses nothing acknowledged. SQLite is embedded; PostgreSQL is shared by replicas; `memory:` keeps
nothing. `StateWriter` writes what the poller changed off the poll thread. Each report identity has one
writer, the process that owns it in the store (`sqlidentities.py`); the runs that end elsewhere wait for it
in `outcomes`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sigma_exporter.config.model import StateConfig
from sigma_exporter.config.registry import sqlite_path
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.records import (
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
    StoreError,
    WriteResult,
)


class StateStore(Protocol):
    """Where runs and per-identity history are kept, so that nothing acknowledged is lost.

    Every method is one transaction and may be called from any thread (implementations serialise them);
    each raises StoreError when the store cannot read or write. Who calls what: app.py `start` (migrate)
    and `stop`; the registry `register`, `get`, `delete`, `cursor`, `arrivals`, `prune_tombstones` (API
    threads and its sync thread); the poller `load` (at start); the writer `write` (its own thread); the
    scheduler `firings`, `claim_firing` and `active_count`; the owner's sync (runs/ownership.py) `renew`,
    `release`, `free_identities`, `acquire`, `outcomes` and `active_runs`; the API and the status page
    `identities` and `history` (server threads).

    One writer per report identity: only the process that `acquire`d an identity (its `token` owns it, at an
    epoch) writes its record and history; `write` leaves the others alone and says which it lost.
    """

    description: str
    token: str  # this process, as the owner of identities

    def start(self) -> None:
        """Connect and bring the schema up to date (refusing a newer one)."""

    def stop(self, timeout: float) -> None:
        """Let the connection go."""

    def migrate(self) -> int:
        """Bring the schema up to date; the version in force."""

    def load(self) -> Loaded:
        """Everything held: runs, identities, and the newest sequence number."""

    def register(self, record: RunRecord, max_identities: int = 0) -> RunRecord | None:
        """Insert a new run, durable on return (None), its identity reserved (without an owner, for its shard
        to take); or the run already held under its reference. Raises IdentitiesFull when its identity would
        be new beyond `max_identities`."""

    def get(self, reference: str) -> RunRecord | None:
        """The run held under `reference`, if any."""

    def delete(self, reference: str) -> bool:
        """Delete a run, leaving a tombstone for the shard that polls it; False when none was held."""

    def write(self, changes: Changes) -> WriteResult:
        """What the poller changed (runs, retirements, identities, history, hand-offs), in one transaction;
        the identities this process could not write (lost to another owner, or refused)."""

    def renew(self, until: float) -> dict[IdentityKey, int]:
        """Renew this process's lease to `until` (Unix time); the identities it owns, with their epochs."""

    def release(self) -> None:
        """Let every identity this process owns go."""

    def free_identities(self, now: float, takeover: bool = False) -> list[IdentityKey]:
        """The identities no live process owns (`now`: leases that ran out before it are dead); with
        `takeover` (at start) also those of this process's predecessor: the same shard on the same host."""

    def acquire(
        self, keys: Sequence[IdentityKey], now: float, takeover: bool = False
    ) -> list[tuple[IdentityRecord, int, tuple[str, ...]]]:
        """Take the free identities of `keys`: each record, its new epoch and its history's references."""

    def outcomes(self) -> list[Handoff]:
        """Every outcome waiting for its identity's owner."""

    def active_runs(self) -> tuple[RunRecord, ...]:
        """Every run held, by any shard, that is not final."""

    def active_count(self, report_group_id: str, report_id: str) -> int:
        """How many runs registered for the identity, by any shard, are not final."""

    def identities(self) -> tuple[IdentityRecord, ...]:
        """Every identity held, by any shard, sorted."""

    def history(self, report_group_id: str, report_id: str) -> History | None:
        """An identity's newest runs and judged expected times, newest first; None when it is not held."""

    def cursor(self) -> int:
        """The newest sequence number: `arrivals(cursor())` later gives what came after now."""

    def arrivals(self, cursor: int) -> Arrivals:
        """Runs registered and deleted after `cursor`, through any shard."""

    def prune_tombstones(self, below: int) -> None:
        """Forget tombstones at or below `below`."""

    def firings(self) -> dict[str, float]:
        """Per schedule, the latest firing claimed."""

    def claim_firing(self, name: str, firing: float) -> bool:
        """Claim a schedule's firing before starting its run; False when it (or a later one) was claimed."""

    def close(self) -> None:
        """Let the connection go (as `stop`)."""


def store_for(config: StateConfig, storage_path: str | None = None) -> StateStore:
    """The store `state.url` names (`--storage.path DIR` moves the default SQLite file into DIR), not yet
    started."""
    store: StateStore
    if config.url == "memory:":
        store = MemoryStore()
    elif config.url.startswith("sqlite:"):
        from sigma_exporter.runs.store.sqlite import SQLiteStore

        path = sqlite_path(config.url)
        if storage_path and not config.explicit:
            path = Path(storage_path) / path.name
        store = SQLiteStore(path)
    else:
        from sigma_exporter.runs.store.postgres import PostgresStore

        store = PostgresStore(config.url, config.password)
    return store


def open_store(config: StateConfig, storage_path: str | None = None) -> StateStore:
    """`store_for`, started (schema migrated). Raises StoreError."""
    store = store_for(config, storage_path)
    store.start()
    return store


__all__ = [
    "Arrivals",
    "Changes",
    "ExpectedRun",
    "Handoff",
    "History",
    "HistoryRun",
    "IdentitiesFull",
    "IdentityKey",
    "IdentityRecord",
    "Loaded",
    "RunRecord",
    "StateStore",
    "StoreError",
    "WriteResult",
    "open_store",
    "store_for",
]
