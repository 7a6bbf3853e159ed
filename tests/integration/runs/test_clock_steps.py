"""The wall clock of a real `sigma-exporter serve` steps an hour forward and then back, while runs are active
and expectations are judged (through the testing hook of runs/clock.py: libfaketime 0.9.10 of Debian 12
breaks `time.sleep` and waits on Python 3.11). Durations stay what Sigma took, measured on the monotonic
clock; the expected times the forward step jumped over count as at most one missed run, with a log line
saying the clock stepped; after the backward step no expected time is judged twice; no run turns overdue by
the step."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sigma_exporter.runs.clock import CLOCK_OFFSET_ENV
from sigma_exporter.simulator import Simulator
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import SCENARIO, config, register, start_run, value
from tests.support.scenarios import scenario_from

PERIOD = 3.0
GRACE = 1.0
HOUR = 3600.0
NEVER = {"report_id": "rpt-never"}
DAILY = {"report_id": "rpt-daily"}  # GENERATED for 2 s, then PUBLISHED
SLOW = {"report_id": "rpt-slow"}  # GENERATED for ever


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def metric(proc: ExporterProcess, name: str, labels: dict[str, str]) -> float:
    found = value(proc, name, **labels)
    return -1.0 if found is None else found


def steps_logged(proc: ExporterProcess) -> list[str]:
    return re.findall(
        r'direction="?(\w+)',
        "\n".join(line for line in proc.output().splitlines() if "wall clock stepped" in line),
    )


def start_daily(sim: Simulator, proc: ExporterProcess, active: float) -> None:
    """A run of rpt-daily registered and held (active) by the exporter."""
    reference = start_run(sim, "RUN_REPORT", "rpt-daily")
    body = {"reference": reference, "kind": "report", "report_id": "rpt-daily"}
    assert register(proc, body).status_code == 201
    wait_for(
        lambda: metric(proc, "sigma_report_runs_active", DAILY) == active,
        5,
        what="the rpt-daily run held and active",
    )


def test_an_hour_forward_and_back(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0\n")
    body = config(
        sim,
        tmp_path,
        expectations=[
            {**NEVER, "every_seconds": PERIOD, "grace_seconds": GRACE},
            {**SLOW, "every_seconds": HOUR, "grace_seconds": HOUR, "max_duration_seconds": 30},
        ],
    )
    proc = exporter_process(body, env={CLOCK_OFFSET_ENV: str(offset)})
    proc.wait_ready()
    assert "testing hook on" in proc.output()
    missed = "sigma_report_missed_runs_total"
    expected_at = "sigma_report_expected_run_timestamp_seconds"
    wait_for(lambda: metric(proc, missed, NEVER) >= 1, 4 * PERIOD, what="an expected run missed, as usual")
    slow = start_run(sim, "RUN_REPORT", "rpt-slow")
    assert register(proc, {"reference": slow, "kind": "report", **SLOW}).status_code == 201
    start_daily(sim, proc, active=1)

    # An hour forward, while the rpt-daily run is active.
    before = metric(proc, missed, NEVER)
    stepped_at, wall_then = time.monotonic(), time.time()
    offset.write_text(f"{HOUR}\n")
    wait_for(lambda: steps_logged(proc) == ["forward"], 5, what="the forward step logged")
    wait_for(
        lambda: metric(proc, expected_at, NEVER) >= wall_then + HOUR - PERIOD,
        5,
        what="the expectation judged after the step",
    )
    after = metric(proc, missed, NEVER)
    lived = (time.monotonic() - stepped_at) / PERIOD  # expected times real time brought meanwhile
    assert after - before <= 1 + lived + 1, f"{after - before:.0f} missed for a step over {HOUR / PERIOD:.0f}"
    assert metric(proc, "sigma_report_run_overdue", SLOW) == 0.0  # active seconds, not an hour
    wait_for(
        lambda: metric(proc, "sigma_report_run_duration_seconds_count", DAILY) == 1,
        10,
        what="the run across the forward step ended",
    )
    across_forward = metric(proc, "sigma_report_last_run_duration_seconds", DAILY)
    assert 1.5 <= across_forward <= 10, across_forward

    # And back, while another run is active: nothing judged again, the duration not negative (nor 0).
    start_daily(sim, proc, active=1)
    offset.write_text("0\n")
    wait_for(lambda: steps_logged(proc) == ["forward", "backward"], 5, what="the backward step logged")
    wait_for(
        lambda: 0 < metric(proc, expected_at, NEVER) <= time.time(),
        5,
        what="the expectation judged after the step back",
    )
    back = metric(proc, missed, NEVER)
    judged = metric(proc, expected_at, NEVER)
    wait_for(
        lambda: metric(proc, "sigma_report_run_duration_seconds_count", DAILY) == 2,
        10,
        what="the run across the backward step ended",
    )
    across_back = metric(proc, "sigma_report_last_run_duration_seconds", DAILY)
    assert 1.5 <= across_back <= 10, across_back
    assert 3 <= metric(proc, "sigma_report_run_duration_seconds_sum", DAILY) <= 20
    # Two more expected times pass (by the wall clock, again): the hour's were judged already.
    wait_for(
        lambda: metric(proc, expected_at, NEVER) >= judged + 2 * PERIOD,
        4 * PERIOD,
        what="two more expected times passed",
    )
    assert metric(proc, missed, NEVER) == back
    assert metric(proc, "sigma_report_run_overdue", SLOW) == 0.0
    misses_logged = [line for line in proc.output().splitlines() if "expected run missed" in line]
    assert len(misses_logged) <= after + 2, "one log line per missed run, not one per period jumped over"
    assert proc.stop() == 0
