"""Runs through their life on a real exporter and the simulator's /generate: registered, checked within a
second, counted once at the first final status (never on re-checks or restarts), durations from
submitted_at, report identities, retention, `kill -9` after 200 acknowledged registrations, and a state
store that cannot write (503, polling goes on, sigma_state_up 0)."""

from __future__ import annotations

import concurrent.futures
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import SCENARIO, TOKEN, config, register, start_run, value
from tests.support.scenarios import scenario_from


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def test_report_and_group_runs_from_registration_to_counted_once(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    proc = exporter_process(config(sim, tmp_path))
    proc.wait_ready()
    submitted = time.time() - 30  # the scheduler started it half a minute ago
    daily = start_run(sim, "RUN_REPORT", "rpt-daily")
    broken = start_run(sim, "RUN_REPORT", "rpt-broken")
    empty = start_run(sim, "RUN_REPORT", "rpt-empty")
    month = start_run(sim, "EXEC_REPORT_GROUP", "grp-month")
    registered = time.monotonic()
    assert (
        register(
            proc,
            {
                "reference": daily,
                "kind": "report",
                "report_id": "rpt-daily",
                "submitted_at": submitted,
                "labels": {"team": "treasury"},
            },
        ).status_code
        == 201
    )
    # The first check comes within a second, not at the next cycle.
    wait_for(
        lambda: requests.get(f"{proc.url}/api/v1/runs/{daily}", timeout=5).json()["status"] == "GENERATED",
        1.5,
        interval=0.05,
        what="the first check of a new registration",
    )
    assert time.monotonic() - registered < 1.5
    # report_id is known from the registration before Sigma's reply names it: runs_active counts it.
    assert value(proc, "sigma_report_runs_active", report_id="rpt-daily") == 1.0
    for reference, kind in ((broken, "report"), (empty, "report"), (month, "group")):
        assert register(proc, {"reference": reference, "kind": kind}).status_code == 201

    def counted(exporter: ExporterProcess = proc) -> bool:
        return all(
            value(exporter, "sigma_report_runs_total", report_group_id=g, report_id=r, outcome=o) == 1.0
            for g, r, o in (
                ("", "rpt-daily", "success"),
                ("", "rpt-broken", "failure"),
                ("", "rpt-empty", "no_data"),
                ("grp-month", "", "failure"),
                ("grp-month", "m-ledger", "success"),
                ("grp-month", "m-pnl", "failure"),
            )
        )

    wait_for(counted, 15, what="every run counted")
    duration = value(proc, "sigma_report_last_run_duration_seconds", report_id="rpt-daily")
    assert duration is not None and 30 <= duration <= 40  # from submitted_at, not from registration
    assert value(proc, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily") is not None
    assert value(proc, "sigma_report_last_failure_timestamp_seconds", report_id="rpt-daily") is None
    assert value(proc, "sigma_report_last_failure_timestamp_seconds", report_id="rpt-broken") is not None
    assert value(proc, "sigma_report_run_duration_seconds_count", report_id="rpt-daily") == 1.0
    info = select(proc.metrics(), "sigma_report_info", report_id="rpt-daily")
    assert list(info) == [
        (
            ("report_group_id", ""),
            ("report_id", "rpt-daily"),
            ("report_name", "DailyBalances"),
            ("report_url", f"{proc.url}/report?report_group_id=&report_id=rpt-daily"),
            ("team", "treasury"),
        )
    ]
    assert value(proc, "sigma_runs", source="api", state="final") == 4.0
    assert value(proc, "sigma_report_runs_active", report_id="rpt-daily") == 0.0
    # Re-checks (every second here) never count again.
    checks = sim.stats()["by_reference"][daily]  # type: ignore[index]
    wait_for(lambda: sim.stats()["by_reference"][daily] >= checks + 2, 10, what="re-checks")  # type: ignore[index]
    assert counted()
    # Nor does a restart: the counters, last success and since come back from the state store.
    last_success = value(proc, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily")
    since = select(proc.metrics(), "sigma_report_status_since_timestamp_seconds", reference=daily)
    proc.stop()
    again = exporter_process(config(sim, tmp_path))
    again.wait_ready()
    wait_for(lambda: value(again, "sigma_runs", source="api", state="final") == 4.0, 10, what="runs restored")
    wait_for(lambda: counted(again), 10, what="counters restored, not counted again")
    assert value(again, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily") == last_success
    wait_for(
        lambda: (
            select(again.metrics(), "sigma_report_status_since_timestamp_seconds", reference=daily) == since
        ),
        10,
    )


def test_retention_retires_final_and_abandoned_runs(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    proc = exporter_process(config(sim, tmp_path, retention={"final_seconds": 2, "abandon_after_seconds": 4}))
    proc.wait_ready()
    done = start_run(sim, "RUN_REPORT", "rpt-empty")
    stuck = start_run(sim, "RUN_REPORT", "rpt-slow")
    for reference in (done, stuck):
        assert register(proc, {"reference": reference, "kind": "report"}).status_code == 201
    wait_for(lambda: value(proc, "sigma_runs_retired_total", reason="retention") == 1.0, 15, what="retention")
    wait_for(lambda: value(proc, "sigma_runs_retired_total", reason="abandoned") == 1.0, 15, what="abandoned")
    assert value(proc, "sigma_report_runs_total", report_id="rpt-slow", outcome="abandoned") == 1.0
    assert value(proc, "sigma_report_last_failure_timestamp_seconds", report_id="rpt-slow") is not None
    assert requests.get(f"{proc.url}/api/v1/runs/{stuck}", timeout=5).status_code == 404
    assert value(proc, "sigma_runs", source="api", state="active") == 0.0
    # The identities outlive their runs.
    assert value(proc, "sigma_report_runs_total", report_id="rpt-empty", outcome="no_data") == 1.0


def test_kill_9_after_200_acknowledged_registrations_loses_none(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    proc = exporter_process(config(sim, tmp_path, poll={"interval_seconds": 5, "concurrency": 4}))
    proc.wait_ready()
    early = start_run(sim, "RUN_REPORT", "rpt-empty")
    assert register(proc, {"reference": early, "kind": "report"}).status_code == 201
    wait_for(
        lambda: value(proc, "sigma_report_runs_total", report_id="rpt-empty", outcome="no_data") == 1.0, 10
    )
    time.sleep(0.5)  # let the writer persist what the poller saw (it is asynchronous by design)
    last_success = value(proc, "sigma_report_last_success_timestamp_seconds", report_id="rpt-empty")
    since = select(proc.metrics(), "sigma_report_status_since_timestamp_seconds", reference=early)
    references = [f"bulk-{i:03d}" for i in range(200)]

    def one(reference: str) -> int:
        return register(
            proc, {"reference": reference, "kind": "report", "submitted_at": time.time() - 1}
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, references))
    assert codes == [201] * 200
    proc.stop(signal.SIGKILL)
    again = exporter_process(config(sim, tmp_path, poll={"interval_seconds": 5, "concurrency": 4}))
    again.wait_ready()
    held = {r["reference"] for r in requests.get(again.url + "/api/v1/runs", timeout=10).json()["runs"]}
    assert set(references) <= held and early in held
    assert value(again, "sigma_report_last_success_timestamp_seconds", report_id="rpt-empty") == last_success
    assert select(again.metrics(), "sigma_report_status_since_timestamp_seconds", reference=early) == since


def test_a_store_that_cannot_write_gives_503_and_polling_goes_on(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, state_directory: Path
) -> None:
    proc = exporter_process(config(sim, tmp_path, references={"reports": ["cfg-1"]}))
    proc.wait_ready()
    db = state_directory / "sigma-exporter.db"
    assert db.exists()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock: every write times out
    try:
        polls = value(proc, "sigma_last_poll_timestamp_seconds")
        refused = register(proc, {"reference": "while-locked", "kind": "report"})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "state store" in refused.json()["error"]
        wait_for(lambda: value(proc, "sigma_state_up") == 0.0, 10, what="sigma_state_up 0")
        wait_for(
            lambda: (value(proc, "sigma_last_poll_timestamp_seconds") or 0) > (polls or 0), 10, what="polling"
        )
        assert requests.get(proc.url + "/api/v1/runs/while-locked", timeout=5).status_code == 404
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert register(proc, {"reference": "after", "kind": "report"}).status_code == 201
    wait_for(lambda: value(proc, "sigma_state_up") == 1.0, 15, what="sigma_state_up back to 1")
    assert "cannot write to the state store" in proc.output()


def test_shards_on_one_postgresql_database_take_registrations_at_any_shard(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, postgres_cluster: Any
) -> None:
    from sigma_exporter.runs.references import shard_of
    from tests.support.postgres import PASSWORD

    password = tmp_path / "pg-password"
    password.write_text(PASSWORD)
    state = {"url": postgres_cluster.create_database(), "password_file": str(password)}
    shards = []
    for index in range(2):
        proc = exporter_process(
            config(sim, tmp_path, state=state), "--shard.index", str(index), "--shard.count", "2"
        )
        shards.append(proc)
    for proc in shards:
        proc.wait_ready()
    references = [start_run(sim, "RUN_REPORT", "rpt-empty") for _ in range(12)]
    for reference in references:  # every registration goes to shard 0
        assert register(shards[0], {"reference": reference, "kind": "report"}).status_code == 201
    owners = [shard_of(r, 2) for r in references]
    assert 0 < sum(owners) < len(owners), "the references should fall in both shards"

    def held(proc: ExporterProcess) -> set[str]:
        return {dict(labels)["reference"] for labels in select(proc.metrics(), "sigma_reference_up")}

    for index, proc in enumerate(shards):
        mine = {r for r, owner in zip(references, owners, strict=True) if owner == index}
        wait_for(lambda p=proc, m=mine: held(p) == m, 15, what=f"shard {index} holding its runs")  # type: ignore[misc]
    # Any shard answers for any run: the owner from memory, the other from the shared store.
    other = next(r for r, owner in zip(references, owners, strict=True) if owner == 1)
    assert requests.get(f"{shards[0].url}/api/v1/runs/{other}", timeout=5).json()["reference"] == other
    # A deletion at shard 0 of a run shard 1 polls reaches shard 1.
    assert (
        requests.delete(
            f"{shards[0].url}/api/v1/runs/{other}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ).status_code
        == 204
    )
    wait_for(lambda: other not in held(shards[1]), 15, what="the deletion reaching the owner")
    wait_for(lambda: value(shards[1], "sigma_runs_retired_total", reason="deleted") == 1.0, 10)


def test_memory_state_is_explicit_warned_about_and_forgets_on_restart(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    body = config(sim, tmp_path, state={"url": "memory:"})
    proc = exporter_process(body)
    proc.wait_ready()
    assert "state.url is memory: runs registered through the API and report history are lost" in proc.output()
    assert register(proc, {"reference": "forgotten", "kind": "report"}).status_code == 201
    proc.stop()
    again = exporter_process(body)
    again.wait_ready()
    assert requests.get(f"{again.url}/api/v1/runs/forgotten", timeout=5).status_code == 404
