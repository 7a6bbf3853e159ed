"""Grafana dashboards: generated JSON is current, structure (datasource, job/instance filters,
$__rate_interval, stable uids, layout), every query is valid PromQL, provisioning files."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.binaries import IN_CI, require_binary
from tests.support.dashboard_queries import (
    COUNTING_STATS,
    DASHBOARD_DIR,
    dashboard_files,
    dashboard_queries,
    load,
    panels,
    promql_string,
    substitute,
    variable_queries,
)
from tests.support.paths import ROOT

GENERATOR = ROOT / "grafana" / "generate.py"
PROVISIONING = ROOT / "grafana" / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED_UIDS = {
    "sigma-overview.json": "sigma-overview",
    "sigma-reference.json": "sigma-reference",
    "sigma-reports.json": "sigma-reports",
}
JOB_MATCHER = 'job="$job"'
INSTANCE_MATCHER = 'instance=~"$instance"'
REFERENCE_MATCHER = 'reference="$reference"'
IDENTITY_MATCHERS = ('report_group_id=~"$report_group_id"', 'report_id=~"$report_id"')
# A metric name in an expression (exporter metrics and Prometheus's `up`).
METRIC = re.compile(r"\b(sigma_[a-z_]+|up)\b(\{[^}]*\})?")
#: The families of a report identity, exported by its owner shard only; a run's series come from the shard
#: that polls it, usually another one (design.md, "One writer per report identity").
IDENTITY_FAMILIES = frozenset(
    {
        "sigma_report_info",
        "sigma_report_runs_total",
        "sigma_report_run_duration_seconds",
        "sigma_report_last_success_timestamp_seconds",
        "sigma_report_last_failure_timestamp_seconds",
        "sigma_report_last_run_duration_seconds",
        "sigma_report_missed_runs_total",
        "sigma_report_run_missed",
        "sigma_report_run_overdue",
        "sigma_report_runs_active",
        "sigma_report_oldest_active_run_start_timestamp_seconds",
        "sigma_report_expected_run_timestamp_seconds",
        "sigma_report_next_expected_run_timestamp_seconds",
    }
)


def _dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in dashboard_files()}


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in panels(dashboard) for target in panel.get("targets", [])]


def _require_sdk() -> None:
    """The generator needs grafana-foundation-sdk (test extra), which needs Python 3.11."""
    if tuple(sys.version_info[:2]) < (3, 11):  # not narrowed by mypy's python_version
        pytest.skip("grafana-foundation-sdk needs Python 3.11; the committed JSON is checked on 3.11+")
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        message = "grafana-foundation-sdk is not installed (pip install -e '.[test]')"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


# --- generated, current, stable --------------------------------------------------------------------------
def test_committed_dashboards_match_the_generator() -> None:
    _require_sdk()
    result = _run(sys.executable, str(GENERATOR), "--check")
    assert result.returncode == 0, result.stderr


def test_generator_check_detects_a_stale_file(tmp_path: Path) -> None:
    _require_sdk()
    for path in dashboard_files():
        shutil.copy(path, tmp_path / path.name)
    assert _run(sys.executable, str(GENERATOR), "--check", "--output-dir", str(tmp_path)).returncode == 0
    stale = tmp_path / "sigma-reference.json"
    stale.write_text(stale.read_text().replace("Status timeline", "Status timeline (edited by hand)"))
    result = _run(sys.executable, str(GENERATOR), "--check", "--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert "sigma-reference.json" in result.stderr
    assert "sigma-overview.json" not in result.stderr


def test_dashboards_have_stable_uids_and_current_schema() -> None:
    dashboards = _dashboards()
    assert {name: d["uid"] for name, d in dashboards.items()} == EXPECTED_UIDS
    for name, dashboard in dashboards.items():
        assert dashboard["schemaVersion"] >= 39, name
        assert dashboard["title"].startswith("Sigma / "), name
        assert "sigma-exporter" in dashboard["tags"], name
        assert dashboard["time"]["from"].startswith("now-"), name


# --- variables -------------------------------------------------------------------------------------------
def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_datasource_job_and_instance_variables(name: str) -> None:
    variables = _variables(_dashboards()[name])
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in ("job", "instance"):
        assert variables[var]["type"] == "query"
        assert variables[var]["datasource"] == DATASOURCE
        assert variables[var]["query"]["query"].startswith("label_values(")
        assert variables[var]["query"]["query"].endswith(f", {var})")
    assert variables["instance"]["multi"] and variables["instance"]["includeAll"]
    assert variables["instance"]["allValue"] == ".*"
    assert not variables["job"]["multi"], "job is matched with =, so it must be single-valued"


def test_reference_dashboard_has_a_reference_variable() -> None:
    variables = _variables(_dashboards()["sigma-reference.json"])
    reference = variables["reference"]
    assert reference["type"] == "query"
    assert reference["query"]["query"] == (
        f"label_values(sigma_reference_info{{{JOB_MATCHER}, {INSTANCE_MATCHER}}}, reference)"
    )
    assert not reference["multi"]


# --- panels and targets -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_every_panel_and_target_uses_the_datasource_variable(name: str) -> None:
    dashboard = _dashboards()[name]
    count = 0
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            count += 1
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    assert count >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_every_metric_selector_filters_job_and_instance(name: str) -> None:
    dashboard = _dashboards()[name]
    required = [JOB_MATCHER, INSTANCE_MATCHER]
    if name == "sigma-reference.json":
        required.append(REFERENCE_MATCHER)
    if name == "sigma-reports.json":
        required.extend(IDENTITY_MATCHERS)
    selectors = 0
    for title, target in _targets(dashboard):
        for match in METRIC.finditer(target["expr"]):
            metric, braces = match.groups()
            assert braces, f"{title}: {metric} has no label selector"
            selectors += 1
            # The API metrics are per instance: the reference dashboard narrows them with a join instead.
            needed = required if not metric.startswith("sigma_api_") else required[:2]
            for matcher in needed:
                assert matcher in braces, f"{title}: {metric}{braces} lacks {matcher}"
    assert selectors >= 20


def test_joins_on_instance_pair_series_of_one_shard() -> None:
    """A join on `instance` pairs identity series with identity series (one owner), or run and exporter
    series with their like (one poller), never one kind with the other: those come from different shards."""
    checked = 0
    for name, dashboard in _dashboards().items():
        for title, target in _targets(dashboard):
            expr = target["expr"]
            if not re.search(r"\bon \([^)]*\binstance\b", expr):
                continue
            checked += 1
            families = {re.sub(r"_(bucket|sum|count)$", "", m.group(1)) for m in METRIC.finditer(expr)}
            kinds = {family in IDENTITY_FAMILIES for family in families}
            assert len(kinds) == 1, f"{name} / {title}: joins {sorted(families)} on instance"
    assert checked >= 10


def test_rates_use_rate_interval_and_no_fixed_ranges() -> None:
    ranged = 0
    for name, dashboard in _dashboards().items():
        for title, target in _targets(dashboard):
            expr = target["expr"]
            ranged += len(re.findall(r"\b(?:rate|irate|increase)\(", expr))
            for window in re.findall(r"\[([^\]]+)\]", expr):
                # $__range: a quantile over the dashboard's whole time range.
                assert window in ("$__rate_interval", "$__range"), f"{name} / {title}: range [{window}]"
    assert ranged >= 5


def test_panel_ids_and_titles_are_unique_and_layout_fits() -> None:
    for name, dashboard in _dashboards().items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        titles = [panel["title"] for panel in panels(dashboard)]
        assert len(titles) == len(set(titles)), f"{name}: duplicate panel titles"
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (name, panel["title"])
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']} overlaps another panel"
                    cells.add((x, y))


def _exprs_and_metrics(dashboard: dict[str, Any]) -> tuple[str, set[str]]:
    exprs = "\n".join(t["expr"] for _, t in _targets(dashboard))
    return exprs, {m.group(1) for m in METRIC.finditer(exprs)}


def test_overview_shows_what_the_brief_asks_for() -> None:
    exprs, metrics = _exprs_and_metrics(_dashboards()["sigma-overview.json"])
    assert {
        "sigma_reports",
        "sigma_report_status",
        "sigma_report_status_since_timestamp_seconds",
        "sigma_group_report_failures",
        "sigma_api_request_duration_seconds_bucket",
        "sigma_api_requests_total",
        "sigma_api_request_errors_total",
        "sigma_up",
        "sigma_poll_duration_seconds",
        "sigma_last_poll_timestamp_seconds",
        "sigma_config_last_reload_successful",
        "sigma_poll_checks_skipped_total",
    } <= metrics
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, action)" in exprs


def test_reference_dashboard_shows_what_the_brief_asks_for() -> None:
    dashboard = _dashboards()["sigma-reference.json"]
    types = {panel["title"]: panel["type"] for panel in panels(dashboard)}
    assert types["Status timeline"] == "state-timeline"
    _, metrics = _exprs_and_metrics(dashboard)
    assert {"sigma_report_status", "sigma_report_error_info", "sigma_reference_up"} <= metrics


def test_reports_dashboard_shows_what_the_issue_asks_for() -> None:
    dashboard = _dashboards()["sigma-reports.json"]
    by_title = {panel["title"]: panel for panel in panels(dashboard)}
    _, metrics = _exprs_and_metrics(dashboard)
    assert {
        "sigma_report_info",
        "sigma_report_last_success_timestamp_seconds",
        "sigma_report_last_failure_timestamp_seconds",
        "sigma_report_last_run_duration_seconds",
        "sigma_report_runs_total",
        "sigma_report_run_duration_seconds_bucket",
        "sigma_report_run_missed",
        "sigma_report_run_overdue",
        "sigma_report_missed_runs_total",
        "sigma_report_next_expected_run_timestamp_seconds",
        "sigma_report_expected_run_timestamp_seconds",
    } <= metrics
    assert by_title["Run duration"]["type"] == "heatmap"
    assert by_title["Run duration"]["targets"][0]["format"] == "heatmap"
    quantiles = "\n".join(
        t["expr"] for t in by_title["Run duration p50 / p95 over the time range"]["targets"]
    )
    assert "histogram_quantile(0.5," in quantiles and "histogram_quantile(0.95," in quantiles
    # Last success is coloured against the expectation: age over period, red from the alert's threshold.
    age = by_title["Last success age, in periods of its expectation"]
    assert "sigma_report_next_expected_run_timestamp_seconds" in age["targets"][0]["expr"]
    steps = age["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["green", "orange", "red"]
    alerts = (ROOT / "prometheus" / "alerts.yml").read_text()
    assert f"no_recent_success_periods\n        expr: vector({steps[-1]['value']})" in alerts
    identities = by_title["Report identities"]
    assert identities["type"] == "table" and len(identities["targets"]) >= 7
    assert [t["id"] for t in identities["transformations"]] == ["merge", "organize"]
    variables = _variables(dashboard)
    for name in ("report_group_id", "report_id"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"


def test_reports_stat_panels_show_zero_rather_than_no_data() -> None:
    """Each query falls back to 0 (tests/integration/e2e runs them against Prometheus with nothing to count)."""
    by_title = {panel["title"]: panel for panel in panels(_dashboards()["sigma-reports.json"])}
    for title in COUNTING_STATS:
        assert by_title[title]["type"] == "stat", title
        (target,) = by_title[title]["targets"]
        assert target["expr"].endswith(") or vector(0)"), title


def test_reports_table_links_each_identity_to_its_page() -> None:
    """The identity columns link to the row's report_url (sigma_report_info), which stays in the frame
    (hidden, not excluded) for the link to read; every merged query carries it so rows merge whole."""
    (table,) = [p for p in panels(_dashboards()["sigma-reports.json"]) if p["title"] == "Report identities"]
    overrides = {
        o["matcher"]["options"]: {prop["id"]: prop["value"] for prop in o["properties"]}
        for o in table["fieldConfig"]["overrides"]
    }
    assert overrides["report_url"] == {"custom.hidden": True}
    organize = table["transformations"][-1]["options"]
    assert "report_url" not in organize["excludeByName"]
    for column in ("report_group_id", "report_id"):
        urls = [link["url"] for link in overrides[column]["links"]]
        assert urls[0] == "${__data.fields.report_url}", column
    assert any(url.startswith("/d/sigma-reports/") for url in urls)  # report_id: show only it, as before
    first, *joined = table["targets"]
    assert first["expr"].startswith("sigma_report_info{")
    for target in joined:
        assert "group_left (report_name, report_url, team)" in target["expr"], target["expr"]


def test_run_duration_shows_exemplars() -> None:
    (heatmap,) = [p for p in panels(_dashboards()["sigma-reports.json"]) if p["title"] == "Run duration"]
    (target,) = heatmap["targets"]
    assert target["exemplar"] is True
    assert "sigma_report_run_duration_seconds_bucket" in target["expr"]
    assert heatmap["options"]["exemplars"]["color"]


def test_the_three_dashboards_link_to_each_other() -> None:
    """Each carries a dashboard link by the tag all three have (Grafana lists them in every header)."""
    dashboards = _dashboards()
    for name, dashboard in dashboards.items():
        (link,) = dashboard["links"]
        assert link["type"] == "dashboards" and link["keepTime"], name
        assert all(set(link["tags"]) <= set(d["tags"]) for d in dashboards.values()), name
    text = (DASHBOARD_DIR / "sigma-overview.json").read_text() + (
        DASHBOARD_DIR / "sigma-reports.json"
    ).read_text()
    assert "/d/sigma-reference/" in text and "/d/sigma-reports/" in text


def test_dashboards_use_only_documented_metrics() -> None:
    documented = set(re.findall(r"`(sigma_[a-z_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    used = {
        re.sub(r"_bucket$", "", m.group(1))
        for dashboard in _dashboards().values()
        for _, target in _targets(dashboard)
        for m in METRIC.finditer(target["expr"])
    } - {"up"}
    assert len(used) >= 15
    assert used <= documented, f"not in docs/metrics.md: {sorted(used - documented)}"


def test_status_timeline_maps_every_status() -> None:
    (panel,) = [p for p in panels(_dashboards()["sigma-reference.json"]) if p["title"] == "Status timeline"]
    (target,) = panel["targets"]
    codes = dict(re.findall(r'status="([A-Z_]+)"\} == 1\) \* (\d+)', target["expr"]))
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    texts = {code: option["text"] for code, option in mapping["options"].items()}
    assert {texts[code] for code in codes.values()} == set(codes)
    assert {code: status for status, code in codes.items()} == texts
    assert set(codes) == {
        "GENERATED",
        "PUBLISHED",
        "NOTIFIED",
        "FAILED",
        "NOTIFICATION_FAILED",
        "NO_DATA_AVAILABLE",
        "PENDING",
        "UNKNOWN",
    }


def test_links_point_at_existing_dashboards() -> None:
    text = "\n".join(path.read_text() for path in dashboard_files())
    uids = set(EXPECTED_UIDS.values())
    linked = set(re.findall(r'"url": "/d/([\w-]+)/', text))
    assert linked
    assert linked <= uids


# --- queries with variables filled in (tests/support/dashboard_queries.py) ------------------------------------------
def test_dashboard_queries_substitute_every_variable() -> None:
    queries = list(dashboard_queries(job="sigma-exporter", instance=r"127\.0\.0\.1:\d+", reference="ref-1"))
    total = sum(len(_targets(d)) for d in _dashboards().values())
    assert len(queries) == total
    assert {q.uid for q in queries} == set(EXPECTED_UIDS.values())
    for query in queries:
        assert "$" not in query.expr, query
        assert 'job="sigma-exporter"' in query.expr, query
        assert r'instance=~"127\\.0\\.0\\.1:\\d+"' in query.expr, query
        assert "[1m]" in query.expr or "rate(" not in query.expr, query
    assert any('reference="ref-1"' in q.expr for q in queries if q.uid == "sigma-reference")


def test_variable_queries_give_selectors() -> None:
    got = {(q.uid, q.panel): q.expr for q in variable_queries(job="sigma-exporter", instance="a:1")}
    assert got[("sigma-overview", "variable job")] == "sigma_up"
    assert got[("sigma-overview", "variable instance")] == 'sigma_up{job="sigma-exporter"}'
    assert got[("sigma-reference", "variable reference")] == (
        'sigma_reference_info{job="sigma-exporter", instance=~"a:1"}'
    )


def test_substitute_escapes_and_refuses_unknown_variables() -> None:
    assert promql_string('a"b\\c') == 'a\\"b\\\\c'
    assert substitute('x{a="$job"}[$__rate_interval] ${job}', {"job": "J", "__rate_interval": "1m"}) == (
        'x{a="J"}[1m] J'
    )
    assert substitute("${job:regex}", {"job": "J"}) == "J"
    with pytest.raises(ValueError, match=r"\$team"):
        substitute('x{team="$team"}', {"job": "J"})


def test_dashboard_queries_read_a_directory(tmp_path: Path) -> None:
    document = {
        "uid": "u",
        "panels": [
            {
                "type": "row",
                "title": "r",
                "panels": [{"title": "nested", "targets": [{"expr": 'up{job="$job"}'}]}],
            },
            {"title": "p", "targets": [{"expr": "rate(x[$__interval])"}, {"expr": ""}]},
        ],
    }
    (tmp_path / "d.json").write_text(json.dumps(document))
    got = list(dashboard_queries(job="j", directory=tmp_path))
    assert [(q.uid, q.panel, q.expr) for q in got] == [
        ("u", "nested", 'up{job="j"}'),
        ("u", "p", "rate(x[15s])"),
    ]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each substituted query, written as a recording rule."""
    promtool = require_binary("promtool")
    queries = [
        *dashboard_queries(job="sigma-exporter", instance=r"127\.0\.0\.1:\d+", reference="ref-1"),
        *variable_queries(job="sigma-exporter", instance=".*"),
    ]
    rules = [{"record": f"dashboard:query_{i}:check", "expr": q.expr} for i, q in enumerate(queries)]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promql_check_catches_a_broken_query(tmp_path: Path) -> None:
    """The check above is not vacuous: promtool rejects a query with a syntax error."""
    promtool = require_binary("promtool")
    rule_file = tmp_path / "broken.yml"
    rule = {"record": "dashboard:broken:check", "expr": 'sum by (status (sigma_reports{job="x"})'}
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [rule]}]}))
    assert _run(promtool, "check", "rules", str(rule_file)).returncode != 0


# --- provisioning --------------------------------------------------------------------------------------------
def test_datasource_provisioning() -> None:
    document = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    assert source["url"].startswith("http")


def test_dashboard_provisioning_points_at_the_documented_path() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "sigma.yml").read_text())
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert path == "/var/lib/grafana/dashboards/sigma"
    readme = (ROOT / "grafana" / "README.md").read_text()
    assert path in readme
    assert DASHBOARD_DIR.relative_to(ROOT).as_posix() in readme
