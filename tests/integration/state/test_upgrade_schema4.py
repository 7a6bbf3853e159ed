"""Schema 4 to 5 (one writer per report identity): a SQLite file and a PostgreSQL dump written by the exporter
at commit 95efdbf (schema 4; made by tests/fixtures/upgrade/make_fixture.py) open with the current code,
migrate, and lose nothing: the same runs, identity records (counts, last success, exemplars, expectations'
verdicts), history rows and schedules' claims. The migrated identities have no owner (at epoch 1) until a
shard takes one, at epoch 2, with its history's references. And with real processes: a shard of 95efdbf still running on a
database a new shard migrated fails loudly when it would write an identity (its statements name the table
that is gone; it writes one when a run ends, and when it first sees a run of an identity), writes nothing to
the identities, and the runs it saw end are counted once, by new shards, after it is replaced. (While the two
overlap, the old shard still exports the counts it holds in memory beside the new owner's.)"""

from __future__ import annotations

import io
import json
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.references import shard_of
from sigma_exporter.runs.store import StateStore
from sigma_exporter.runs.store.jsonforms import expected_run_of, history_run_of
from sigma_exporter.runs.store.postgres import PostgresStore
from sigma_exporter.runs.store.records import Changes, HistoryRun
from sigma_exporter.runs.store.schema import LATEST
from sigma_exporter.runs.store.sqlite import SQLiteStore
from sigma_exporter.simulator import Simulator
from tests.integration.state import test_upgrade as upgrade
from tests.integration.state.test_upgrade import load_dump
from tests.support import runs
from tests.support.binaries import IN_CI
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.paths import ROOT, TESTS
from tests.support.process import ExporterProcess
from tests.support.scenarios import scenario_from

COMMIT = "95efdbf"
FIXTURE = TESTS / "fixtures" / "upgrade" / COMMIT
#: The identity the fixture's schedule ran most often: history rows and verdicts of its own.
WATCHED = ("", "rpt-canary")


def expected(name: str = "expected.json") -> dict[str, Any]:
    return upgrade.expected(name, FIXTURE)


Rows = Callable[..., list[tuple[Any, ...]]]  # a query (and its parameters) on a database: its rows


def check_nothing_lost(store: StateStore, want: dict[str, Any], rows: Rows) -> None:
    """The migrated store holds every run, identity record, history row and claim the fixture's version
    wrote; its identities have no owner until `acquire` takes one."""
    loaded = upgrade.check_nothing_lost(store, want, schema=4)
    assert loaded.identities == ()  # taken with `acquire`, read with `identities`: no longer loaded
    assert any(r.rows for r in loaded.runs) and any(r.rechecks for r in loaded.runs)
    assert any(i.latest_runs for i in store.identities())  # the exemplars' runs came along
    assert any(i.latest_buckets for i in store.identities())
    held = {i.key for i in store.identities()}
    assert set(want["run_history"]) <= {f"{g}/{r}" for g, r in held}
    assert sum(map(len, want["run_history"].values())) and sum(map(len, want["expected_history"].values()))
    for g, r in sorted(held):
        history = store.history(g, r)
        assert history is not None
        old_runs = [
            history_run_of(g, r, h["reference"], json.dumps(h["record"]))
            for h in want["run_history"].get(f"{g}/{r}", [])
        ]
        assert sorted(history.runs, key=lambda h: h.reference) == sorted(old_runs, key=lambda h: h.reference)
        assert [h.final_at for h in history.runs] == sorted((h.final_at for h in old_runs), reverse=True)
        old_expected = [
            expected_run_of(g, r, e["expected_at"], json.dumps(e["record"]))
            for e in want["expected_history"].get(f"{g}/{r}", [])
        ]
        assert history.expected == tuple(sorted(old_expected, key=lambda e: e.expected_at, reverse=True))
    # Nobody owns a migrated identity, nothing waits for an owner.
    assert rows("SELECT owner, epoch FROM report_identities") == [(None, 1)] * len(held)
    assert rows("SELECT count(*) FROM outcomes") == [(0,)]
    assert rows("SELECT count(*) FROM owners") == [(0,)]
    assert set(store.free_identities(time.time())) == held
    # A shard takes one, at epoch 2, with the references its history holds (not to be counted again).
    before = next(i for i in store.identities() if i.key == WATCHED)
    store.renew(time.time() + 15)
    [(record, epoch, references)] = store.acquire([WATCHED], time.time())
    assert (record, epoch) == (before, 2)
    assert sorted(references) == [h["reference"] for h in want["run_history"]["/rpt-canary"]]
    assert rows("SELECT owner, epoch FROM report_identities WHERE report_id = 'rpt-canary'") == [
        (store.token, 2)
    ]
    assert store.acquire([WATCHED], time.time()) == []  # owned now, under a live lease
    # Its owner writes on under that epoch, on top of what was migrated.
    run = HistoryRun(*WATCHED, "after-upgrade", "report", "schedule", 1.0, 2.0, 1.0, "success")
    result = store.write(Changes(identities=(before,), epochs=((WATCHED, epoch),), history=(run,)))
    assert result.lost == () and result.refused == ()
    after = store.history(*WATCHED)
    assert after is not None
    assert {h.reference for h in after.runs} == {*references, "after-upgrade"}


