"""The state store on a real SQLite file and a real PostgreSQL database (a throwaway cluster): schema and
migrations, durable registration, one-transaction writes, arrivals between replicas, tombstones, the writer
riding out a store that cannot write, no password in any message, and concurrent registrations each durable
once through the group commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.config.model import Reference, StateConfig
from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store import StateStore, StoreError, open_store
from sigma_exporter.runs.store.records import Changes, IdentityRecord, RunRecord
from sigma_exporter.runs.store.schema import LATEST
from sigma_exporter.runs.store.sqlite import SQLiteStore
from sigma_exporter.runs.store.writer import StateWriter

NOW = 1_780_000_000.0


def api_run(reference: str, kind: str = "report", **extra: Any) -> RunRecord:
    ref = Reference(reference, kind, (("team", "sre"),), source="api", registered_at=NOW, **extra)
    return RunRecord(ref, first_seen_at=NOW)


def test_schema_is_created_once_and_reopened(make_store: Callable[[], StateStore]) -> None:
    first = make_store()
    assert first.migrate() == LATEST
    second = make_store()  # migrating again is a no-op
    assert second.migrate() == LATEST
    assert second.load().runs == ()


def test_registration_is_durable_and_idempotent(make_store: Callable[[], StateStore]) -> None:
    store = make_store()
    record = api_run("ref-1", report_id="rpt-1", submitted_at=NOW - 5)
    assert store.register(record) is None
    other = make_store()  # another connection sees it at once: it was committed before register returned
    held = other.get("ref-1")
    assert held == record
    again = other.register(api_run("ref-1", kind="group"))
    assert again is not None and again.ref.kind == "report"


def test_write_is_one_transaction_of_runs_retirements_and_identities(
    make_store: Callable[[], StateStore],
) -> None:
    store = make_store()
    store.register(api_run("api-1"))
    store.register(api_run("api-2"))
    config_run = RunRecord(Reference("cfg-1", "group", source="config"), first_seen_at=NOW)
    identity = IdentityRecord(
        "", "rpt-1", "Balances", (("team", "sre"),), last_success=NOW, outcomes=(("success", 1),)
    )
    updated = RunRecord(
        api_run("api-1").ref,
        first_seen_at=NOW,
        since=(("rpt-1", "PUBLISHED", NOW + 3),),
        final_at=NOW + 3,
        outcome="success",
        report_name="Balances",
    )
    store.write(Changes(runs=(updated, config_run), retired=("api-2",), identities=(identity,)))
    loaded = make_store().load()
    runs = {r.ref.reference: r for r in loaded.runs}
    assert set(runs) == {"api-1", "cfg-1"}
    assert runs["api-1"] == updated
    assert runs["cfg-1"] == config_run
    assert make_store().identities() == (identity,)


def test_a_deleted_api_run_is_not_brought_back_by_a_late_write(make_store: Callable[[], StateStore]) -> None:
    owner, other = make_store(), make_store()
    owner.register(api_run("api-1"))
    assert other.delete("api-1") is True
    assert other.delete("api-1") is False
    owner.write(Changes(runs=(RunRecord(api_run("api-1").ref, final_at=NOW, outcome="success"),)))
    assert owner.get("api-1") is None


def test_arrivals_bring_registrations_and_deletions_of_other_replicas(
    make_store: Callable[[], StateStore],
) -> None:
    shard_a, shard_b = make_store(), make_store()
    cursor = shard_b.load().cursor
    shard_a.register(api_run("via-a-1"))
    shard_a.register(api_run("via-a-2"))
    arrivals = shard_b.arrivals(cursor)
    assert [r.ref.reference for r in arrivals.runs] == ["via-a-1", "via-a-2"]
    assert arrivals.deleted == ()
    shard_a.delete("via-a-1")
    later = shard_b.arrivals(arrivals.cursor)
    assert later.runs == () and later.deleted == ("via-a-1",)
    shard_b.prune_tombstones(later.cursor)
    assert shard_b.arrivals(arrivals.cursor).deleted == ()


def test_a_run_deleted_and_registered_again_arrives_as_held_not_as_deleted(
    make_store: Callable[[], StateStore],
) -> None:
    # Another replica (or this one's sync, reading a moment late) must not take the old deletion for the new
    # run's: it would retire a run just acknowledged with 201.
    shard_a, shard_b = make_store(), make_store()
    cursor = shard_b.load().cursor
    shard_a.register(api_run("again-1"))
    shard_a.delete("again-1")
    shard_a.register(api_run("again-1"))
    arrivals = shard_b.arrivals(cursor)
    assert [r.ref.reference for r in arrivals.runs] == ["again-1"] and arrivals.deleted == ()
    shard_a.delete("again-1")  # deleted for good this time
    assert shard_b.arrivals(arrivals.cursor).deleted == ("again-1",)


def test_concurrent_registrations_of_one_reference_create_it_once(
    make_store: Callable[[], StateStore],
) -> None:
    stores = [make_store() for _ in range(4)]
    results: list[RunRecord | None] = []
    barrier = threading.Barrier(len(stores))

    def register(store: StateStore) -> None:
        barrier.wait()
        try:
            results.append(store.register(api_run("contended")))
        except StoreError:
            results.append(store.get("contended"))  # a serialisation failure: the other one won

    threads = [threading.Thread(target=register, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results.count(None) == 1, results
    assert len(make_store().load().runs) == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).migrate()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (LATEST + 1,))
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1} is newer than this exporter"):
        SQLiteStore(path).migrate()


def test_sqlite_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.migrate()
    store.register(api_run("r"))
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "state.db-wal").exists()


def test_storage_path_moves_only_the_default_file(tmp_path: Path) -> None:
    store = open_store(StateConfig(), str(tmp_path / "dir"))
    assert store.description == f"sqlite:///{tmp_path}/dir/sigma-exporter.db"
    store.close()
    explicit = open_store(
        StateConfig(url=f"sqlite:///{tmp_path}/mine.db", explicit=True), str(tmp_path / "dir")
    )
    assert explicit.description == f"sqlite:///{tmp_path}/mine.db"
    explicit.close()


def test_writer_keeps_changes_while_sqlite_is_locked_and_writes_them_after(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path, busy_timeout_ms=100)
    store.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    writer = StateWriter(store)
    writer.start()
    config_run = RunRecord(Reference("cfg-1", "report", source="config"), first_seen_at=NOW)
    writer.submit(Changes(runs=(config_run,)))
    deadline = time.monotonic() + 10
    while writer.failures_total == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.failures_total >= 1
    assert not writer.up
    identity = IdentityRecord("", "rpt-1", last_success=NOW)
    writer.submit(Changes(identities=(identity,)))  # queued behind the failed batch, merged with it
    blocker.execute("ROLLBACK")
    blocker.close()
    assert writer.flush(timeout=40)
    assert writer.writes_total == 1
    loaded = SQLiteStore(path).load()
    assert [r.ref.reference for r in loaded.runs] == ["cfg-1"]
    assert SQLiteStore(path).identities() == (identity,)
    writer.stop(2.0)


def test_postgresql_read_only_database_makes_writes_fail_then_recover(postgres_cluster: Any) -> None:
    from tests.support.postgres import PASSWORD

    url = postgres_cluster.create_database()
    store = open_store(StateConfig(url=url, password=Secret(PASSWORD), explicit=True))
    name = url.rsplit("/", 1)[1]
    import psycopg

    with psycopg.connect(
        f"{postgres_cluster.host_url}/postgres", password=PASSWORD, autocommit=True
    ) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        with pytest.raises(StoreError) as failed:
            for _ in range(2):  # the first try may meet the terminated connection
                try:
                    store.register(api_run("while-read-only"))
                except StoreError as exc:
                    last = exc
                    continue
            raise last
        assert PASSWORD not in str(failed.value)
        assert "sigma@" not in str(failed.value)  # no user either
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    for _ in range(2):
        try:
            assert store.register(api_run("after")) is None
            break
        except StoreError:
            continue
    assert store.get("after") is not None
    store.close()


def test_postgresql_wrong_password_is_a_clear_error_without_the_password(postgres_cluster: Any) -> None:
    url = postgres_cluster.create_database()
    wrong = "wrong-" + "x" * 20
    with pytest.raises(StoreError) as failed:
        open_store(StateConfig(url=url, password=Secret(wrong), explicit=True))
    message = str(failed.value)
    assert wrong not in message
    assert "password authentication failed" in message
    assert message.startswith(f"state store postgresql://127.0.0.1:{postgres_cluster.port}/")


def test_processes_opening_one_new_sqlite_file_together_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            SQLiteStore(path).migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]


def test_concurrent_registrations_on_a_real_store_are_each_durable_once(
    make_store: Callable[[], StateStore],
) -> None:
    store = make_store()
    references = [f"grp-{n % 40}" for n in range(200)]  # each reference registered five times at once
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: store.register(api_run(r)), references))
    created = [r for r, held in zip(references, results, strict=True) if held is None]
    assert sorted(created) == sorted(set(references))  # one creation per reference, no matter the batch
    existing = [(r, held) for r, held in zip(references, results, strict=True) if held is not None]
    assert len(existing) == 160 and all(held.ref.reference == r for r, held in existing)
    other = make_store()
    loaded = other.load()
    assert sorted(run.ref.reference for run in loaded.runs) == sorted(set(references))
