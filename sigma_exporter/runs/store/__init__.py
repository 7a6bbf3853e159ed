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
    IdentityRecord,
    Loaded,
    RunRecord,
    StoreError,
)


class StateStore(Protocol):
    description: str

    def migrate(self) -> int: ...
    def load(self) -> Loaded: ...
    def register(self, record: RunRecord) -> RunRecord | None: ...
    def get(self, reference: str) -> RunRecord | None: ...
    def delete(self, reference: str) -> bool: ...
    def write(self, changes: Changes) -> None: ...
    def arrivals(self, cursor: int) -> Arrivals: ...
    def prune_tombstones(self, below: int) -> None: ...
    def firings(self) -> dict[str, float]: ...
    def claim_firing(self, name: str, firing: float) -> bool: ...
    def close(self) -> None: ...


def open_store(config: StateConfig, storage_path: str | None = None) -> StateStore:
    """The store `state.url` names (`--storage.path DIR` moves the default SQLite file into DIR), with its
    schema migrated. Raises StoreError."""
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
    store.migrate()
    return store


__all__ = [
    "Arrivals",
    "Changes",
    "IdentityRecord",
    "Loaded",
    "RunRecord",
    "StateStore",
    "StoreError",
    "open_store",
]
