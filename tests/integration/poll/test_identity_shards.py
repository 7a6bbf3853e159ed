"""Report identities across two shards of `sigma-exporter serve` on one PostgreSQL database, as an operator
scaling out per the README would run them: each identity's series come from one shard (its owner),
whichever shard polled its runs; the sum over shards counts each run once, before and after both shards
restart and after the owner is killed; every shard's /api/v1/reports says the same; and skip_if_running
sees the runs the other shard holds. (Many shards, reshards and overlaps in process:
tests/integration/state/test_identity_owners.py.)"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.runs.references import shard_of
from sigma_exporter.simulator import Simulator
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import SCENARIO, TOKEN, config, register, start_run
from tests.support.scenarios import scenario_from

Start = Callable[..., ExporterProcess]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def series(procs: list[ExporterProcess], name: str, **labels: str) -> dict[int, float]:
    """Per shard that exports it, the sum of `name`'s samples matching `labels`."""
    found: dict[int, float] = {}
    for index, proc in enumerate(procs):
        values = select(proc.metrics(), name, **labels)
        if values:
            found[index] = sum(values.values())
    return found


def reports(proc: ExporterProcess) -> dict[str, dict[str, Any]]:
    reply = requests.get(proc.url + "/api/v1/reports", timeout=5)
    assert reply.status_code == 200
    return {r["report_id"]: r for r in reply.json()["reports"] if not r["report_group_id"]}


def start_shards(start: Start, body: str, count: int = 2) -> list[ExporterProcess]:
    procs = [start(body, "--shard.index", str(i), "--shard.count", str(count)) for i in range(count)]
    for proc in procs:
        proc.wait_ready()
    return procs


