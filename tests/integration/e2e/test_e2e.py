"""End to end with the real binaries: simulator -> exporter -> Prometheus (loading prometheus/alerts.yml)
-> Alertmanager -> a webhook receiver in this test. All on 127.0.0.1, short intervals.

The rules are loaded from prometheus/alerts.yml with one change: every `for:` is cut to a few seconds so
the test does not wait the production durations (minutes); expressions, labels and annotations are as shipped.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sigma_exporter.simulator import Simulator
from tests.support.binaries import require_binary
from tests.support.configs import config_text
from tests.support.dashboard_queries import COUNTING_STATS, dashboard_queries
from tests.support.net import free_port, wait_for
from tests.support.paths import OUT_DIR, ROOT
from tests.support.process import ExporterProcess
from tests.support.scenarios import scenario_from

pytestmark = pytest.mark.e2e

SCENARIO = """
credentials:
  apikey: [{client_id: 8HIG1002H6, client_token: sample72695bf9-3932-4f60-88b5-2f-2hjd}]
reports:
  - {reference: e2e-daily, report_id: rpt-daily, report_name: DailyBalances, timeline: [GENERATED]}
  - {reference: e2e-ok, report_id: rpt-ok, report_name: LoanBook, timeline: [NOTIFIED]}
  - {reference: e2e-pending, report_id: rpt-pending, report_name: Later, timeline: [PENDING]}
groups:
  - reference: e2e-group
    report_group_id: MonthEnd
    reports:
      - {report_id: m1, report_name: Ledger, timeline: [PUBLISHED]}
      - {report_id: m2, report_name: PnL, timeline: [FAILED]}
definitions:
  reports:
    rpt-canary: {report_name: Canary, timeline: [{status: GENERATED, seconds: 1}, {status: PUBLISHED}]}
"""
FOR_SECONDS = "3s"
JOB = "sigma-exporter"


class Receiver:
    """Alertmanager's webhook target: keeps every notification."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.notifications.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                alert
                for note in self.notifications
                for alert in note["alerts"]
                if alert["labels"].get("alertname") == name and alert["status"] == status
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    sim: Simulator
    exporter: ExporterProcess
    receiver: Receiver
    prometheus_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def query(self, expr: str) -> list[dict[str, Any]]:
        reply = requests.get(self.prometheus_url + "/api/v1/query", params={"query": expr}, timeout=10)
        document = reply.json()
        assert document["status"] == "success", (expr, document)
        result: list[dict[str, Any]] = document["data"]["result"]
        return result


def shortened_rules(target: Path) -> None:
    document = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and rule.get("for") not in (None, "0m", "0s"):
                rule["for"] = FOR_SECONDS
    target.write_text(yaml.safe_dump(document, sort_keys=False))


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("prometheus-alertmanager", "alertmanager")
    workdir = Path(tempfile.mkdtemp(prefix="sigma-e2e-"))
    sim = Simulator(scenario_from(SCENARIO)).start()
    receiver = Receiver()
    processes: list[subprocess.Popen[bytes]] = []
    exporter_config = workdir / "exporter.yml"
    exporter_config.write_text(
        config_text(
            sim.url,
            # e2e-missing is unknown to Sigma (a typo): every check of it is a counted bad_request error.
            reports=[
                {"reference": "e2e-daily", "labels": {"team": "finance"}},
                "e2e-ok",
                "e2e-pending",
                "e2e-missing",
            ],
            groups=[{"reference": "e2e-group", "labels": {"team": "finance"}}],
            poll={"interval_seconds": 1, "concurrency": 4, "final_recheck_seconds": 0},
            sigma__timeout_seconds=0.5,
            # Nobody ever starts rpt-e2e-never: its first expected run is missed 1 s after it was due.
            # The exporter starts rpt-canary every 3 s: identity metrics, durations and a met expectation.
            schedules=[
                {
                    "name": "e2e-canary",
                    "report_id": "rpt-canary",
                    "every_seconds": 3,
                    "labels": {"team": "sre"},
                }
            ],
            expectations=[
                {
                    "report_id": "rpt-e2e-never",
                    "every_seconds": 3,
                    "grace_seconds": 1,
                    "labels": {"team": "ops"},
                }
            ],
        )
    )
    exporter = ExporterProcess(exporter_config)
    try:
        exporter.wait_ready()
        am_port = free_port()
        (workdir / "am.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "hook",
                        "group_by": ["alertname", "reference"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {"name": "hook", "webhook_configs": [{"url": receiver.url, "send_resolved": True}]}
                    ],
                }
            )
        )
        processes.append(
            start(
                [
                    alertmanager,
                    f"--config.file={workdir / 'am.yml'}",
                    f"--storage.path={workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                workdir / "alertmanager.log",
            )
        )
        shortened_rules(workdir / "alerts.yml")
        prom_port = free_port()
        (workdir / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(workdir / "alerts.yml")],
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                    },
                    "scrape_configs": [
                        {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}
                    ],
                }
            )
        )
        processes.append(
            start(
                [
                    prometheus,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=1s",
                ],
                workdir / "prometheus.log",
            )
        )
        stack = Stack(sim, exporter, receiver, f"http://127.0.0.1:{prom_port}", processes)
        wait_for(
            lambda: requests.get(stack.prometheus_url + "/-/ready", timeout=1).ok, 30, what="prometheus ready"
        )
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{am_port}/-/ready", timeout=1).ok, 30, what="alertmanager"
        )
        yield stack
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        exporter.stop()
        receiver.stop()
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_target_is_up(stack: Stack) -> None:
    def up() -> list[dict[str, Any]]:
        return [r for r in stack.query(f'up{{job="{JOB}"}}') if r["value"][1] == "1"]

    wait_for(up, 30, what="target up")
    assert stack.query("sigma_up")[0]["value"][1] == "1"


