"""The embedded state store: one SQLite file in WAL mode, synced on every commit (`synchronous=FULL`),
so that an acknowledged registration survives `kill -9` and a power cut alike."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sigma_exporter.runs.store.records import StoreError
from sigma_exporter.runs.store.sql import SQLStore

BUSY_TIMEOUT_MS = 5000


class SQLiteStore(SQLStore):
    """The state store in one SQLite file (its directory made on first use)."""

    def __init__(self, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms

    def _connect(self) -> Any:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"state store {self.description}: cannot create {self.path.parent}: {exc.strerror}"
            ) from None
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level="DEFERRED"
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        self._enter_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL upgrades a shared lock to an exclusive one, and SQLite answers
        # SQLITE_BUSY at once, without the busy handler, when another process does the same (it would
        # deadlock otherwise). So processes starting together on one new file retry, up to the timeout.
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    conn.close()
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def _lock_for_migration(self, cursor: Any) -> None:
        # Take the write lock before reading the version, so that processes starting together on one
        # file migrate one after the other (sqlite3 would otherwise run the DDL outside a transaction).
        cursor.execute("BEGIN IMMEDIATE")