def test_each_run_is_counted_once_by_its_identitys_owner_through_restarts_and_a_kill(
    sim: Simulator, exporter_process: Start, tmp_path: Path, postgres_cluster: Any
) -> None:
    body = config(sim, tmp_path, state=postgres_cluster.state_config(tmp_path))
    procs = start_shards(exporter_process, body)
    owner = shard_of("/rpt-empty", 2)
    references = [start_run(sim, "RUN_REPORT", "rpt-empty") for _ in range(8)]
    pollers = {shard_of(r, 2) for r in references}
    assert pollers == {0, 1}, "the runs should be polled by both shards"
    for n, reference in enumerate(references):  # registered at either shard
        body_ = {"reference": reference, "kind": "report", "report_id": "rpt-empty"}
        assert register(procs[n % 2], body_).status_code == 201
    daily = start_run(sim, "RUN_REPORT", "rpt-daily")
    assert register(procs[1 - shard_of(daily, 2)], {"reference": daily, "kind": "report"}).status_code == 201

    def counted(name: str, want: float, **labels: str) -> dict[int, float]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (found := series(procs, name, **labels)) and sum(found.values()) == want and found,
            30,
            what=f"{name} {labels} summing to {want} over the shards",
        )

    assert counted("sigma_report_runs_total", 8, report_id="rpt-empty", outcome="no_data") == {owner: 8}
    daily_owner = shard_of("/rpt-daily", 2)
    assert counted("sigma_report_runs_total", 1, report_id="rpt-daily", outcome="success") == {daily_owner: 1}
    for proc in procs:  # one answer from every shard, the owner's, complete
        listed = reports(proc)
        assert listed["rpt-empty"]["runs"]["no_data"] == 8
        assert listed["rpt-daily"]["runs"]["success"] == 1 and listed["rpt-daily"]["last_success"]
    last_success = series(procs, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily")

    for proc in procs:  # both shards restart: nothing goes back, nothing is counted twice
        assert proc.stop() == 0
    procs = start_shards(exporter_process, body)
    assert counted("sigma_report_runs_total", 8, report_id="rpt-empty", outcome="no_data") == {owner: 8}
    assert counted("sigma_report_runs_total", 1, report_id="rpt-daily", outcome="success") == {daily_owner: 1}
    assert series(procs, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily") == last_success

    procs[owner].stop(signal.SIGKILL)  # the owner killed: its successor on this host takes over at once
    procs[owner] = exporter_process(body, "--shard.index", str(owner), "--shard.count", "2")
    procs[owner].wait_ready()
    more = start_run(sim, "RUN_REPORT", "rpt-empty")
    body_ = {"reference": more, "kind": "report", "report_id": "rpt-empty"}
    assert register(procs[1 - owner], body_).status_code == 201
    assert counted("sigma_report_runs_total", 9, report_id="rpt-empty", outcome="no_data") == {owner: 9}
    for proc in procs:
        assert reports(proc)["rpt-empty"]["runs"]["no_data"] == 9


def test_skip_if_running_sees_the_runs_the_other_shard_polls(
    sim: Simulator, exporter_process: Start, tmp_path: Path, postgres_cluster: Any
) -> None:
    # rpt-slow never ends. The schedule's shard starts the run; the shard of its reference polls it.
    schedule = {"name": "canary-slow", "report_id": "rpt-slow", "every_seconds": 1, "skip_if_running": True}
    body = config(sim, tmp_path, state=postgres_cluster.state_config(tmp_path), schedules=[schedule])
    procs = start_shards(exporter_process, body)
    firing = shard_of("canary-slow", 2)

    def started(result: str) -> float:
        return sum(series(procs, "sigma_schedule_runs_started_total", result=result).values())

    wait_for(lambda: started("ok") >= 1, 15, what="the schedule's first run")
    began = time.monotonic()
    wait_for(lambda: started("skipped") >= 5, 15, what="five firings skipped while the run is active")
    assert started("ok") == 1, f"{started('ok')} runs started within {time.monotonic() - began:.1f} s"
    assert set(series(procs, "sigma_schedule_runs_started_total")) == {firing}
    assert series(procs, "sigma_report_runs_active", report_id="rpt-slow") == {shard_of("/rpt-slow", 2): 1}


def test_the_shard_count_changes_with_every_shard_stopped_and_in_an_overlap(
    sim: Simulator, exporter_process: Start, tmp_path: Path, postgres_cluster: Any
) -> None:
    """2 -> 3 with every shard stopped first, then 3 -> 1 as a rolling restart would: the one new process
    runs beside the three old ones, which stop one by one. Runs end throughout; each is counted once, and
    each identity's counters go on from their stored values on its new owner."""
    body = config(sim, tmp_path, state=postgres_cluster.state_config(tmp_path))
    ended = {"rpt-empty": 0, "rpt-broken": 0}
    outcome = {"rpt-empty": "no_data", "rpt-broken": "failure"}
    highest: dict[tuple[str, str], float] = {}

    def run_some(procs: list[ExporterProcess], n: int) -> None:
        for i in range(n):
            report_id = list(ended)[i % 2]
            reference = start_run(sim, "RUN_REPORT", report_id)
            reply = register(
                procs[i % len(procs)], {"reference": reference, "kind": "report", "report_id": report_id}
            )
            assert reply.status_code == 201
            ended[report_id] += 1

    def settled(procs: list[ExporterProcess]) -> None:
        def right() -> bool:
            for report_id, count in ended.items():
                found = series(
                    procs, "sigma_report_runs_total", report_id=report_id, outcome=outcome[report_id]
                )
                if len(found) != 1 or sum(found.values()) != count:
                    return False
            return True

        wait_for(right, 40, what=f"each run counted once by one shard: {ended}")
        for proc in procs:  # no series of an instance goes back
            for report_id in ended:
                for labels, value in select(
                    proc.metrics(), "sigma_report_runs_total", report_id=report_id
                ).items():
                    key = (proc.url, f"{report_id}{sorted(labels)}")
                    assert value >= highest.get(key, 0.0)
                    highest[key] = value
            listed = reports(proc)
            for report_id, count in ended.items():
                assert listed[report_id]["runs"][outcome[report_id]] == count

    two = start_shards(exporter_process, body, 2)
    run_some(two, 6)
    settled(two)
    for proc in two:
        assert proc.stop() == 0
    three = start_shards(exporter_process, body, 3)
    settled(three)  # the stored counts, on the identities' new owners
    run_some(three, 6)
    settled(three)
    one = exporter_process(body, "--shard.index", "0", "--shard.count", "1")
    one.wait_ready()
    run_some([one, *three], 4)
    settled([one, *three])
    while three:
        assert three.pop().stop() == 0
        run_some([one, *three], 2)
        settled([one, *three])
    assert set(series([one], "sigma_report_runs_total", report_id="rpt-empty")) == {0}


def test_the_judging_shard_keeps_the_counts_of_runs_another_shard_polled_and_its_misses_through_restarts(
    sim: Simulator, exporter_process: Start, tmp_path: Path, postgres_cluster: Any
) -> None:
    """The shard that judges an identity's expectation is its owner, and it alone writes the identity: two
    successes polled by the other shard show at the owner (metrics and API), and stay when the polling shard
    restarts; the missed runs it counted, and when it began watching, survive its own restart."""
    import psycopg

    from tests.support.postgres import PASSWORD

    state = postgres_cluster.state_config(tmp_path)
    expectations = [{"report_id": "rpt-daily", "every_seconds": 2, "grace_seconds": 1}]
    body = config(sim, tmp_path, state=state, expectations=expectations)
    procs = start_shards(exporter_process, body)
    owner = shard_of("/rpt-daily", 2)
    daily: list[str] = []
    while len(daily) < 2:  # two runs the other shard polls
        reference = start_run(sim, "RUN_REPORT", "rpt-daily")
        if shard_of(reference, 2) != owner:
            daily.append(reference)
            assert register(procs[owner], {"reference": reference, "kind": "report"}).status_code == 201

    def owner_success() -> float | None:
        found = series(procs, "sigma_report_runs_total", report_id="rpt-daily", outcome="success")
        return found.get(owner) if set(found) == {owner} else None

    wait_for(lambda: owner_success() == 2, 30, what="both successes counted by the owner")
    wait_for(
        lambda: series(procs, "sigma_report_missed_runs_total", report_id="rpt-daily"), 15, what="misses"
    )
    for proc in procs:
        listed = reports(proc)["rpt-daily"]
        assert listed["runs"]["success"] == 2 and listed["last_success"] is not None
    poller = 1 - owner
    assert procs[poller].stop() == 0
    procs[poller] = exporter_process(body, "--shard.index", str(poller), "--shard.count", "2")
    procs[poller].wait_ready()
    assert owner_success() == 2
    assert series(procs, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily").keys() == {
        owner
    }
    missed = series(procs, "sigma_report_missed_runs_total", report_id="rpt-daily")[owner]
    assert procs[owner].stop() == 0
    procs[owner] = exporter_process(body, "--shard.index", str(owner), "--shard.count", "2")
    procs[owner].wait_ready()
    after = wait_for(
        lambda: series(procs, "sigma_report_missed_runs_total", report_id="rpt-daily").get(owner), 15
    )
    assert after >= missed, f"sigma_report_missed_runs_total went from {missed} to {after}"
    assert owner_success() == 2
    with psycopg.connect(state["url"], password=PASSWORD) as conn:
        row = conn.execute(
            "SELECT record FROM report_identities WHERE report_group_id = '' AND report_id = 'rpt-daily'"
        ).fetchone()
    assert row is not None and '"watched_since":null' not in row[0]


def test_an_identity_a_registration_reserved_is_exported_by_its_owner_and_retired_when_idle(
    sim: Simulator, exporter_process: Start, tmp_path: Path, postgres_cluster: Any
) -> None:
    import psycopg

    from tests.support.postgres import PASSWORD

    state = postgres_cluster.state_config(tmp_path)
    body = config(sim, tmp_path, state=state, retention={"identity_seconds": 3})
    procs = start_shards(exporter_process, body)
    owner = shard_of("/rpt-ghost", 2)
    reference = next(f"ghost-{n}" for n in range(100) if shard_of(f"ghost-{n}", 2) != owner)
    reply = register(procs[owner], {"reference": reference, "kind": "report", "report_id": "rpt-ghost"})
    assert reply.status_code == 201  # at the owner; the other shard polls the run
    wait_for(
        lambda: set(series(procs, "sigma_report_info", report_id="rpt-ghost")) == {owner},
        15,
        what="the reserved identity exported by its owner",
    )
    url = f"{procs[1 - owner].url}/api/v1/runs/{reference}"
    assert requests.delete(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 204

    def stored() -> int:
        with psycopg.connect(state["url"], password=PASSWORD) as conn:
            row = conn.execute(
                "SELECT count(*) FROM report_identities WHERE report_id = 'rpt-ghost'"
            ).fetchone()
        return int(row[0]) if row else 0

    wait_for(lambda: not series(procs, "sigma_report_info", report_id="rpt-ghost") and stored() == 0, 20)