def test_a_sqlite_file_of_schema_4_migrates_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    shutil.copy(FIXTURE / "state.db", path)
    store = SQLiteStore(path)
    store.start()

    def rows(query: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(query, params).fetchall()

    try:
        check_nothing_lost(store, expected(), rows)
    finally:
        store.stop(1.0)
    assert rows("SELECT version FROM schema_version") == [(LATEST,)]
    assert rows("SELECT name FROM sqlite_master WHERE name = 'identities'") == []


def test_a_postgresql_dump_of_schema_4_migrates_and_keeps_everything(postgres_cluster: Any) -> None:
    from tests.support.postgres import PASSWORD

    url = load_dump(postgres_cluster, FIXTURE)
    store = PostgresStore(url, Secret(PASSWORD))
    store.start()
    try:
        check_nothing_lost(store, expected("expected-postgresql.json"), postgres_rows(url))
    finally:
        store.stop(1.0)
    assert postgres_rows(url)("SELECT version FROM schema_version") == [(LATEST,)]
    assert postgres_rows(url)("SELECT to_regclass('identities')") == [(None,)]


def postgres_rows(url: str) -> Rows:
    """Queries on a PostgreSQL database, each in a connection of its own."""
    import psycopg

    from tests.support.postgres import PASSWORD

    def rows(query: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, password=PASSWORD, autocommit=True) as conn:
            return conn.execute(query.encode(), params).fetchall()

    return rows


# -- a real shard of 95efdbf beside new ones ------------------------------------------------------------


@pytest.fixture
def old_tree(tmp_path: Path) -> Path:
    """The package as it was at 95efdbf, extracted from this checkout's history: a directory to put on
    PYTHONPATH."""
    message = ""
    git = shutil.which("git")
    if git is None:
        message = "git is not installed"
    elif subprocess.run(
        [git, "-C", str(ROOT), "cat-file", "-e", f"{COMMIT}^{{commit}}"], capture_output=True, check=False
    ).returncode:
        message = f"commit {COMMIT} is not in this checkout's history (a shallow clone?)"
    if message:
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(f"{message}: the shard of schema 4 cannot be run")
    assert git is not None
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", COMMIT, "sigma_exporter"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    tree = tmp_path / f"sigma-exporter-{COMMIT}"
    tree.mkdir()
    safe: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.10.12 on
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, **safe)
    return tree


@pytest.fixture
def processes() -> Iterator[list[ExporterProcess]]:
    """Every exporter process a test starts, stopped at its end."""
    started: list[ExporterProcess] = []
    yield started
    for proc in started:
        proc.stop()


def reference_at(sim: Simulator, report_id: str, shard: int, status: str = "GENERATED") -> str:
    """A new run of `report_id` whose reference falls in `shard` of 2, pinned at `status` (other runs the
    search starts are left unregistered)."""
    for _ in range(64):
        reference = runs.start_run(sim, "RUN_REPORT", report_id)
        if shard_of(reference, 2) == shard:
            sim.set_status(reference, status)
            return reference
    raise AssertionError(f"no reference of shard {shard} of 2 in 64 runs")


def registered(proc: ExporterProcess, reference: str, report_id: str) -> None:
    reply = runs.register(proc, {"reference": reference, "kind": "report", "report_id": report_id})
    assert reply.status_code == 201, reply.text


