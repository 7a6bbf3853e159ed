"""Upgrades keep the state: a SQLite file and a PostgreSQL dump written by the exporter at commit 7ce6437
(schema 2; made by tests/fixtures/upgrade/make_fixture.py, with runs of every source, identities, schedules'
claims and an expectation's missed runs) open with the current code, migrate, and lose nothing: the same runs,
counters, last-success times and claims. Migrations are additive, so a shard still running the previous
version keeps working on a migrated shared database until it is restarted (its statements are below, as that
version wrote them); a restarted one refuses the newer schema and changes nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store import StateStore, StoreError
from sigma_exporter.runs.store.jsonforms import identity_of, seen_of
from sigma_exporter.runs.store.postgres import PostgresStore
from sigma_exporter.runs.store.records import Loaded
from sigma_exporter.runs.store.schema import LATEST
from sigma_exporter.runs.store.sqlite import SQLiteStore
from tests.support.paths import TESTS

FIXTURE = TESTS / "fixtures" / "upgrade" / "7ce6437"
#: What a shard of schema 2 (commit 7ce6437) sends: its insert of a registration and its update after a check.
OLD_INSERT = (
    "INSERT INTO runs (reference, kind, source, labels, report_id, report_group_id, submitted_at, "
    "registered_at, first_seen_at, since, final_at, outcome, report_name, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reference) DO NOTHING"
)
OLD_UPDATE = (
    "UPDATE runs SET labels = ?, report_id = ?, report_group_id = ?, first_seen_at = ?, since = ?, "
    "final_at = ?, outcome = ?, report_name = ? WHERE reference = ?"
)


def expected(name: str = "expected.json", fixture: Path = FIXTURE) -> dict[str, Any]:
    """What the fixture's store held, read from its tables by make_fixture.py."""
    document: dict[str, Any] = json.loads((fixture / name).read_text())
    return document


def check_nothing_lost(store: StateStore, want: dict[str, Any], schema: int = 2) -> Loaded:
    """The migrated store holds what the fixture's version wrote (of schema `schema`); what it loaded."""
    assert want["schema_version"] == schema
    loaded = store.load()
    runs = {record.ref.reference: record for record in loaded.runs}
    assert set(runs) == set(want["runs"])
    assert {r["source"] for r in want["runs"].values()} >= {"config", "api", "schedule"}
    for reference, old in want["runs"].items():
        record = runs[reference]
        ref = record.ref
        assert (ref.kind, ref.source, ref.report_id, ref.report_group_id) == (
            old["kind"],
            old["source"],
            old["report_id"],
            old["report_group_id"],
        )
        assert dict(ref.labels) == json.loads(old["labels"])
        assert (ref.submitted_at, ref.registered_at, record.first_seen_at) == (
            old["submitted_at"],
            old["registered_at"],
            old["first_seen_at"],
        )
        assert [list(item) for item in record.since] == json.loads(old["since"])
        assert (record.final_at, record.outcome, record.report_name) == (
            old["final_at"],
            old["outcome"],
            old["report_name"],
        )
        if schema == 2:
            assert (record.last_check_at, record.rechecks, record.rows) == (None, 0, ())  # unknown to it
        else:
            assert (record.last_check_at, record.rechecks) == (old["last_check_at"], old["rechecks"])
            assert (record.rows, record.group) == seen_of(old["seen"])
    held = store.identities()
    identities = {f"{i.report_group_id}/{i.report_id}": i for i in held}
    assert set(identities) == set(want["identities"])
    for key, old_record in want["identities"].items():
        group, _, report = key.partition("/")
        assert identities[key] == identity_of(group, report, json.dumps(old_record))
    assert any(i.missed_total for i in held)  # the expectation's verdicts came along
    assert any(dict(i.outcomes).get("success") and i.last_success for i in held)
    assert store.firings() == want["schedules"]
    return loaded


def test_a_sqlite_file_of_schema_2_migrates_and_keeps_everything(tmp_path: Path) -> None:
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


def load_dump(cluster: Any, fixture: Path = FIXTURE) -> str:
    """A new database of `cluster` holding the fixture's dump; its URL."""
    url = str(cluster.create_database())
    cluster.client("psql", url, "-q", "-v", "ON_ERROR_STOP=1", stdin=(fixture / "state.sql").read_text())
    return url


