"""`sigma-exporter run-report` as a scheduler's job runs it: a real CLI process against the simulator (and a
real exporter for --register). The reference alone on stdout's first line; the filter passed through;
registration with submitted_at; --wait exit codes 0 (success, no data), 1 (failure), 2 (timeout), 3 (Sigma
refused, or its reply never came), 4 (not registered) and 64 (usage); no secret in any output."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.process import EXPORTER, ExporterProcess
from tests.support.runs import SCENARIO, TOKEN, config
from tests.support.scenarios import CLIENT_TOKEN, scenario_from

FAULTS = """
faults:
  generate_faults:
    - {report_id: rpt-refused, fault: failure, error_code: SIG-RUN-DISABLED, error_msg: report disabled}
    - {report_id: rpt-down, fault: http_500}
    - {report_id: rpt-hangs, fault: timeout, seconds: 5}
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO + FAULTS)) as simulator:
        yield simulator


def run(tmp_path: Path, sim: Simulator, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sigma.yml"
    if not path.exists():
        path.write_text(config_text(sim.url, reports=["unused"], sigma__timeout_seconds=1))
    return subprocess.run(
        [*EXPORTER, "run-report", "--config.file", str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def reference_of(done: subprocess.CompletedProcess[str]) -> str:
    first = done.stdout.splitlines()[0]
    assert first == first.strip() and first.startswith("sim") and " " not in first
    return first


@pytest.mark.parametrize(
    ("ident", "code", "outcome"),
    [
        ("rpt-daily", 0, "success (PUBLISHED)"),
        ("rpt-empty", 0, "no_data (NO_DATA_AVAILABLE)"),
        ("rpt-broken", 1, "failure (FAILED)"),
    ],
)
def test_wait_exits_by_outcome(sim: Simulator, tmp_path: Path, ident: str, code: int, outcome: str) -> None:
    done = run(
        tmp_path, sim, "--report-id", ident, "--wait", "--wait.interval", "200ms", "--wait.timeout", "30s"
    )
    assert done.returncode == code, done.stderr
    reference = reference_of(done)
    assert done.stdout == reference + "\n"  # nothing else on stdout
    assert f"{reference}: {outcome}" in done.stderr
    assert CLIENT_TOKEN not in done.stdout + done.stderr


def test_a_group_run_and_its_members(sim: Simulator, tmp_path: Path) -> None:
    done = run(tmp_path, sim, "--report-group-id", "grp-month", "--wait", "--wait.interval", "200ms")
    assert done.returncode == 1, done.stderr  # m-pnl fails
    assert "failure (PUBLISHED, FAILED)" in done.stderr or "failure (FAILED, PUBLISHED)" in done.stderr


def test_wait_times_out_with_exit_2(sim: Simulator, tmp_path: Path) -> None:
    started = time.monotonic()
    done = run(
        tmp_path,
        sim,
        "--report-id",
        "rpt-slow",
        "--wait",
        "--wait.timeout",
        "1500ms",
        "--wait.interval",
        "200ms",
    )
    assert done.returncode == 2, done.stderr
    assert "no final status within 1.5s" in done.stderr
    assert time.monotonic() - started < 20
    reference_of(done)  # the reference was printed all the same


@pytest.mark.parametrize(
    ("ident", "said"),
    [
        ("rpt-refused", "SIG-RUN-DISABLED"),
        ("rpt-down", "500"),
        ("rpt-hangs", "Sigma did not start the report rpt-hangs"),
    ],
)
def test_sigma_refusing_to_start_exits_3_and_prints_no_reference(
    sim: Simulator, tmp_path: Path, ident: str, said: str
) -> None:
    done = run(tmp_path, sim, "--report-id", ident, "--wait")
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert said in done.stderr and CLIENT_TOKEN not in done.stderr


def test_the_filter_reaches_sigma_unchanged(sim: Simulator, tmp_path: Path) -> None:
    report_filter = {
        "preHookParams": {"asOf": "2026-12-01"},
        "filterDef": [{"field": "BRANCH", "operator": "STR_IN", "value": ["LDN", "NYC"]}],
    }
    path = tmp_path / "filter.json"
    path.write_text(json.dumps(report_filter))
    done = run(tmp_path, sim, "--report-id", "rpt-daily", "--filter-file", str(path))
    assert done.returncode == 0, done.stderr
    assert sim.state.started_filter(reference_of(done)) == report_filter


def test_register_with_an_exporter_passes_submitted_at(
    sim: Simulator, tmp_path: Path, exporter_process: Callable[..., ExporterProcess]
) -> None:
    proc = exporter_process(config(sim, tmp_path))
    proc.wait_ready()
    token_file = tmp_path / "token"  # written by config()
    before = time.time()
    done = run(
        tmp_path, sim, "--report-id", "rpt-daily", "--register", proc.url, "--api.token-file", str(token_file)
    )
    assert done.returncode == 0, done.stderr
    reference = reference_of(done)
    held = requests.get(f"{proc.url}/api/v1/runs/{reference}", timeout=5).json()
    assert held["source"] == "api" and held["kind"] == "report" and held["report_id"] == "rpt-daily"
    assert before - 1 <= held["submitted_at"] <= held["registered_at"]
    assert TOKEN not in done.stdout + done.stderr
    # A wrong token: the run started (reference printed), registration refused: exit 4.
    token_file.write_text("wrong-token-" + "x" * 20)
    done = run(
        tmp_path, sim, "--report-id", "rpt-daily", "--register", proc.url, "--api.token-file", str(token_file)
    )
    assert done.returncode == 4, done.stderr
    reference_of(done)
    assert "started but was not registered" in done.stderr and "401" in done.stderr
    assert "wrong-token" not in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((), "exactly one of --report-id or --report-group-id"),
        (("--report-id", "a", "--report-group-id", "b"), "exactly one of"),
        (("--report-id", "a", "--wait.timeout", "soon"), "Go durations"),
        (("--report-id", "a", "--bogus"), "No such option"),
        (("--report-id", "a", "--filter-file", "/nonexistent/f.json"), "cannot read the filter file"),
        (("--report-id", "a", "--api.token-file", "/x"), "--api.token-file goes with --register"),
    ],
)
def test_usage_errors_exit_64(sim: Simulator, tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    done = run(tmp_path, sim, *args)
    assert done.returncode == 64, (done.returncode, done.stderr)
    assert said in done.stderr and done.stdout == ""


def test_a_bad_filter_file_or_config_is_a_usage_error(sim: Simulator, tmp_path: Path) -> None:
    bad = tmp_path / "filter.json"
    bad.write_text("[1, 2]")
    done = run(tmp_path, sim, "--report-id", "a", "--filter-file", str(bad))
    assert done.returncode == 64 and "should hold a JSON object" in done.stderr
    (tmp_path / "sigma.yml").write_text("sigma: {url: 3}\n")
    done = run(tmp_path, sim, "--report-id", "a")
    assert done.returncode == 64 and "sigma.yml: sigma.url" in done.stderr