def test_failed_report_reaches_the_receiver_with_its_labels(stack: Stack) -> None:
    assert not stack.receiver.alerts("SigmaReportFailed", "firing") or all(
        a["labels"]["reference"] != "e2e-daily" for a in stack.receiver.alerts("SigmaReportFailed", "firing")
    )
    stack.sim.set_status("e2e-daily", "FAILED")

    def fired() -> list[dict[str, Any]]:
        return [
            a
            for a in stack.receiver.alerts("SigmaReportFailed", "firing")
            if a["labels"]["reference"] == "e2e-daily"
        ]

    alert = wait_for(fired, 60, interval=0.2, what="SigmaReportFailed at the receiver")[0]
    assert alert["labels"]["report_name"] == "DailyBalances"
    assert alert["labels"]["report_id"] == "rpt-daily"
    assert alert["labels"]["team"] == "finance"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#sigmareportfailed")
    group = wait_for(
        lambda: stack.receiver.alerts("SigmaGroupReportFailures", "firing"), 30, what="group failures"
    )
    assert group[0]["labels"]["report_group_id"] == "MonthEnd" and group[0]["labels"]["team"] == "finance"


def test_missed_run_reaches_the_receiver_with_the_expectations_team(stack: Stack) -> None:
    def fired() -> list[dict[str, Any]]:
        return [
            a
            for a in stack.receiver.alerts("SigmaReportMissedRun", "firing")
            if a["labels"].get("report_id") == "rpt-e2e-never"
        ]

    alert = wait_for(fired, 60, interval=0.2, what="SigmaReportMissedRun at the receiver")[0]
    assert alert["labels"]["team"] == "ops"
    assert alert["labels"]["severity"] == "critical"
    assert "report_group_id" not in alert["labels"]
    assert alert["annotations"]["description"].startswith("Report rpt-e2e-never was expected to run")
    assert alert["annotations"]["runbook_url"].endswith("#sigmareportmissedrun")
    # Only the identity without runs is missed: the references' identities have no expectation.
    assert {
        a["labels"].get("report_id") for a in stack.receiver.alerts("SigmaReportMissedRun", "firing")
    } == {"rpt-e2e-never"}


