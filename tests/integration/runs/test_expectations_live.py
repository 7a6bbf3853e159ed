"""Expectations on a real exporter and the simulator: a run registered in time meets its expected time, one
never started is counted missed once (also across a restart, from the state store), a run active too long
is overdue, and every expectation metric is exported with the contract's names."""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import wait_for
from tests.support.process import EXPORTER, ExporterProcess
from tests.support.runs import SCENARIO, config, register, start_run, value
from tests.support.scenarios import scenario_from

PERIOD = 6.0
GRACE = 1.5


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def expectations() -> list[dict[str, object]]:
    return [
        {
            "report_id": "rpt-daily",
            "every_seconds": PERIOD,
            "grace_seconds": GRACE,
            "labels": {"team": "treasury"},
        },
        {"report_id": "rpt-never", "every_seconds": PERIOD, "grace_seconds": GRACE},
        {
            "report_id": "rpt-slow",
            "every_seconds": 3600,
            "grace_seconds": 3600,
            "max_duration_seconds": 1.0,
        },
    ]


def wait_until_wall(moment: float) -> None:
    """Sleep until the wall clock passes `moment` (the expected times are wall-clock times)."""
    while time.time() < moment:
        time.sleep(min(0.05, max(0.0, moment - time.time())))


def test_met_missed_once_across_a_restart_and_overdue(
    sim: Simulator,
    exporter_process: Callable[..., ExporterProcess],
    tmp_path: Path,
) -> None:
    body = config(sim, tmp_path, expectations=expectations())
    # Start just after the window of an expected time opened, so that it is not judged (the exporter did
    # not watch all of it) and the next one is: that one is `first`.
    boundary = (math.floor(time.time() / PERIOD) + 1) * PERIOD
    wait_until_wall(boundary - GRACE + 0.1)
    first = boundary + PERIOD
    proc = exporter_process(body)
    proc.wait_ready()
    assert time.time() < first - GRACE, "the exporter should be ready before the window of `first` opens"
    wait_until_wall(first - 0.5)
    daily = start_run(sim, "RUN_REPORT", "rpt-daily")
    assert register(proc, {"reference": daily, "kind": "report", "report_id": "rpt-daily"}).status_code == 201
    slow = start_run(sim, "RUN_REPORT", "rpt-slow")
    assert register(proc, {"reference": slow, "kind": "report", "report_id": "rpt-slow"}).status_code == 201
    wait_until_wall(first + GRACE)
    wait_for(
        lambda: value(proc, "sigma_report_missed_runs_total", report_id="rpt-never") == 1.0,
        3,
        what="the run never started counted missed",
    )
    assert value(proc, "sigma_report_run_missed", report_id="rpt-never") == 1.0
    assert value(proc, "sigma_report_missed_runs_total", report_id="rpt-daily") == 0.0
    assert value(proc, "sigma_report_run_missed", report_id="rpt-daily") == 0.0
    assert value(proc, "sigma_report_expected_run_timestamp_seconds", report_id="rpt-daily") == first
    assert (
        value(proc, "sigma_report_next_expected_run_timestamp_seconds", report_id="rpt-daily")
        == first + PERIOD
    )
    assert value(proc, "sigma_report_info", report_id="rpt-daily", team="treasury") == 1.0
    wait_for(
        lambda: value(proc, "sigma_report_run_overdue", report_id="rpt-slow") == 1.0,
        3,
        what="the never-finishing run overdue",
    )
    assert "expected run missed" in proc.output()

    # A restart before the next judgement: the miss is neither lost nor counted again.
    assert proc.stop() == 0
    assert time.time() < first + PERIOD + GRACE - 1.0, "the restart should fall between two judgements"
    again = exporter_process(body)
    again.wait_ready()
    assert value(again, "sigma_report_missed_runs_total", report_id="rpt-never") == 1.0
    assert value(again, "sigma_report_missed_runs_total", report_id="rpt-daily") == 0.0
    # The next expected time passes with no run for either: each counted once more.
    wait_until_wall(first + PERIOD + GRACE)
    wait_for(
        lambda: value(again, "sigma_report_missed_runs_total", report_id="rpt-daily") == 1.0,
        3,
        what="the next expected run of rpt-daily missed",
    )
    assert value(again, "sigma_report_missed_runs_total", report_id="rpt-never") == 2.0
    assert value(again, "sigma_report_run_overdue", report_id="rpt-slow") == 1.0  # still active, restored


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            {"report_id": "r", "cron": "61 * * * *"},
            "expectations[0].cron: '61 * * * *' is not a cron expression: Bad minute",
        ),
        (
            {"report_id": "r", "cron": "0 6 * * *", "timezone": "Mars/Olympus"},
            "expectations[0].timezone: unknown time zone",
        ),
        ({"report_id": "r"}, "expectations[0]: needs exactly one of cron or every_seconds"),
        (
            {"report_id": "r", "cron": "0 6 * * *", "every_seconds": 60},
            "expectations[0]: needs exactly one of cron",
        ),
        ({"every_seconds": 60}, "expectations[0]: needs exactly one of report_id or report_group_id"),
        (
            {"report_id": "r", "every_seconds": 0},
            "expectations[0].every_seconds: should be at least 0.001, got 0",
        ),
        (
            {"report_id": "r", "every_seconds": 60, "timezone": "UTC"},
            "expectations[0].timezone: applies to cron only",
        ),
        (
            {"report_id": "r", "every_seconds": 60, "labels": {"report_id": "x"}},
            "expectations[0].labels.report_id: is reserved",
        ),
        ({"report_id": "r", "every_seconds": 60, "grace": 5}, "expectations[0].grace: unknown key"),
    ],
)
def test_a_bad_expectation_fails_check_config_naming_file_and_key(
    tmp_path: Path, entry: dict[str, object], problem: str
) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        config_text("http://127.0.0.1:9/sigma/rest/reports", reports=["ref-1"], expectations=[entry])
    )
    done = subprocess.run(
        [*EXPORTER, "check-config", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert f"{path}: {problem}" in done.stderr


def test_check_config_counts_expectations_and_schedules(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        config_text(
            "http://127.0.0.1:9/sigma/rest/reports",
            reports=["ref-1"],
            expectations=[{"report_group_id": "grp-eod", "cron": "0 18 * * 1-5", "timezone": "Asia/Kolkata"}],
            schedules=[{"name": "canary", "report_id": "rpt-canary", "every_seconds": 300}],
        )
    )
    done = subprocess.run(
        [*EXPORTER, "check-config", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 expectations, 1 schedules" in done.stdout
