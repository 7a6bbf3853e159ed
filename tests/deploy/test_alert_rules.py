"""Alert rules, their promtool unit tests, the runbook and the example Prometheus/Alertmanager configs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.binaries import require_binary
from tests.support.paths import ROOT

PROMETHEUS_DIR = ROOT / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/sigma-exporter/sigma-exporter/blob/main/docs/runbook.md"
SEVERITIES = {"critical", "warning", "info"}
#: Alerts about one reference: they must carry the reference's `team` label.
REFERENCE_METRICS = ("sigma_report_status", "sigma_group_report_failures", "sigma_reference_up")
#: Alerts about a report identity: they must carry its `team` from `sigma_report_info`.
IDENTITY_METRICS = (
    "sigma_report_run_missed",
    "sigma_report_run_overdue",
    "sigma_report_last_success_timestamp",
    "sigma_report_oldest_active_run_start_timestamp",
)
#: Alerts about one reference whose series name a report identity (report_group_id, report_id).
REFERENCE_IDENTITY_METRICS = ("sigma_report_status", "sigma_group_report_failures")
#: The annotation that links an alert about an identity to the identity's page (docs/metrics.md).
REPORT_URL = "{{ $labels.report_url }}"
#: sigma_report_info as every rule joins it: one series per identity, from whichever shard exports it (its
#: owner, or during an owner change either of the two), joined without `instance` (design.md, "One writer
#: per report identity").
IDENTITY_INFO = "topk by (job, report_group_id, report_id) (1, sigma_report_info)"
ON_IDENTITY = "on (job, report_group_id, report_id)"


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _alert_names() -> set[str]:
    return {rule["alert"] for rule in _alerts()}


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


# --- promtool ------------------------------------------------------------------------------------------
def test_promtool_check_rules_accepts_alerts() -> None:
    promtool = require_binary("promtool")
    result = _run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    assert len(RULE_TESTS) >= 3
    result = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


@pytest.mark.parametrize(
    ("original", "mutant"),
    [
        ("vector(3600)", "vector(7200)"),  # the stuck threshold
        ('status="FAILED"} == 1', 'status="FAILED"} == 0'),
        ("group_left (team)", "group_left ()"),
        ("sigma_report_run_missed == 1", "sigma_report_run_missed == 0"),
        ("sigma_report_run_overdue == 1", "sigma_report_run_overdue == 0"),
        ("group_left (report_name, report_url, team)", "group_left (report_name, team)"),
        ("group_left (report_name, report_url, team)", "group_left (report_name, report_url)"),
        ("report_id) group_left (report_url)", "report_id) group_left ()"),
        ("or ignoring (report_url)", "and ignoring (report_url)"),  # an alert without a link still fires
        ('report_url: ""', 'report_url: "{{ $labels.report_url }}"'),  # the link stays out of the labels
        ("vector(2)", "vector(3)"),  # periods without a success
        ("next_minus_expected[1d])", "next_minus_expected[1m])"),  # the weekend gap forgotten
        (
            "unless on (job, report_group_id, report_id)",
            "and on (job, report_group_id, report_id)",
        ),
        # Across shards (prometheus/tests/shards_test.yml): the run's poller is not the identity's owner,
        # two shards export an identity while its owner moves, and its history is on two series after.
        (
            "* on (job, report_group_id, report_id) group_left (report_url)",
            "* on (job, instance, report_group_id, report_id) group_left (report_url)",
        ),
        (IDENTITY_INFO, "max without (instance) (sigma_report_info)"),
        (
            "sum by (job, report_group_id, report_id, le)",
            "sum by (job, instance, report_group_id, report_id, le)",
        ),
        (
            "sum by (job, report_group_id, report_id) (increase(",
            "sum by (job, instance, report_group_id, report_id) (increase(",
        ),
        ("max without (instance) (\n", "max by (job, instance, report_group_id, report_id) (\n"),
    ],
)
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path, original: str, mutant: str) -> None:
    """The unit tests are sensitive: a copy of the rules with one change fails them."""
    promtool = require_binary("promtool")
    text = ALERTS.read_text()
    assert original in text
    (tmp_path / "alerts.yml").write_text(text.replace(original, mutant))
    (tmp_path / "tests").mkdir()
    for test_file in RULE_TESTS:
        shutil.copy(test_file, tmp_path / "tests" / test_file.name)
    result = _run(promtool, "test", "rules", *(f"tests/{f.name}" for f in RULE_TESTS), cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr


# --- the rules themselves ---------------------------------------------------------------------------
def test_every_alert_is_named_and_annotated() -> None:
    alerts = _alerts()
    assert len(alerts) >= 11
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"Sigma(?:[A-Z][a-z0-9]*)+", name), f"{name}: not CamelCase with prefix Sigma"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) - {"report_url"} == {"summary", "description", "runbook_url"}, name
        assert all(str(value).strip() for value in annotations.values()), name
        assert annotations["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}", name


def test_required_alerts_exist() -> None:
    required = {
        "SigmaExporterDown",
        "SigmaApiDown",
        "SigmaReportFailed",
        "SigmaReportNotificationFailed",
        "SigmaGroupReportFailures",
        "SigmaReportStuck",
        "SigmaReferenceCheckFailing",
        "SigmaApiErrorRatioHigh",
        "SigmaApiLatencyHigh",
        "SigmaPollsStalled",
        "SigmaConfigReloadFailed",
        "SigmaStateStoreWriteFailing",
        "SigmaReportMissedRun",
        "SigmaReportRunOverdue",
        "SigmaReportNoRecentSuccess",
    }
    assert required <= _alert_names()


def test_failed_report_alert_fires_within_a_minute() -> None:
    (rule,) = [r for r in _alerts() if r["alert"] == "SigmaReportFailed"]
    assert rule.get("for", "0m") in ("0m", "0s", "30s", "1m")
    assert rule["labels"]["severity"] == "critical"


def test_alerts_about_a_reference_carry_its_team() -> None:
    checked = 0
    for rule in _alerts():
        expr = rule["expr"]
        if any(metric in expr for metric in REFERENCE_METRICS):
            checked += 1
            assert re.search(
                r"\* on \(job, instance, reference\) group_left \(team\)\s+sigma_reference_info\s*$", expr
            ), f"{rule['alert']}: should join sigma_reference_info on (job, instance, reference)"
    assert checked >= 5


def test_alerts_about_a_report_identity_carry_its_team() -> None:
    checked = 0
    for rule in _alerts():
        if any(metric in rule["expr"] for metric in IDENTITY_METRICS):
            checked += 1
            assert re.search(
                rf"\* {re.escape(ON_IDENTITY)} group_left \(report_name, report_url, team\)"
                rf"\s+{re.escape(IDENTITY_INFO)}\s*$",
                rule["expr"],
            ), f"{rule['alert']}: should join {IDENTITY_INFO} {ON_IDENTITY}"
    assert checked == 4


def test_every_alert_about_a_report_identity_links_to_its_page() -> None:
    """The identity alerts and the per-reference alerts whose series name an identity carry `report_url`
    from sigma_report_info as an annotation, and not as a label; no other alert has one."""
    linked = []
    for rule in _alerts():
        name, expr = rule["alert"], rule["expr"]
        if any(metric in expr for metric in (*IDENTITY_METRICS, *REFERENCE_IDENTITY_METRICS)):
            linked.append(name)
            assert rule["annotations"].get("report_url") == REPORT_URL, name
            assert rule["labels"].get("report_url") == "", f"{name}: report_url must stay out of the labels"
            assert re.search(
                rf"{re.escape(ON_IDENTITY)} group_left \([a-z_, ]*\breport_url\b[a-z_, ]*\)"
                rf"\s+{re.escape(IDENTITY_INFO)}",
                expr,
            ), f"{name}: should copy report_url from sigma_report_info"
        else:
            assert "report_url" not in rule["annotations"] and "report_url" not in rule["labels"], name
    assert set(linked) >= {
        "SigmaReportMissedRun",
        "SigmaReportRunOverdue",
        "SigmaReportNoRecentSuccess",
        "SigmaReportRunSlowerThanUsual",
        "SigmaReportFailed",
        "SigmaReportNotificationFailed",
        "SigmaGroupReportFailures",
        "SigmaReportStuck",
        "SigmaReportStatusUnknown",
    }


def test_identity_series_are_joined_without_instance() -> None:
    """Each identity is exported by its owner shard, each run by the shard that polls it (design.md, "One
    writer per report identity"): every join to sigma_report_info is on (job, report_group_id, report_id),
    to one series per identity, and so is every join of a run series to an identity series."""
    exprs = [rule["expr"] for rule in _rules()]
    infos = [expr for expr in exprs if "sigma_report_info" in expr]
    assert len(infos) >= 9
    for expr in infos:
        uses = expr.count("sigma_report_info")
        assert expr.count(IDENTITY_INFO) == uses, f"sigma_report_info not as {IDENTITY_INFO}:\n{expr}"
        joins = re.findall(rf"(on \([^)]*\)) group_left \([a-z_, ]*\)\s+{re.escape(IDENTITY_INFO)}", expr)
        assert joins == [ON_IDENTITY] * uses, expr
    # The identity families that alerts read over time are aggregated without instance: after an owner
    # change their history is on two series.
    (slower,) = [r["expr"] for r in _alerts() if r["alert"] == "SigmaReportRunSlowerThanUsual"]
    assert (
        "sum by (job, report_group_id, report_id, le) (rate(sigma_report_run_duration_seconds_bucket"
        in slower
    )
    assert (
        "sum by (job, report_group_id, report_id) (increase(sigma_report_run_duration_seconds_count" in slower
    )
    assert "instance" not in slower
    (no_success,) = [r["expr"] for r in _alerts() if r["alert"] == "SigmaReportNoRecentSuccess"]
    assert "job_report:sigma_report_expected_period_seconds:max1d" in no_success
    assert not any("job_instance_report:sigma_report_expected_period_seconds:max1d" in e for e in exprs)


def test_the_two_shard_unit_tests_separate_poller_and_owner() -> None:
    """shards_test.yml has, for every per-reference alert, a firing case whose run is polled by one shard
    (the alert's instance) and whose identity is exported by the other (the link's host)."""
    document = yaml.safe_load((PROMETHEUS_DIR / "tests" / "shards_test.yml").read_text())
    apart: set[str] = set()
    for test in document["tests"]:
        for case in test.get("alert_rule_test", []):
            for alert in case.get("exp_alerts") or []:
                instance = alert["exp_labels"]["instance"]  # shard-N:9842
                link = str(alert["exp_annotations"].get("report_url", ""))
                owner = re.match(r"https://sigma-(\d+)\.example\.com/", link)
                if owner and not instance.startswith(f"shard-{owner.group(1)}:"):
                    apart.add(case["alertname"])
    per_reference = {
        "SigmaReportFailed",
        "SigmaReportNotificationFailed",
        "SigmaGroupReportFailures",
        "SigmaReportStuck",
        "SigmaReportStatusUnknown",
    }
    assert per_reference <= apart


def test_the_link_is_unit_tested_for_identity_and_per_reference_alerts() -> None:
    """promtool tests check the annotation's value of an identity alert and of a per-reference one."""
    checked: set[str] = set()
    for test_file in RULE_TESTS:
        for test in yaml.safe_load(test_file.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    if str(alert.get("exp_annotations", {}).get("report_url", "")).startswith("https://"):
                        checked.add(case["alertname"])
    assert {"SigmaReportMissedRun", "SigmaReportFailed"} <= checked


def test_thresholds_live_in_recording_rules() -> None:
    """Numbers to tune are `sigma:alert_threshold:*` rules; alert expressions compare only to 0 or 1."""
    thresholds = {r["record"]: r["expr"] for r in _rules() if r.get("record", "").startswith("sigma:alert_")}
    assert len(thresholds) >= 4
    alert_exprs = "\n".join(rule["expr"] for rule in _alerts())
    for name, expr in thresholds.items():
        assert re.fullmatch(r"vector\([0-9.]+\)", expr.strip()), f"{name}: {expr}"
        assert re.search(rf">=? on \(\) group_left \(\)\s+{re.escape(name)}\b", alert_exprs), f"{name} unused"
    for rule in _alerts():
        for literal in re.findall(r"(?:[<>]=?|[!=]=)\s*([0-9][0-9.e+]*)", rule["expr"]):
            assert float(literal) in (0.0, 1.0), f"{rule['alert']} compares to {literal}: make it a threshold"


def test_recording_rules_follow_naming_convention() -> None:
    for rule in _rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_alerts_use_only_documented_metrics() -> None:
    documented = set(re.findall(r"`(sigma_[a-z_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    used = set(re.findall(r"(?<![:\w])(sigma_[a-z_]+)\b(?!:)", "\n".join(rule["expr"] for rule in _rules())))
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert len(used) >= 10
    assert used <= documented, f"not in docs/metrics.md: {sorted(used - documented)}"


# --- unit tests cover every alert ---------------------------------------------------------------------
def _unit_cases() -> dict[str, dict[str, int]]:
    cases: dict[str, dict[str, int]] = {}
    for test_file in RULE_TESTS:
        document = yaml.safe_load(test_file.read_text())
        assert document["rule_files"] == ["../alerts.yml"], test_file
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "quiet"
                counts = cases.setdefault(case["alertname"], {"firing": 0, "quiet": 0})
                counts[kind] += 1
    return cases


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    cases = _unit_cases()
    assert set(cases) == _alert_names(), "unit tests name an alert that does not exist, or miss one"
    for name, counts in cases.items():
        assert counts["firing"] >= 1, f"{name}: no test case where it fires"
        assert counts["quiet"] >= 1, f"{name}: no test case where it stays quiet"


# --- runbook -------------------------------------------------------------------------------------------
def test_runbook_has_a_section_per_alert_and_no_other() -> None:
    sections = set(re.findall(r"^## (\S+)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE))
    assert sections == _alert_names()


def test_runbook_sections_say_meaning_checks_and_fixes() -> None:
    parts = re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]
    assert parts
    for part in parts:
        name = part.split("\n", 1)[0].strip()
        for heading in ("**Meaning.**", "**First checks.**", "**Fixes.**"):
            assert heading in part, f"runbook section {name} lacks {heading}"


# --- example configurations ---------------------------------------------------------------------------
def test_prometheus_example_config_is_valid() -> None:
    promtool = require_binary("promtool")
    result = _run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_prometheus_example_config_scrapes_the_exporter() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "sigma-exporter"]
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets and all(t.endswith(":9842") for t in targets)
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]


def test_alertmanager_example_config_is_valid() -> None:
    amtool = require_binary("amtool")
    result = _run(amtool, "check-config", str(PROMETHEUS_DIR / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (("severity=critical", "team=finance"), "pager,finance"),
        (("severity=critical",), "pager"),
        (("severity=critical", "team=ops"), "pager"),
        (("severity=warning", "team=finance"), "finance"),
        (("severity=info", "team=finance"), "default"),
        (("severity=warning", "team=ops"), "default"),
        (("severity=warning",), "default"),
    ],
)
def test_alertmanager_routes_by_severity_and_team(labels: tuple[str, ...], receivers: str) -> None:
    amtool = require_binary("amtool")
    result = _run(
        amtool,
        "config",
        "routes",
        "test",
        "--config.file",
        str(PROMETHEUS_DIR / "alertmanager.yml"),
        "alertname=SigmaReportFailed",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_alertmanager_inhibitions_name_existing_alerts() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "alertmanager.yml").read_text())
    named: set[str] = set()
    for rule in config["inhibit_rules"]:
        for matcher in (*rule["source_matchers"], *rule["target_matchers"]):
            match = re.fullmatch(r'alertname\s*=~?\s*"([^"]+)"', matcher)
            assert match, matcher
            named.update(match.group(1).split("|"))
    assert named
    assert named <= _alert_names()