def test_dashboard_queries_are_valid_and_return_data(stack: Stack) -> None:
    # Rates need two scrapes inside their window; give Prometheus some history first.
    wait_for(lambda: stack.query("sum(rate(sigma_api_requests_total[1m])) > 0"), 30, what="rates have data")
    wait_for(
        lambda: stack.query("sum(increase(sigma_report_run_duration_seconds_count[1m])) > 0"),
        60,
        what="canary runs in the duration histogram",
    )
    instance = f"127\\.0\\.0\\.1:{stack.exporter.port}"
    queries = list(dashboard_queries(job=JOB, instance=instance, reference="e2e-group"))
    assert len(queries) >= 15
    empty = []
    for query in queries:
        if not stack.query(query.expr):
            empty.append(f"{query.uid} / {query.panel}: {query.expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_report_alerts_link_to_the_identity_page_and_the_page_answers(stack: Stack) -> None:
    """The annotation report_url arrives at the webhook for an identity alert (missed run), a per-reference
    alert (a failed report) and a group alert (the group as a whole); not as a label. The exporter's default
    --web.external-url is its listen address here, so each link is the exporter's own /report page."""
    stack.sim.set_status("e2e-daily", "FAILED")

    def firing(name: str, **labels: str) -> list[dict[str, Any]]:
        return [
            a
            for a in stack.receiver.alerts(name, "firing")
            if all(a["labels"].get(k, "") == v for k, v in labels.items())
        ]

    page = f"{stack.exporter.url}/report"
    expected = {
        ("SigmaReportMissedRun", "", "rpt-e2e-never"): f"{page}?report_group_id=&report_id=rpt-e2e-never",
        ("SigmaReportFailed", "", "rpt-daily"): f"{page}?report_group_id=&report_id=rpt-daily",
        ("SigmaReportFailed", "MonthEnd", "m2"): f"{page}?report_group_id=MonthEnd&report_id=m2",
        ("SigmaGroupReportFailures", "MonthEnd", ""): f"{page}?report_group_id=MonthEnd&report_id=",
    }
    received: dict[tuple[str, str, str], dict[str, str]] = {}  # kept in out/ for a reader to see
    for (name, group, report), url in expected.items():
        alert = wait_for(
            functools.partial(firing, name, report_group_id=group, report_id=report),
            60,
            interval=0.2,
            what=f"{name} {group}/{report} at the receiver",
        )[0]
        assert "report_url" not in alert["labels"], alert["labels"]
        assert alert["annotations"]["report_url"] == url, alert["annotations"]
        received[(name, group, report)] = alert["annotations"]
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "e2e-report-url-annotations.json").write_text(
        json.dumps({f"{n} {g}/{r}": value for (n, g, r), value in received.items()}, indent=2)
    )
    # Last, so that everything above is proven whatever the page does: each link answers.
    for url in expected.values():
        assert requests.get(url, timeout=5).status_code == 200, url


def test_reports_dashboard_counts_show_zero_and_its_table_has_the_links(stack: Stack) -> None:
    """Against Prometheus: with no identity selected the four counting stats answer 0 (not "No data"),
    with all of them the missed one counts rpt-e2e-never; the table's rows carry report_url."""
    instance = f"127\\.0\\.0\\.1:{stack.exporter.port}"
    wait_for(lambda: stack.query("sigma_report_run_missed == 1"), 60, what="a missed run")

    def values(report_id: str) -> dict[str, list[str]]:
        got: dict[str, list[str]] = {}
        for query in dashboard_queries(job=JOB, instance=instance, report_id=report_id):
            if query.uid == "sigma-reports" and query.panel in COUNTING_STATS:
                got[query.panel] = [r["value"][1] for r in stack.query(query.expr)]
        return got

    assert values("no-such-report") == {panel: ["0"] for panel in COUNTING_STATS}
    assert values(".*")["Missed now"] == ["1"]
    table = next(
        q
        for q in dashboard_queries(job=JOB, instance=instance)
        if q.uid == "sigma-reports" and q.panel == "Report identities"
    )
    urls = {r["metric"].get("report_id", ""): r["metric"].get("report_url") for r in stack.query(table.expr)}
    assert urls["rpt-e2e-never"] == f"{stack.exporter.url}/report?report_group_id=&report_id=rpt-e2e-never"


def test_api_unreachable_fires_and_resolves(stack: Stack) -> None:
    stack.sim.stop_listening()
    try:
        wait_for(
            lambda: stack.receiver.alerts("SigmaApiDown", "firing"),
            60,
            interval=0.2,
            what="SigmaApiDown fires",
        )
        assert stack.query("sigma_up")[0]["value"][1] == "0"
    finally:
        stack.sim.start_listening()
    resolved = wait_for(
        lambda: stack.receiver.alerts("SigmaApiDown", "resolved"), 60, interval=0.2, what="resolved"
    )
    assert resolved[0]["labels"]["severity"] == "critical"
