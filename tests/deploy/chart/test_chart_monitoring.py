"""The chart's monitoring objects: the PrometheusRule is exactly prometheus/alerts.yml (promtool-clean, extra
labels, disabled alerts), the ServiceMonitor's job is the one the alerts select, the chart's copies of the
alerts and dashboards are in sync (helm/sync-assets.sh), and dashboards are ConfigMaps for the Grafana
sidecar."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.binaries import require_binary
from tests.support.chart import (
    CHART,
    CRD_KINDS,
    FULLNAME,
    NAMESPACE,
    by_kind,
    one,
    render,
    render_file,
    values_of,
)
from tests.support.paths import ROOT

ALERTS = ROOT / "prometheus" / "alerts.yml"


DASHBOARDS = ROOT / "grafana" / "dashboards"


# --- monitoring: ServiceMonitor, PrometheusRule, dashboards ------------------------------------------------------
def alerts_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return groups


def test_chart_copies_of_alerts_and_dashboards_are_in_sync() -> None:
    """helm/sigma-exporter/files/ holds copies (Helm reads nothing outside the chart): helm/sync-assets.sh."""
    files = CHART / "files"
    pairs = [(ALERTS, files / "alerts.yml")] if ALERTS.exists() else []
    sources = sorted(DASHBOARDS.glob("*.json"))
    pairs += [(source, files / "dashboards" / source.name) for source in sources]
    assert pairs, "nothing to compare: prometheus/alerts.yml and grafana/dashboards/*.json are missing"
    stale = [
        str(copy.relative_to(ROOT))
        for source, copy in pairs
        if not copy.exists() or copy.read_bytes() != source.read_bytes()
    ]
    orphans = sorted({p.name for p in (files / "dashboards").glob("*.json")} - {s.name for s in sources})
    assert not stale and not orphans, f"run helm/sync-assets.sh: stale {stale}, removed upstream {orphans}"


def test_sync_script_check_mode_detects_a_stale_copy(tmp_path: Path) -> None:
    script = ROOT / "helm" / "sync-assets.sh"
    ok = subprocess.run(
        ["sh", str(script), "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert ok.returncode == 0, ok.stderr
    # A copy of the layout with one changed dashboard: --check names it, a plain run repairs it.
    for relative in ("helm/sync-assets.sh", "prometheus/alerts.yml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes((ROOT / relative).read_bytes())
    (tmp_path / "grafana" / "dashboards").mkdir(parents=True)
    (tmp_path / "grafana" / "dashboards" / "a.json").write_text('{"title": "a"}\n')
    copy = tmp_path / "helm" / "sigma-exporter" / "files" / "dashboards" / "a.json"
    copy.parent.mkdir(parents=True)
    copy.write_text('{"title": "old"}\n')
    (copy.parent / "gone.json").write_text("{}\n")
    copied_script = str(tmp_path / "helm" / "sync-assets.sh")
    check = subprocess.run(
        ["sh", copied_script, "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert check.returncode == 1 and "dashboards/a.json" in check.stderr and "gone.json" in check.stderr
    fix = subprocess.run(["sh", copied_script], capture_output=True, text=True, timeout=30, check=False)
    assert fix.returncode == 0, fix.stderr
    assert copy.read_text() == '{"title": "a"}\n' and not (copy.parent / "gone.json").exists()
    again = subprocess.run(
        ["sh", copied_script, "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert again.returncode == 0, again.stderr


def test_prometheus_rule_carries_exactly_the_alert_rules() -> None:
    rule = one(render_file("monitoring-values.yaml"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == alerts_groups()
    # Alert templates reach Prometheus untouched (Helm did not evaluate them).
    text = ALERTS.read_text()
    if "{{ $labels." in text:
        annotations = json.dumps(
            [r.get("annotations", {}) for g in rule["spec"]["groups"] for r in g["rules"]]
        )
        assert "{{ $labels." in annotations


def test_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule = one(render_file("monitoring-values.yaml"), "PrometheusRule")
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_extra_labels_and_disabled_alerts() -> None:
    values = values_of("rules-tuned-values.yaml")
    assert values is not None
    extra = values["prometheusRule"]["additionalRuleLabels"]
    disabled = set(values["prometheusRule"]["disabledAlerts"])
    expected = []
    for group in alerts_groups():
        rules = []
        for rule in group["rules"]:
            if rule.get("alert") in disabled:
                continue
            labelled = {**rule, "labels": {**extra, **rule.get("labels", {})}} if "alert" in rule else rule
            rules.append(labelled)
        if rules:
            expected.append({**group, "rules": rules})
    rendered = one(render_file("rules-tuned-values.yaml"), "PrometheusRule")["spec"]["groups"]
    assert rendered == expected
    names = {r.get("alert") for g in rendered for r in g["rules"]}
    assert disabled and not disabled & names
    assert all(
        r["labels"]["cluster"] == extra["cluster"] for g in rendered for r in g["rules"] if "alert" in r
    )


def test_service_monitor_job_is_the_one_the_alerts_select() -> None:
    selected = set(re.findall(r'up\{[^}]*job="([^"]+)"', ALERTS.read_text()))
    assert selected, "alerts.yml no longer selects up{job=...}: update this test"
    monitor = one(render_file("monitoring-values.yaml"), "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    job = [r["replacement"] for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
    assert job and set(job) == selected
    assert endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"
    assert endpoint["interval"] == "15s" and endpoint["scrapeTimeout"] == "5s"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    service = one(render_file("monitoring-values.yaml"), "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_monitoring_objects_are_off_by_default() -> None:
    kinds = {m["kind"] for m in render_file(None)}
    assert not kinds & CRD_KINDS
    assert not [m for m in render_file(None) if "grafana_dashboard" in m["metadata"]["labels"]]


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    values = values_of("monitoring-values.yaml")
    assert values is not None
    manifests = render_file("monitoring-values.yaml")
    dashboards = [
        m for m in by_kind(manifests, "ConfigMap") if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    sources = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}
    assert sources and len(dashboards) == len(sources)
    seen = {}
    for configmap in dashboards:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["labels"]["team"] == "platform"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == values["dashboards"]["folder"]
        ((name, text),) = configmap["data"].items()
        seen[name] = json.loads(text)
    assert seen == sources
    relabelled = render(
        {**values, "dashboards": {"enabled": True, "label": "sidecar", "labelValue": "yes", "folder": ""}}
    )
    for configmap in by_kind(relabelled, "ConfigMap"):
        if configmap["metadata"]["name"] != FULLNAME:
            assert configmap["metadata"]["labels"]["sidecar"] == "yes"
            assert "grafana_dashboard" not in configmap["metadata"]["labels"]
            assert "grafana_folder" not in configmap["metadata"].get("annotations", {})
