"""The embedded state store: one SQLite file in WAL mode, synced on every commit (`synchronous=FULL`),
so that an acknowledged registration survives `kill -9` and a power cut alike. A file that is not SQLite,
cut short, damaged, of a newer schema or not writable is refused at start, before anything writes to it."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sigma_exporter.runs.store.records import StoreError
from sigma_exporter.runs.store.schema import LATEST
from sigma_exporter.runs.store.sql import SQLStore

BUSY_TIMEOUT_MS = 5000
HEADER = b"SQLite format 3\x00"
# What to do about a state file refused at start, said after its problem.
DAMAGED = "restore it from a backup, or move it aside to start with an empty state store"
READ_ONLY = "the exporter must write its state: make it writable, or point state.url elsewhere"
NEWER = "it was written by a newer sigma-exporter: run that one (downgrades are not guessed at)"
OTHER = "point state.url (or --storage.path) at a file of its own"


class StateFileError(StoreError):
    """The SQLite state file cannot be used at all (found at start): `PATH: problem`."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class SQLiteStore(SQLStore):
    """The state store in one SQLite file (its directory made on first use)."""

    def __init__(self, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms

    def start(self) -> None:
        """Examine the file (reading only), then connect and migrate. Raises StateFileError."""
        path = self.path.absolute()
        problem = examine(path)
        if problem is not None:
            raise StateFileError(path, problem)
        try:
            super().start()
        except StoreError as exc:
            self.close()
            raise StateFileError(path, str(exc).removeprefix(f"state store {self.description}: ")) from None

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


def examine(path: Path) -> str | None:
    """What makes `path` unusable as the state file, or None (also when it does not exist yet). Reads only:
    the file, its write-ahead log and its directory are left as they were."""
    directory = path.parent
    if not path.exists():
        if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
            return f"cannot be created: its directory {directory} is read-only or not ours"
        return None
    if not path.is_file():
        return "not a regular file"
    size = path.stat().st_size
    if size == 0:
        return None  # SQLite's own empty database: the schema is created in it
    with path.open("rb") as handle:
        head = handle.read(100)
    if len(head) < 100 or not head.startswith(HEADER):
        return f"not a SQLite database (it does not begin with SQLite's header); {DAMAGED}"
    return _cut_short(path, head, size) or _not_writable(path) or _contents(path, head)


def _cut_short(path: Path, head: bytes, size: int) -> str | None:
    # The header's page count is valid when its "version-valid-for" matches the change counter. With a
    # write-ahead log beside it, the file may lag its header (a checkpoint cut off by a crash is redone).
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    wal = path.with_name(path.name + "-wal")
    if head[92:96] != head[24:28] or pages == 0 or (wal.exists() and wal.stat().st_size > 0):
        return None
    if size >= pages * page_size:
        return None
    return f"truncated: {size} bytes of the {pages} pages of {page_size} bytes its header counts; {DAMAGED}"


def _not_writable(path: Path) -> str | None:
    # Opening for writing writes nothing. Root passes mode bits, so ask the kernel itself (a read-only
    # mount, an immutable file). SQLite also writes its log and shared memory beside the file.
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as exc:
        why = "a read-only file system" if exc.errno == errno.EROFS else exc.strerror
        return f"read-only ({why}); {READ_ONLY}"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return (
            f"read-only: its directory {path.parent} is (SQLite writes its log beside the file); {READ_ONLY}"
        )
    return None


def _contents(path: Path, head: bytes) -> str | None:
    # A read-only connection never checkpoints, so it changes nothing, a log left by kill -9 included. A
    # file in WAL mode without its log is open nowhere: read it as immutable, creating no log beside it.
    # quick_check reads every page: 70 ms for 100,000 runs, where loading them takes 2 s.
    closed = head[18:20] == b"\x02\x02" and not path.with_name(path.name + "-wal").exists()
    try:
        query = "mode=ro&immutable=1" if closed else "mode=ro"
        conn = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        return f"cannot be opened (SQLite: {exc})"
    try:
        with contextlib.closing(conn):
            damage = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
            if damage != ["ok"]:
                found = " ".join("; ".join(damage).split())  # one line: it reports a page per line
                return f"damaged (SQLite: {found}); {DAMAGED}"
            tables = {
                str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if tables and "schema_version" not in tables:
                return f"not a sigma-exporter state store (its tables: {', '.join(sorted(tables))}); {OTHER}"
            if "schema_version" in tables:
                version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
                if version is not None and int(version) > LATEST:
                    return f"its schema version {version} is newer than this exporter's ({LATEST}); {NEWER}"
    except sqlite3.Error as exc:
        if "not a database" in str(exc):
            return f"not a SQLite database (SQLite: {exc}); {DAMAGED}"
        if "malformed" in str(exc):
            return f"damaged (SQLite: {exc}); {DAMAGED}"
        return f"cannot be read (SQLite: {exc})"
    return None
