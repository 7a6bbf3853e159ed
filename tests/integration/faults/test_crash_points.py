"""Crash points: rounds of a registration burst from 8 clients, SIGKILL at a random moment, and a restart, on
SQLite and on PostgreSQL. After every round: every reference that got 201 or 200 is held, once; in the
store no run is counted twice (each identity's counts are exactly its counted runs, as they are written in
one transaction); and the counts and last-success times the restarted exporter shows are at least what was
durable before the kill, and at least what any scrape before the kill showed (counts are published only
once durable, so a kill never takes back a count `increase()` has seen)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import SCENARIO, config, register, start_run
from tests.support.scenarios import scenario_from

ROUNDS = int(os.environ.get("SIGMA_CRASH_ROUNDS", "20"))
CLIENTS = 8
REPORTS = ("rpt-daily", "rpt-broken", "rpt-empty")
COUNTED = ("sigma_report_runs_total", "sigma_report_last_success_timestamp_seconds")

Series = dict[tuple[tuple[str, str], ...], float]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


@dataclass
class Durable:
    """What the store holds: runs by reference (their outcome, "" until counted), identities' records."""

    runs: dict[str, tuple[str, str]] = field(default_factory=dict)  # reference -> (report_id, outcome)
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)  # report_id -> record
    # Runs marked counted whose count waits for the identity's owner (a hand-off in `outcomes`).
    waiting: Counter[tuple[str, str]] = field(default_factory=Counter)

    def check_counted_once(self) -> None:
        counted: Counter[tuple[str, str]] = Counter(
            (report_id, outcome) for report_id, outcome in self.runs.values() if outcome
        )
        in_records: Counter[tuple[str, str]] = Counter()
        for report_id, record in self.identities.items():
            for outcome, runs in record.get("outcomes", {}).items():
                in_records[(report_id, outcome)] += runs
        assert +(in_records + self.waiting) == +counted, (in_records, self.waiting, counted)


def read_store(query: Callable[[str], list[tuple[Any, ...]]]) -> Durable:
    durable = Durable()
    for reference, report_id, outcome in query("SELECT reference, report_id, outcome FROM runs"):
        assert reference not in durable.runs, f"{reference} stored twice"
        durable.runs[reference] = (report_id, outcome)
    for report_id, record in query("SELECT report_id, record FROM report_identities"):
        durable.identities[report_id] = json.loads(record)
    for report_id, record in query("SELECT report_id, record FROM outcomes"):
        durable.waiting[(report_id, json.loads(record)["outcome"])] += 1
    return durable


def shown(proc: ExporterProcess) -> dict[str, Series]:
    text = proc.metrics()
    return {name: select(text, name) for name in COUNTED}


def at_least(later: dict[str, Series], earlier: dict[str, Series], what: str) -> None:
    for name in COUNTED:
        for labels, value in earlier[name].items():
            assert later[name].get(labels, 0.0) >= value, (
                f"{name}{dict(labels)} {what}: {value} -> {later[name].get(labels)}"
            )


def durable_series(durable: Durable) -> dict[str, Series]:
    runs: Series = {}
    success: Series = {}
    for report_id, record in durable.identities.items():
        for outcome, count in record.get("outcomes", {}).items():
            runs[(("outcome", outcome), ("report_id", report_id))] = float(count)
        if record.get("last_success") is not None:
            success[(("report_id", report_id),)] = float(record["last_success"])
    return {COUNTED[0]: runs, COUNTED[1]: success}


def normalised(series: dict[str, Series]) -> dict[str, Series]:
    """The series by their identity and outcome labels (empty ones dropped), as the store keys them."""
    keep = {"outcome", "report_group_id", "report_id"}
    return {
        name: {tuple((n, v) for n, v in labels if n in keep and v): value for labels, value in s.items()}
        for name, s in series.items()
    }


def burst(
    proc: ExporterProcess, references: list[str], report_of: dict[str, str], kill_after: float
) -> tuple[set[str], dict[str, Series]]:
    """Register `references` from 8 clients and SIGKILL the exporter `kill_after` seconds in; the references
    acknowledged (201 or 200) and the last scrape completed before the kill."""
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    last_scrape: list[dict[str, Series]] = [{name: {} for name in COUNTED}]
    queue = list(references)

    def client() -> None:
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                reference = queue.pop()
            try:
                answer = register(
                    proc, {"reference": reference, "kind": "report", "report_id": report_of[reference]}
                )
            except requests.RequestException:
                return  # the kill: the reply never came, so nothing was acknowledged
            if answer.status_code in (200, 201):
                with lock:
                    acknowledged.add(reference)

    def scraper() -> None:
        while not stop.is_set():
            try:
                seen = shown(proc)
            except requests.RequestException:
                return
            if not stop.is_set():
                last_scrape[0] = seen

    with concurrent.futures.ThreadPoolExecutor(CLIENTS + 1) as pool:
        futures = [pool.submit(client) for _ in range(CLIENTS)] + [pool.submit(scraper)]
        time.sleep(kill_after)
        stop.set()  # a scrape that completes from now on may have raced the kill: not counted as seen
        proc.stop(signal.SIGKILL)
        for future in futures:
            future.result(timeout=30)
    return acknowledged, last_scrape[0]


