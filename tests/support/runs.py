"""The runs scenario: a simulator whose /generate starts report and group runs (definitions with timelines)
and an exporter config with the run registration API on (a bearer token). Shared by the tests of the runs'
life, schedules and run-report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import select
from tests.support.process import ExporterProcess
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN

TOKEN = "lifecycle-token-0123456789abcdef"
SCENARIO = f"""
credentials:
  apikey: [{{client_id: {CLIENT_ID}, client_token: {CLIENT_TOKEN}}}]
definitions:
  reports:
    rpt-daily: {{report_name: DailyBalances, timeline: [{{status: GENERATED, seconds: 2}}, {{status: PUBLISHED}}]}}
    rpt-broken: {{report_name: LoanBook, timeline: [{{status: GENERATED, seconds: 1}}, {{status: FAILED}}]}}
    rpt-empty: {{report_name: Dormant, timeline: [NO_DATA_AVAILABLE]}}
    rpt-slow: {{report_name: Slow, timeline: [GENERATED]}}
  groups:
    grp-month:
      reports:
        - {{report_id: m-ledger, report_name: Ledger, timeline: [{{status: GENERATED, seconds: 1}}, {{status: PUBLISHED}}]}}
        - {{report_id: m-pnl, report_name: PnL, timeline: [{{status: GENERATED, seconds: 2}}, {{status: FAILED}}]}}
"""


def start_run(sim: Simulator, action: str, ident: str) -> str:
    """What a scheduler's job does: a token, then RUN_REPORT / EXEC_REPORT_GROUP; the new reference."""
    token = (
        requests.post(
            sim.url + "/generate-token",
            json={
                "action": "GENERATE_TOKEN",
                "authType": "APIKEY",
                "clientId": CLIENT_ID,
                "clientToken": CLIENT_TOKEN,
            },
            timeout=5,
        )
        .json()["headerMap"]["accessToken"]
        .strip()
    )
    key = "reportId" if action == "RUN_REPORT" else "reportGroupId"
    reply = requests.post(
        sim.url + "/generate", json={"action": action, key: ident, "accessToken": token}, timeout=5
    )
    header = reply.json()["headerMap"]
    return str((header.get("referenceNumber") or header["reportGroupStatus"]["referenceNumber"]).strip())


def config(sim: Simulator, tmp_path: Path, **extra: Any) -> str:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    extra.setdefault("poll", {"interval_seconds": 1, "concurrency": 4, "final_recheck_seconds": 1})
    return config_text(sim.url, api={"token_file": str(token_file)}, sigma__timeout_seconds=1, **extra)


def register(proc: ExporterProcess, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        proc.url + "/api/v1/runs", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15
    )


def value(proc: ExporterProcess, name: str, **labels: str) -> float | None:
    found = select(proc.metrics(), name, **labels)
    return sum(found.values()) if found else None