def test_a_postgresql_dump_of_schema_2_migrates_and_keeps_everything(postgres_cluster: Any) -> None:
    from tests.support.postgres import PASSWORD

    url = load_dump(postgres_cluster)
    store = PostgresStore(url, Secret(PASSWORD))
    store.start()
    try:
        check_nothing_lost(store, expected("expected-postgresql.json"))
    finally:
        store.stop(1.0)


def test_a_shard_of_schema_2_keeps_working_on_the_migrated_database_until_restarted(
    postgres_cluster: Any,
) -> None:
    import psycopg

    from tests.support.postgres import PASSWORD

    url = load_dump(postgres_cluster)
    old = psycopg.connect(url, password=PASSWORD)  # a previous version's shard, running all along
    new = PostgresStore(url, Secret(PASSWORD))
    new.start()  # a shard of this version migrates the shared database
    with old.cursor() as cur:
        cur.execute(
            OLD_INSERT.replace("?", "%s"),
            ("old-shard-run", "report", "api", "{}", "rpt-x", "", None, 1.0, 1.0, "[]", None, "", "", 999),
        )
        cur.execute(
            OLD_UPDATE.replace("?", "%s"),
            ("{}", "rpt-x", "", 1.0, '[["rpt-x","FAILED",2.0]]', 2.0, "failure", "X", "old-shard-run"),
        )
    old.commit()
    old.close()
    record = new.get("old-shard-run")
    assert record is not None and record.outcome == "failure" and record.since == (("rpt-x", "FAILED", 2.0),)
    assert record.rows == () and record.rechecks == 0  # the new columns' defaults
    new.stop(1.0)
    # Restarted, a previous version meets a schema newer than its own: it refuses, and changes nothing.
    with psycopg.connect(url, password=PASSWORD) as conn:
        (version,) = conn.execute("SELECT version FROM schema_version").fetchone() or (None,)
        assert version == LATEST
        conn.execute("UPDATE schema_version SET version = %s", (LATEST + 1,))  # as this version sees it then
    refused = PostgresStore(url, Secret(PASSWORD))
    with pytest.raises(StoreError, match=rf"schema version {LATEST + 1} is newer than this exporter's"):
        refused.start()
    with psycopg.connect(url, password=PASSWORD) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (LATEST + 1,)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (
            len(expected("expected-postgresql.json")["runs"]) + 1,
        )


def test_the_exporter_on_the_migrated_file_goes_on_counting_where_it_stopped(
    tmp_path: Path, exporter_process: Any
) -> None:
    from sigma_exporter.simulator import Simulator, load_scenario
    from sigma_exporter.simulator.scenario import builtin_scenario
    from tests.support.configs import config_text
    from tests.support.exporter import select

    path = tmp_path / "state.db"
    shutil.copy(FIXTURE / "state.db", path)
    want = expected()["identities"]
    (tmp_path / "refs.yml").write_text("reports: [demo-loan-book]\n")
    with Simulator(load_scenario(builtin_scenario("demo"))) as sim:
        proc = exporter_process(
            config_text(
                sim.url,
                reports=[
                    {"reference": "demo-daily-balances", "labels": {"team": "treasury"}},
                    "demo-dormant-accounts",
                ],
                groups=["demo-month-end"],
                references__files=[str(tmp_path / "refs.yml")],
                state={"url": f"sqlite:///{path}"},
            )
        )
        proc.wait_ready()
        text = proc.metrics()
    for key, record in want.items():
        group, _, report = key.partition("/")
        for outcome, count in record["outcomes"].items():
            got = select(
                text, "sigma_report_runs_total", report_group_id=group, report_id=report, outcome=outcome
            )
            assert got and next(iter(got.values())) >= count, (key, outcome)
        if record["last_success"] is not None:
            got = select(
                text, "sigma_report_last_success_timestamp_seconds", report_group_id=group, report_id=report
            )
            assert next(iter(got.values())) >= record["last_success"], key
    canary = select(text, "sigma_report_runs_total", report_id="rpt-canary", outcome="success")
    assert list(canary.values()) == [
        float(want["/rpt-canary"]["outcomes"]["success"])
    ]  # schedule runs: no new ones
    missed = select(text, "sigma_report_missed_runs_total", report_id="rpt-never")
    assert missed == {}  # no longer expected by this config: the count is kept in the store, not exported
