"""Schema 3 to 4 (a report's history): a SQLite file and a PostgreSQL dump written by the exporter at commit
b4a5a73 (schema 3; made by tests/fixtures/upgrade/make_fixture.py) open with the current code, migrate, and
lose nothing: the same runs with their last checks, re-checks and reports as last seen, identities and
schedules' claims; the history starts empty and is written and read at once. The migration is additive: a
shard of schema 3 keeps writing to a migrated shared database until it is restarted."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store import StateStore
from sigma_exporter.runs.store.postgres import PostgresStore
from sigma_exporter.runs.store.records import Changes, HistoryRun
from sigma_exporter.runs.store.schema import LATEST
from sigma_exporter.runs.store.sqlite import SQLiteStore
from tests.integration.state import test_upgrade as upgrade
from tests.integration.state.test_upgrade import load_dump
from tests.support.paths import TESTS

FIXTURE = TESTS / "fixtures" / "upgrade" / "b4a5a73"
#: What a shard of schema 3 (commit b4a5a73) sends after a check, and for an identity.
OLD_UPDATE = (
    "UPDATE runs SET labels = %s, report_id = %s, report_group_id = %s, first_seen_at = %s, since = %s, "
    "final_at = %s, outcome = %s, report_name = %s, last_check_at = %s, rechecks = %s, seen = %s "
    "WHERE reference = %s"
)
OLD_IDENTITY = (
    "INSERT INTO identities (report_group_id, report_id, record) VALUES (%s, %s, %s) "
    "ON CONFLICT (report_group_id, report_id) DO UPDATE SET record = excluded.record"
)


def expected(name: str = "expected.json") -> dict[str, Any]:
    return upgrade.expected(name, FIXTURE)


def check_nothing_lost(store: StateStore, want: dict[str, Any]) -> None:
    loaded = upgrade.check_nothing_lost(store, want, schema=3)
    assert any(r.rows for r in loaded.runs) and any(r.last_check_at for r in loaded.runs)
    assert any(r.rechecks for r in loaded.runs)  # schema 3's own columns came along
    # The history starts empty for every identity, and takes runs at once.
    some = store.identities()[0]
    history = store.history(*some.key)
    assert history is not None and history.identity == some and history.runs == () and history.expected == ()
    run = HistoryRun(*some.key, "after-upgrade", "report", "api", 1.0, 2.0, 1.0, "failure", "E1", "boom")
    [(taken, epoch, _)] = store.acquire([some.key], time.time())  # upgraded rows have no owner yet
    assert taken == some
    store.write(Changes(identities=(some,), epochs=((some.key, epoch),), history=(run,)))
    after = store.history(*some.key)
    assert after is not None and after.runs == (run,)


def test_a_sqlite_file_of_schema_3_migrates_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    shutil.copy(FIXTURE / "state.db", path)
    store = SQLiteStore(path)
    store.start()
    try:
        check_nothing_lost(store, expected())
    finally:
        store.stop(1.0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]


def test_a_postgresql_dump_of_schema_3_migrates_and_keeps_everything(postgres_cluster: Any) -> None:
    from tests.support.postgres import PASSWORD

    url = load_dump(postgres_cluster, FIXTURE)
    store = PostgresStore(url, Secret(PASSWORD))
    store.start()
    try:
        check_nothing_lost(store, expected("expected-postgresql.json"))
    finally:
        store.stop(1.0)


def test_a_shard_of_schema_3_writing_identities_to_the_migrated_database_fails_and_changes_nothing(
    postgres_cluster: Any,
) -> None:
    """One writer per identity (schema 5): an old shard's write of a whole identity record would undo the
    owner's counts, so the table it names is gone. Its writer's transaction (the run it saw end and the
    identity it counted, together) fails loudly, and the run stays uncounted for the owner to count."""
    import psycopg

    from tests.support.postgres import PASSWORD

    url = load_dump(postgres_cluster, FIXTURE)
    old = psycopg.connect(url, password=PASSWORD)  # a previous version's shard, running all along
    new = PostgresStore(url, Secret(PASSWORD))
    new.start()  # a shard of this version migrates the shared database
    reference = next(
        r for r, run in expected("expected-postgresql.json")["runs"].items() if run["source"] == "api"
    )
    before = new.get(reference)
    seen = '{"rows":[["","rpt-x","X","FAILED",2.0,"E1","boom"]],"group":null}'
    with pytest.raises(psycopg.errors.UndefinedTable, match="identities"), old.cursor() as cur:
        values = ("{}", "rpt-x", "", 1.0, '[["rpt-x","FAILED",2.0]]', 2.0, "failure", "X", 3.0, 1, seen)
        cur.execute(OLD_UPDATE, (*values, reference))
        cur.execute(OLD_IDENTITY, ("", "rpt-x", '{"report_name":"X","outcomes":{"failure":1}}'))
    old.rollback()
    old.close()
    assert new.get(reference) == before  # the old shard's run update went with its failed transaction
    assert new.history("", "rpt-x") is None
    new.stop(1.0)
