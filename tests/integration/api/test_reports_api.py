"""A report's history through a real `sigma-exporter serve` (SQLite state) against the simulator: the failed
run with Sigma's errorCode and errorMsg (escaped, the client token redacted) in /api/v1/reports/history and
on /report, the identities in /api/v1/reports, 400 and 404 for what names no identity, and the history kept
past the run's retention and across a restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.scenarios import CLIENT_TOKEN, scenario_from

TOKEN = "api-token-reports-0123456789abcdef"
MESSAGE = f"<script>alert(1)</script> query failed\\nfor client {CLIENT_TOKEN}"
SCENARIO = f"""
credentials:
  apikey: [{{client_id: 8HIG1002H6, client_token: {CLIENT_TOKEN}}}]
reports:
  - reference: ref-fail
    report_id: rpt-daily
    report_name: DailyBalances
    timeline: [FAILED]
    error_code: SIG-RPT-500
    error_msg: "{MESSAGE}"
  - {{reference: ref-ok, report_id: rpt-daily, report_name: DailyBalances, timeline: [PUBLISHED]}}
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def history(proc: ExporterProcess, **ids: str) -> requests.Response:
    return requests.get(proc.url + "/api/v1/reports/history", params=ids, timeout=10)


def register(proc: ExporterProcess, reference: str, submitted_at: float) -> None:
    body = {"reference": reference, "kind": "report", "report_id": "rpt-daily", "submitted_at": submitted_at}
    answer = requests.post(
        proc.url + "/api/v1/runs", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def test_a_failed_run_is_in_the_history_and_on_the_page_past_retention_and_a_restart(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN)
    config = config_text(
        sim.url,
        api={"token_file": str(token_file)},
        poll={"interval_seconds": 2, "final_recheck_seconds": 0},
        retention={"final_seconds": 1},
    )
    proc = exporter_process(config)
    proc.wait_ready()
    submitted = time.time() - 300
    register(proc, "ref-ok", submitted)
    register(proc, "ref-fail", submitted + 60)

    def both() -> list[dict[str, Any]] | None:
        runs: list[dict[str, Any]] = history(proc, report_id="rpt-daily").json().get("runs", [])
        return runs if len(runs) == 2 else None

    runs = wait_for(both, timeout=15, what="both runs in the history")
    failed, ok = runs  # newest first
    assert failed["reference"] == "ref-fail" and ok["reference"] == "ref-ok"
    assert failed["outcome"] == "failure" and ok["outcome"] == "success"
    assert (failed["kind"], failed["source"], failed["started_at"]) == ("report", "api", submitted + 60)
    assert failed["final_at"] > failed["started_at"] and failed["duration_seconds"] > 0
    assert failed["error_code"] == "SIG-RPT-500"
    assert failed["error_message"] == "<script>alert(1)</script> query failed\\nfor client <secret>"
    assert ok["error_code"] == "" and ok["error_message"] == ""

    reports = requests.get(proc.url + "/api/v1/reports", timeout=10).json()["reports"]
    (daily,) = reports
    assert (daily["report_id"], daily["report_name"], daily["kind"]) == (
        "rpt-daily",
        "DailyBalances",
        "report",
    )
    assert daily["last_success"] is not None and daily["last_failure"] is not None
    assert daily["page"] == "/report?report_group_id=&report_id=rpt-daily"

    page = requests.get(
        proc.url + "/report", params={"report_group_id": "", "report_id": "rpt-daily"}, timeout=10
    )
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "ref-fail" in page.text and "SIG-RPT-500" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script" not in page.text
    assert CLIENT_TOKEN not in page.text and CLIENT_TOKEN not in history(proc, report_id="rpt-daily").text
    assert 'href="report?report_group_id=&amp;report_id=rpt-daily"' in requests.get(proc.url, timeout=10).text

    # Retention lets the runs go (final_seconds: 1); their history stays, and a restart keeps it.
    wait_for(
        lambda: requests.get(proc.url + "/api/v1/runs/ref-fail", timeout=5).status_code == 404,
        timeout=15,
        what="ref-fail retired",
    )
    proc.stop()
    again = exporter_process(config)
    again.wait_ready()
    assert history(again, report_id="rpt-daily").json()["runs"] == runs


def test_an_unknown_identity_or_none_is_404_and_an_id_too_long_400(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN)
    proc = exporter_process(config_text(sim.url, api={"token_file": str(token_file)}))
    proc.wait_ready()
    for params in ({}, {"report_group_id": "", "report_id": " "}):
        answer = history(proc, **params)
        assert (
            answer.status_code == 404
            and "give report_group_id=G and/or report_id=R" in answer.json()["error"]
        )
        assert requests.get(proc.url + "/report", params=params, timeout=10).status_code == 404
    too_long = history(proc, report_id="r" * 257)
    assert too_long.status_code == 400 and "at most 256" in too_long.json()["error"]
    unknown = history(proc, report_id="rpt-nobody")
    assert unknown.status_code == 404 and unknown.json() == {"error": "no such report identity"}
    page = requests.get(proc.url + "/report", params={"report_id": "<b>rpt-nobody</b>"}, timeout=10)
    assert page.status_code == 404 and "&lt;b&gt;rpt-nobody&lt;/b&gt;" in page.text
    assert requests.get(proc.url + "/api/v1/reports", timeout=10).json() == {"reports": []}


def test_a_store_that_cannot_be_read_is_a_counted_503_and_the_pages_come_back_with_it(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, postgres_cluster: Any
) -> None:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN)
    proc = exporter_process(
        config_text(
            sim.url, api={"token_file": str(token_file)}, state=postgres_cluster.state_config(tmp_path)
        )
    )
    proc.wait_ready()
    register(proc, "ref-ok", time.time() - 60)
    wait_for(lambda: history(proc, report_id="rpt-daily").status_code == 200, timeout=15, what="the identity")
    postgres_cluster.stop()
    try:
        for answer in (
            requests.get(proc.url + "/api/v1/reports", timeout=10),
            history(proc, report_id="rpt-daily"),
            requests.get(proc.url + "/report", params={"report_id": "rpt-daily"}, timeout=10),
        ):
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "5", answer.text
            assert "state store cannot be read" in answer.text
        wait_for(  # the server's counters are rendered at most once a second
            lambda: (
                list(
                    select(
                        proc.metrics(), "sigma_web_requests_rejected_total", reason="store_unreadable"
                    ).values()
                )
                == [3.0]
            ),
            timeout=5,
            what="three reads counted as store_unreadable",
        )
        assert "report history not read: the state store failed" in proc.output()
    finally:
        postgres_cluster.start()
    wait_for(lambda: history(proc, report_id="rpt-daily").status_code == 200, timeout=20, what="reads again")
