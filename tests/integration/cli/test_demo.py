"""`sigma-exporter demo` shows the new world within a minute: schedules start runs, one registration goes
through the API (its curl line printed), and the status page's Reports section shows a success, a failure,
a missed run and an overdue one."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.support.net import free_port
from tests.support.process import EXPORTER

WITHIN = 75.0  # the demo promises a minute; a loaded CI machine gets a little more


def reports_section(page: str) -> str:
    return page.split("<h2>Reports</h2>", 1)[1].split("<h2>Runs</h2>", 1)[0]


def test_demo_shows_success_failure_missed_and_overdue_within_a_minute(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*EXPORTER, "demo", "--web.listen-address", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WITHIN
        seen: set[str] = set()
        section = ""
        while time.monotonic() < deadline and len(seen) < 4:
            time.sleep(1)
            try:
                section = reports_section(requests.get(base + "/", timeout=5).text)
            except requests.RequestException:
                continue
            rows = re.findall(r"<tr[^>]*>.*?</tr>", section)
            if any(">Canary</a></td>" in r and "ago)" in r.split("</td>")[2] for r in rows):
                seen.add("success")
            if any(">IntradayRisk</a></td>" in r and "ago)" in r.split("</td>")[3] for r in rows):
                seen.add("failure")
            if any("rpt-month-close" in r and ">MISSED</span>" in r for r in rows):
                seen.add("missed")
            if any("LedgerRebuild" in r or "rpt-ledger-rebuild" in r for r in rows if ">OVERDUE</span>" in r):
                seen.add("overdue")
        output = log.read_text(errors="replace")
        assert seen == {"success", "failure", "missed", "overdue"}, (seen, section, output[-3000:])
        assert re.search(r"Registered one run through the API \(201\)", output), output[-3000:]
        assert f"curl -sS -X POST {base}/api/v1/runs" in output
        runs = requests.get(base + "/api/v1/runs", timeout=5).json()["runs"]
        assert any(r["report_id"] == "rpt-adhoc-extract" and r["source"] == "api" for r in runs)
        assert {r["source"] for r in runs} >= {"config", "api", "schedule"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
