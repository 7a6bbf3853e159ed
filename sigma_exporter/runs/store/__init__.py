"""The state store: runs, their `since` times and per-identity history, kept so that a restart (or
`kill -9`) loses nothing acknowledged. SQLite is embedded; PostgreSQL is shared by replicas; `memory:` keeps
nothing. `StateWriter` writes what the poller changed off the poll thread."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sigma_exporter.config.model import StateConfig
from sigma_exporter.config.registry import sqlite_path
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.records import (
    Arrivals,
    Changes,
    ExpectedRun,
    History,
    HistoryRun,
    IdentityRecord,
    Loaded,
    RunRecord,
    StoreError,
)


class StateStore(Protocol):
    """Where runs and per-identity history are kept, so that nothing acknowledged is lost.

    Every method is one transaction and may be called from any thread (implementations serialise them);
    each raises StoreError when the store cannot read or write. Who calls what: app.py `start` (migrate)
    and `stop`; the registry `register`, `get`, `delete`, `cursor`, `arrivals`, `prune_tombstones` (API
    threads and its sync thread); the poller `load` (at start); the writer `write` (its own thread); the
    scheduler `firings` and `claim_firing`; the API and the status page `identities` and `history` (server
    threads).
    """

    description: str

    def start(self) -> None:
        """Connect and bring the schema up to date (refusing a newer one)."""

    def stop(self, timeout: float) -> None:
        """Let the connection go."""

    def migrate(self) -> int:
        """Bring the schema up to date; the version in force."""

    def load(self) -> Loaded:
        """Everything held: runs, identities, and the newest sequence number."""

    def register(self, record: RunRecord) -> RunRecord | None:
        """Insert a new run, durable on return (None); or the run already held under its reference."""

    def get(self, reference: str) -> RunRecord | None:
        """The run held under `reference`, if any."""

    def delete(self, reference: str) -> bool:
        """Delete a run, leaving a tombstone for the shard that polls it; False when none was held."""

    def write(self, changes: Changes) -> None:
        """What the poller changed (runs, retirements, identities, history), in one transaction."""

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
    "History",
    "HistoryRun",
    "IdentityRecord",
    "Loaded",
    "RunRecord",
    "StateStore",
    "StoreError",
    "open_store",
    "store_for",
]