def counts(procs: list[ExporterProcess]) -> tuple[Counter[tuple[str, str]], dict[str, set[int]]]:
    """sigma_report_runs_total summed over `procs` per (report_id, outcome); the shards exporting each."""
    total: Counter[tuple[str, str]] = Counter()
    exporters: dict[str, set[int]] = {}
    for index, proc in enumerate(procs):
        for labels, value in select(proc.metrics(), "sigma_report_runs_total").items():
            found = dict(labels)
            total[(found["report_id"], found["outcome"])] += int(value)
            exporters.setdefault(found["report_id"], set()).add(index)
    return total, exporters


def test_a_shard_of_schema_4_beside_a_new_shard_fails_loudly_and_its_runs_are_counted_once_after_it(
    tmp_path: Path, old_tree: Path, postgres_cluster: Any, processes: list[ExporterProcess]
) -> None:
    """2 shards on one PostgreSQL database, real processes. The identity /rpt-daily hashes to shard 1,
    /rpt-slow to shard 0; the runs' references all hash to shard 0 but r4's.

    1. The old shard (95efdbf) as shard 0, alone on a fresh database (schema 4), counts r1 of rpt-daily;
       r2 of rpt-daily is registered with it and checked, still running.
    2. A new shard 1 starts beside it: it migrates to schema 5 and takes /rpt-daily (epoch 2). r4 of
       rpt-slow, registered with it, ends there and waits in `outcomes` for the owner of /rpt-slow (shard 0,
       old: nobody takes it). The old shard goes on polling, with nothing to write yet.
    3. r2 ends at the old shard: its write (the run and its identity, in one transaction) fails loudly
       (sigma_state_up 0, logged), and so does every later one: r3 of rpt-slow, registered with shard 1,
       seen and ended by the old shard. Neither report_identities nor the runs change.
    4. The old shard is replaced by a new shard 0: it checks r2 and r3 again and counts them; r1..r4 are
       each counted once, in the sum over the new shards' sigma_report_runs_total (each identity exported by
       its owner only), in /api/v1/reports and in the history.
    """
    db = postgres_cluster.state_config(tmp_path)
    rows = postgres_rows(db["url"])

    def single(query: str, *params: object) -> Any:
        [(value,)] = rows(query, *params)
        return value

    def identity_rows() -> list[tuple[Any, ...]]:
        return rows(
            "SELECT report_group_id, report_id, record, owner, epoch FROM report_identities ORDER BY 1, 2"
        )

    def run_row(reference: str) -> tuple[Any, ...]:
        query = "SELECT final_at, outcome, last_check_at FROM runs WHERE reference = %s"
        [row] = rows(query, reference)
        return row

    def history_of(report_id: str) -> list[str]:
        query = "SELECT reference FROM run_history WHERE report_id = %s ORDER BY reference"
        return [r[0] for r in rows(query, report_id)]

    assert (shard_of("/rpt-daily", 2), shard_of("/rpt-slow", 2)) == (1, 0)
    with Simulator(scenario_from(runs.SCENARIO)) as sim:
        config = tmp_path / "config.yml"
        config.write_text(runs.config(sim, tmp_path, state=db))

        def shard(index: int, old: bool = False) -> ExporterProcess:
            # The working directory holds no package: each imports the tree on its PYTHONPATH.
            env = {"PYTHONPATH": str(old_tree if old else ROOT)}
            proc = ExporterProcess(
                config, "--shard.index", str(index), "--shard.count", "2", env=env, cwd=tmp_path
            )
            processes.append(proc)
            proc.wait_ready(30)
            return proc

        # 1. The old shard alone: schema 4, r1 counted, r2 active.
        old = shard(0, old=True)
        assert single("SELECT version FROM schema_version") == 4  # it is the old version that runs
        r1 = reference_at(sim, "rpt-daily", 0, status="PUBLISHED")
        registered(old, r1, "rpt-daily")
        wait_for(
            lambda: runs.value(old, "sigma_report_runs_total", report_id="rpt-daily", outcome="success") == 1,
            30,
            what="the old shard counting r1",
        )
        wait_for(lambda: history_of("rpt-daily") == [r1], 15, what="r1 in the old shard's history")
        [(record,)] = rows("SELECT record FROM identities WHERE report_id = 'rpt-daily'")
        assert json.loads(record)["outcomes"] == {"success": 1}
        r2 = reference_at(sim, "rpt-daily", 0)
        registered(old, r2, "rpt-daily")
        wait_for(lambda: run_row(r2)[2] is not None, 30, what="the old shard writing r2's check")

        # 2. A new shard 1 migrates the database under the running old shard and takes /rpt-daily.
        new1 = shard(1)
        migrated = time.time()
        assert single("SELECT version FROM schema_version") == LATEST
        assert single("SELECT to_regclass('identities')") is None
        wait_for(
            lambda: (
                rows(
                    "SELECT epoch FROM report_identities WHERE report_id = 'rpt-daily' AND owner IS NOT NULL"
                )
                == [(2,)]
            ),
            15,
            what="shard 1 taking /rpt-daily",
        )
        r4 = reference_at(sim, "rpt-slow", 1, status="PUBLISHED")
        registered(new1, r4, "rpt-slow")
        wait_for(
            lambda: rows("SELECT reference FROM outcomes") == [(r4,)],
            30,
            what="r4 waiting for /rpt-slow's owner",
        )
        assert single("SELECT owner FROM report_identities WHERE report_id = 'rpt-slow'") is None
        # The old shard goes on polling on the migrated database: it has had nothing to write yet.
        wait_for(lambda: old.last_poll() > migrated + 1, 15, what="the old shard polling after the migration")
        assert runs.value(old, "sigma_state_up") == 1
        before = identity_rows()

        # 3. r2 ends at the old shard: its write (the run and its identity, together) fails loudly, and so
        # does every later one (r3, registered at shard 1, seen by the old shard and ended there).
        sim.set_status(r2, "PUBLISHED")
        wait_for(lambda: runs.value(old, "sigma_state_up") == 0, 30, what="the old shard's sigma_state_up 0")
        log = old.output()
        # logfmt escapes the quotes of PostgreSQL's message
        assert (
            "cannot write to the state store" in log and r"relation \"identities\" does not exist" in log
        ), log
        r3 = reference_at(sim, "rpt-slow", 0)
        registered(new1, r3, "rpt-slow")
        seen = f'msg="report status changed" reference={r3}'
        wait_for(lambda: seen in old.output(), 30, what="the old shard polling r3")
        sim.set_status(r3, "FAILED")
        wait_for(
            lambda: f"reference={r3} kind=report outcome=failure" in old.output(),
            30,
            what="r3 ending at the old shard",
        )
        time.sleep(6)  # the old shard retries (with back-off, every 4 s at most): still nothing
        assert runs.value(old, "sigma_state_up") == 0
        assert runs.value(new1, "sigma_state_up") == 1
        assert identity_rows() == before
        assert single("SELECT to_regclass('identities')") is None
        # Its run updates went with the failed transactions: r2 as it was checked last, r3 never checked.
        assert run_row(r2)[:2] == (None, "") and run_row(r3) == (None, "", None)
        assert (history_of("rpt-daily"), history_of("rpt-slow")) == ([r1], [])  # r4 waits in outcomes
        assert rows("SELECT reference FROM outcomes") == [(r4,)]

        # 4. The old shard is replaced by a new shard 0: every run that ended is counted once.
        old.stop(signal.SIGTERM, timeout=20)
        new0 = shard(0)
        want = Counter({("rpt-daily", "success"): 2, ("rpt-slow", "failure"): 1, ("rpt-slow", "success"): 1})
        wait_for(lambda: counts([new0, new1])[0] == want, 30, what=f"the new shards counting {dict(want)}")
        time.sleep(3)  # a few more cycles and ownership syncs: nothing counted twice
        total, exporters = counts([new0, new1])
        assert total == want
        assert exporters == {"rpt-daily": {1}, "rpt-slow": {0}}  # each identity by its owner only
        for proc in (new0, new1):
            reports = requests.get(proc.url + "/api/v1/reports", timeout=5).json()["reports"]
            held = {r["report_id"]: r["runs"] for r in reports}
            assert held["rpt-daily"] == {"success": 2}, reports
            assert held["rpt-slow"] == {"failure": 1, "success": 1}, reports
        assert history_of("rpt-daily") == sorted([r1, r2])
        assert history_of("rpt-slow") == sorted([r3, r4])
        assert single("SELECT count(*) FROM outcomes") == 0
        assert (run_row(r2)[1], run_row(r3)[1]) == ("success", "failure")
        owners = {r[1]: r[3:] for r in identity_rows()}
        assert owners["rpt-daily"] == {r[1]: r[3:] for r in before}["rpt-daily"]  # shard 1's, all along
        assert owners["rpt-slow"][0] is not None and owners["rpt-slow"][1] == 2  # taken by the new shard 0
