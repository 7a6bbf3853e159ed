"""Schedules: the exporter starts runs itself (RUN_REPORT / EXEC_REPORT_GROUP, reportFilter passed through),
holds them with source `schedule`, counts failures to start and goes on, skips while running when told to,
and never starts a firing twice, across restarts (the claim is in the state store) and shards."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from sigma_exporter.config.load import parse_config
from sigma_exporter.config.model import StateConfig
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.schedules import Scheduler
from sigma_exporter.runs.store import StateStore, open_store
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.client import SigmaClient
from sigma_exporter.sigma.stats import ApiStats
from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import SCENARIO, value
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN, scenario_from

FAULTS = """
faults:
  generate_faults:
    - {report_id: rpt-broken, fault: http_500, times: 1}
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO + FAULTS)) as simulator:
        yield simulator


def test_schedules_start_runs_count_errors_skip_while_running_and_hold_them(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess]
) -> None:
    body = config_text(
        sim.url,
        poll={"interval_seconds": 1, "concurrency": 4, "final_recheck_seconds": 1},
        sigma__timeout_seconds=1,
        schedules=[
            {
                "name": "canary-daily",
                "report_id": "rpt-daily",
                "every_seconds": 2,
                "grace_seconds": 1,
                "report_filter": {
                    "filterDef": [{"field": "BRANCH", "operator": "STR_EQUALS", "value": "LDN"}]
                },
                "labels": {"team": "sre"},
            },
            {"name": "broken", "report_id": "rpt-broken", "every_seconds": 2, "grace_seconds": 1},
            {"name": "stuck", "report_id": "rpt-slow", "every_seconds": 1, "skip_if_running": True},
            {"name": "month", "report_group_id": "grp-month", "every_seconds": 3},
        ],
    )
    proc = exporter_process(body)
    proc.wait_ready()

    def started(schedule: str, result: str) -> float:
        return value(proc, "sigma_schedule_runs_started_total", schedule=schedule, result=result) or 0.0

    wait_for(lambda: started("canary-daily", "ok") >= 2, 8, what="two canary runs started")
    wait_for(
        lambda: started("broken", "error") == 1 and started("broken", "ok") >= 1, 8, what="an error, then on"
    )
    wait_for(lambda: started("stuck", "skipped") >= 1, 8, what="a firing skipped while the run is active")
    assert started("stuck", "ok") == 1  # the one run never finishes, so every later firing is skipped
    wait_for(lambda: started("month", "ok") >= 1, 8, what="a group run started")
    wait_for(
        lambda: (value(proc, "sigma_report_runs_total", report_id="rpt-daily", outcome="success") or 0) >= 1,
        10,
        what="a scheduled run counted under its identity",
    )
    assert (value(proc, "sigma_runs", source="schedule") or 0) >= 4
    assert value(proc, "sigma_report_info", report_id="rpt-daily", team="sre") == 1.0
    # The filter reached Sigma unchanged, and the run is held with source schedule.
    runs = requests.get(proc.url + "/api/v1/runs", timeout=5).json()["runs"]
    daily = [r for r in runs if r["report_id"] == "rpt-daily"]
    assert daily and all(r["source"] == "schedule" and r["submitted_at"] for r in daily)
    assert sim.state.started_filter(daily[0]["reference"]) == {
        "filterDef": [{"field": "BRANCH", "operator": "STR_EQUALS", "value": "LDN"}]
    }
    log = proc.output()
    assert "schedule could not start its run" in log and CLIENT_TOKEN not in log


# -- never twice: the claim, restarts and late firings, on a real store ------------------------------------
PERIOD = 60.0
T0 = 1_800_000_000.0  # a multiple of 60


def scheduler(sim: Simulator, store: StateStore, *, grace: float = 30.0) -> tuple[Scheduler, list[str]]:
    config = parse_config(
        json.loads(
            json.dumps(
                {
                    "sigma": {
                        "url": sim.url,
                        "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
                    },
                    "schedules": [
                        {
                            "name": "nightly",
                            "report_id": "rpt-daily",
                            "every_seconds": PERIOD,
                            "grace_seconds": grace,
                        }
                    ],
                }
            )
        ),
        "c.yml",
    )
    registry = Registry(store, StateWriter(store), max_runs=100)
    client = SigmaClient(config.sigma, ApiStats())
    started: list[str] = []

    def start(schedule: object) -> str:
        reference = client.start_run("report", "rpt-daily")
        started.append(reference)
        return reference

    return Scheduler(lambda: config, store, registry, start, lambda key: 0), started


def sqlite(tmp_path: Path) -> StateStore:
    return open_store(StateConfig(url=f"sqlite:///{tmp_path}/state.db", explicit=True))


def test_a_firing_claimed_before_a_restart_is_not_started_again(sim: Simulator, tmp_path: Path) -> None:
    first, started = scheduler(sim, sqlite(tmp_path))
    first.tick(T0 - 10)  # plans the next firing: T0
    first.tick(T0 + 0.5)
    assert len(started) == 1
    # A restart within the same period: the store says T0 was claimed; nothing to start until T0 + 60.
    second, started_again = scheduler(sim, sqlite(tmp_path))
    second.tick(T0 + 5)
    second.tick(T0 + 30)
    assert started_again == []
    second.tick(T0 + PERIOD + 0.1)
    assert len(started_again) == 1
    assert dict(second.counters())[("nightly", "ok")] == 1


def test_a_firing_missed_while_down_starts_late_once_within_grace_else_not(
    sim: Simulator, tmp_path: Path
) -> None:
    store = sqlite(tmp_path)
    first, _ = scheduler(sim, store)
    first.tick(T0 - 10)
    first.tick(T0 + 0.5)  # T0 claimed and started
    # Down across T0 + 60; back 20 s later, within the 30 s grace: started late, once.
    late, started = scheduler(sim, sqlite(tmp_path))
    late.tick(T0 + PERIOD + 20)
    late.tick(T0 + PERIOD + 21)
    assert len(started) == 1
    # Down across T0 + 120 and back past its grace: not started (the expectation counts it missed).
    past, started_past = scheduler(sim, sqlite(tmp_path))
    past.tick(T0 + 2 * PERIOD + 45)
    past.tick(T0 + 2 * PERIOD + 50)
    assert started_past == []
    past.tick(T0 + 3 * PERIOD + 0.1)
    assert len(started_past) == 1


def test_two_replicas_on_one_store_start_a_firing_once(sim: Simulator, tmp_path: Path) -> None:
    a, started_a = scheduler(sim, sqlite(tmp_path))
    b, started_b = scheduler(sim, sqlite(tmp_path))
    for s in (a, b):
        s.tick(T0 - 10)
    a.tick(T0 + 0.2)
    b.tick(T0 + 0.3)
    assert len(started_a) + len(started_b) == 1