def crash_rounds(
    sim: Simulator,
    start: Callable[[], ExporterProcess],
    query: Callable[[str], list[tuple[Any, ...]]],
) -> None:
    rng = random.Random(int(os.environ.get("SIGMA_CRASH_SEED", str(time.time_ns()))))
    per_round = 40
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # runs the simulator will end in 0-2 s
        report_of = dict(
            pool.map(
                lambda n: (start_run(sim, "RUN_REPORT", REPORTS[n % 3]), REPORTS[n % 3]),
                range(per_round * ROUNDS),
            )
        )
    references = list(report_of)
    acknowledged: set[str] = set()
    durable = Durable()
    seen: dict[str, Series] = {
        name: {} for name in COUNTED
    }  # the highest each series was seen, before any kill
    for round_number in range(ROUNDS + 1):
        proc = start()
        proc.wait_ready(first_cycle=False)
        held = [r["reference"] for r in requests.get(proc.url + "/api/v1/runs", timeout=10).json()["runs"]]
        assert len(held) == len(set(held)), f"round {round_number}: a run held twice"
        missing = acknowledged - set(held)
        assert not missing, f"round {round_number}: acknowledged but lost: {sorted(missing)[:5]}"
        restored = normalised(shown(proc))
        at_least(restored, durable_series(durable), f"restored below the store in round {round_number}")
        at_least(restored, seen, f"seen before the kill, gone after it (round {round_number})")
        if round_number == ROUNDS:
            proc.stop()
            break
        batch = references[round_number * per_round : (round_number + 1) * per_round]
        acked, last = burst(proc, batch, report_of, rng.uniform(0.05, 1.5))
        durable = read_store(query)  # the exporter is dead: what the kill left durable
        durable.check_counted_once()
        acknowledged |= acked
        for name, series in normalised(last).items():
            for labels, value in series.items():
                seen[name][labels] = max(seen[name].get(labels, 0.0), value)
    assert acknowledged, "no registration was acknowledged in any round"
    final = read_store(query)
    assert acknowledged <= set(final.runs)


def test_sigkill_in_bursts_on_sqlite_loses_nothing_acknowledged_and_counts_nothing_twice(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, state_directory: Path
) -> None:
    body = config(sim, tmp_path)
    db = state_directory / "sigma-exporter.db"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchall()

    crash_rounds(sim, lambda: exporter_process(body), query)


def test_sigkill_in_bursts_on_postgresql_loses_nothing_acknowledged_and_counts_nothing_twice(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, postgres_cluster: Any
) -> None:
    import psycopg

    from tests.support.postgres import PASSWORD

    state = postgres_cluster.state_config(tmp_path)
    url = state["url"]
    body = config(sim, tmp_path, state=state)

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, password=PASSWORD) as conn:
            return list(conn.execute(sql).fetchall())

    crash_rounds(sim, lambda: exporter_process(body), query)


def test_while_the_store_cannot_write_statuses_go_on_and_counts_wait_so_a_kill_takes_none_back(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, state_directory: Path
) -> None:
    body = config(sim, tmp_path)
    proc = exporter_process(body)
    proc.wait_ready()
    reference = start_run(sim, "RUN_REPORT", "rpt-daily")  # GENERATED for 2 s, then PUBLISHED
    assert (
        register(proc, {"reference": reference, "kind": "report", "report_id": "rpt-daily"}).status_code
        == 201
    )
    blocker = sqlite3.connect(state_directory / "sigma-exporter.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every write times out from now on
    try:
        wait_for(
            lambda: (
                select(proc.metrics(), "sigma_report_status", reference=reference, status="PUBLISHED")
                and list(
                    select(
                        proc.metrics(), "sigma_report_status", reference=reference, status="PUBLISHED"
                    ).values()
                )
                == [1.0]
            ),
            15,
            what="the run's final status shown while the store cannot write",
        )
        wait_for(lambda: select(proc.metrics(), "sigma_state_up") == {(): 0.0}, 20, what="sigma_state_up 0")
        text = proc.metrics()
        counted = select(text, "sigma_report_runs_total", report_id="rpt-daily", outcome="success")
        assert set(counted.values()) <= {0.0}, "a count shown before it was durable"
        proc.stop(signal.SIGKILL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    again = exporter_process(body)
    again.wait_ready()
    wait_for(
        lambda: (
            set(
                select(
                    again.metrics(), "sigma_report_runs_total", report_id="rpt-daily", outcome="success"
                ).values()
            )
            == {1.0}
        ),
        15,
        what="the run counted once, after the restart re-checked it",
    )
