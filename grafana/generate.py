#!/usr/bin/env python3
"""Generate the Grafana dashboards of sigma-exporter (grafana/dashboards/*.json).

    python grafana/generate.py            # write the JSON files
    python grafana/generate.py --check    # exit 1 when a committed file differs from what this generates

Edit this file, not the JSON: tests/test_dashboards.py fails when the two disagree. Only the standard
library is used. Every query selects `job="$job", instance=~"$instance"` (and `reference="$reference"`
on the reference dashboard), every panel and target uses the `${datasource}` variable, and rates use
`$__rate_interval`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]

HERE = Path(__file__).resolve().parent
OUTPUT_DIR = HERE / "dashboards"
SCHEMA_VERSION = 39
TAGS = ["sigma-exporter", "sigma"]
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

#: The label selector of every query: the chosen job and instances (shards).
SEL = 'job="$job", instance=~"$instance"'
#: ... plus the chosen reference (reference dashboard).
REF_SEL = f'{SEL}, reference="$reference"'

# The statuses of the `status` label, with the number and colour the status timeline shows them with.
STATUS_CODES: tuple[tuple[str, int, str], ...] = (
    ("GENERATED", 1, "blue"),
    ("PUBLISHED", 2, "green"),
    ("NOTIFIED", 3, "dark-green"),
    ("NO_DATA_AVAILABLE", 4, "yellow"),
    ("NOTIFICATION_FAILED", 5, "orange"),
    ("FAILED", 6, "red"),
    ("PENDING", 7, "purple"),
    ("UNKNOWN", 8, "text"),
)
STUCK_SECONDS = 3600  # colour threshold of waiting reports; keep in line with prometheus/alerts.yml


# --- building blocks -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False  # format "table": one row per series, its labels as columns

    def to_json(self, ref_id: str) -> Json:
        return {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "format": "table" if self.table else "time_series",
            "instant": self.instant,
            "legendFormat": self.legend,
            "range": not self.instant,
            "refId": ref_id,
        }


@dataclass
class Panel:
    type: str
    title: str
    description: str
    targets: Sequence[Target]
    width: int = 12
    height: int = 8
    unit: str | None = None
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    mappings: list[Json] = field(default_factory=list)
    thresholds: list[tuple[float | None, str]] = field(default_factory=lambda: [(None, "green")])
    color_mode: str | None = None
    custom: Json = field(default_factory=dict)
    options: Json = field(default_factory=dict)
    overrides: list[Json] = field(default_factory=list)
    transformations: list[Json] = field(default_factory=list)

    def to_json(self, panel_id: int, grid: Json) -> Json:
        defaults: Json = {
            "mappings": self.mappings,
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": color, "value": value} for value, color in self.thresholds],
            },
        }
        if self.color_mode:
            defaults["color"] = {"mode": self.color_mode}
        for key, value in (("unit", self.unit), ("decimals", self.decimals), ("min", self.min)):
            if value is not None:
                defaults[key] = value
        if self.max is not None:
            defaults["max"] = self.max
        if self.custom:
            defaults["custom"] = self.custom
        panel: Json = {
            "datasource": DATASOURCE,
            "description": self.description,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "gridPos": grid,
            "id": panel_id,
            "options": self.options,
            "targets": [target.to_json(chr(ord("A") + i)) for i, target in enumerate(self.targets)],
            "title": self.title,
            "type": self.type,
        }
        if self.transformations:
            panel["transformations"] = self.transformations
        return panel


@dataclass(frozen=True)
class Row:
    title: str


def timeseries(
    title: str, description: str, *targets: Target, unit: str = "short", stack: bool = False, **kw: Any
) -> Panel:
    custom: Json = {
        "drawStyle": "line",
        "fillOpacity": 20 if stack else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
    }
    options: Json = {
        "legend": {
            "calcs": ["lastNotNull", "max"],
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return Panel(
        "timeseries",
        title,
        description,
        targets,
        unit=unit,
        color_mode="palette-classic",
        custom=custom,
        options=options,
        **kw,
    )


def stat(title: str, description: str, *targets: Target, unit: str = "short", **kw: Any) -> Panel:
    options: Json = {
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": "auto",
    }
    kw.setdefault("width", 6)
    kw.setdefault("height", 4)
    return Panel(
        "stat", title, description, targets, unit=unit, color_mode="thresholds", options=options, **kw
    )


def table(
    title: str,
    description: str,
    target: Target,
    *,
    value_name: str | None,
    hide: Sequence[str] = (),
    links: bool = False,
    **kw: Any,
) -> Panel:
    """An instant query as a table: one row per series, its labels as columns."""
    exclude = dict.fromkeys(("Time", "__name__", "job", *hide), True)
    if value_name is None:
        exclude["Value"] = True
    transformations: list[Json] = [
        {
            "id": "organize",
            "options": {
                "excludeByName": exclude,
                "renameByName": {"Value": value_name} if value_name else {},
            },
        }
    ]
    overrides: list[Json] = [*kw.pop("overrides", []), *([_reference_link_override()] if links else [])]
    options: Json = {"cellHeight": "sm", "footer": {"show": False}, "showHeader": True}
    custom: Json = {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}
    return Panel(
        "table",
        title,
        description,
        [target],
        custom=custom,
        options=options,
        overrides=overrides,
        transformations=transformations,
        **kw,
    )


def _reference_link_override() -> Json:
    """Clicking a reference in a table opens the reference dashboard for it."""
    url = (
        "/d/sigma-reference/sigma-reference?${datasource:queryparam}&${job:queryparam}"
        "&${instance:queryparam}&var-reference=${__value.raw}&${__url_time_range}"
    )
    return {
        "matcher": {"id": "byName", "options": "reference"},
        "properties": [{"id": "links", "value": [{"title": "Open reference ${__value.raw}", "url": url}]}],
    }


def status_overrides() -> list[Json]:
    """Series named after a status (legend {{status}}) get that status's colour."""
    return [
        {
            "matcher": {"id": "byName", "options": status},
            "properties": [{"id": "color", "value": {"fixedColor": color, "mode": "fixed"}}],
        }
        for status, _, color in STATUS_CODES
    ]


def up_mappings(up: str, down: str) -> list[Json]:
    return [
        {
            "options": {
                "0": {"color": "red", "index": 0, "text": down},
                "1": {"color": "green", "index": 1, "text": up},
            },
            "type": "value",
        }
    ]


def rate(metric: str, selector: str = SEL) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def latency_targets(selector: str) -> list[Target]:
    return [
        Target(
            f"histogram_quantile({q}, sum by (le, action) ({rate('sigma_api_request_duration_seconds_bucket', selector)}))",
            f"p{round(q * 100)} {{{{action}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


# --- the dashboards -------------------------------------------------------------------------------------
def overview_panels() -> list[Panel | Row]:
    failing = (
        f'(sigma_report_status{{{SEL}, status=~"FAILED|NOTIFICATION_FAILED"}} == 1)\n'
        f"* on (job, instance, reference) group_left (team)\nsigma_reference_info{{{SEL}}}"
    )
    waiting = (
        f"(time() - sigma_report_status_since_timestamp_seconds{{{SEL}}})\n"
        "* on (job, instance, reference, report_group_id, report_id) group_left (report_name, status)\n"
        f'(sigma_report_status{{{SEL}, status=~"GENERATED|PENDING"}} == 1)'
    )
    return [
        Row("Reports"),
        stat(
            "Reports by status",
            "Watched reports (individual reports and group members) in each status, now.",
            Target(f"sum by (status) (sigma_reports{{{SEL}}})", "{{status}}", instant=True),
            width=24,
            overrides=status_overrides(),
            thresholds=[(None, "text")],
        ),
        timeseries(
            "Reports by status over time",
            "Watched reports in each status.",
            Target(f"sum by (status) (sigma_reports{{{SEL}}})", "{{status}}"),
            stack=True,
            overrides=status_overrides(),
        ),
        table(
            "Failed reports",
            "Reports whose current status is FAILED or NOTIFICATION_FAILED (alerts SigmaReportFailed, "
            "SigmaReportNotificationFailed). Click a reference to open it.",
            Target(failing, instant=True, table=True),
            value_name=None,
            links=True,
        ),
        table(
            "Waiting reports (GENERATED or PENDING)",
            f"Reports not yet published or without a status yet, and for how long. Orange after {STUCK_SECONDS}s "
            "(alert SigmaReportStuck).",
            Target(waiting, instant=True, table=True),
            value_name="Waiting for",
            links=True,
            unit="s",
            thresholds=[(None, "green"), (STUCK_SECONDS, "orange")],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Waiting for"},
                    "properties": [{"id": "custom.cellOptions", "value": {"type": "color-text"}}],
                },
            ],
        ),
        Panel(
            "bargauge",
            "Group report failures",
            "reportFailureCount of each watched group run, as the API reports it (alert SigmaGroupReportFailures).",
            [
                Target(
                    f"sigma_group_report_failures{{{SEL}}}", "{{reference}} {{report_group_id}}", instant=True
                )
            ],
            thresholds=[(None, "green"), (1, "red")],
            min=0,
            options={
                "displayMode": "gradient",
                "orientation": "horizontal",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "showUnfilled": True,
            },
            color_mode="thresholds",
        ),
        table(
            "Report error codes",
            "Reports whose last reply carried an errorCode (sigma_report_error_info).",
            Target(f"sigma_report_error_info{{{SEL}}}", instant=True, table=True),
            value_name=None,
            links=True,
            width=24,
        ),
        Row("Sigma API"),
        timeseries(
            "API latency p50 / p95 / p99 by action",
            "Quantiles of the Sigma API call latency (alert SigmaApiLatencyHigh on p95).",
            *latency_targets(SEL),
            unit="s",
        ),
        timeseries(
            "API calls by action and code",
            'Sigma API calls per second by HTTP status (code "error": no HTTP status came back).',
            Target(f"sum by (action, code) ({rate('sigma_api_requests_total')})", "{{action}} {{code}}"),
            unit="reqps",
        ),
        timeseries(
            "API errors by reason",
            "Failed Sigma API calls per second by action and reason (only reasons that occur).",
            Target(
                f"sum by (action, reason) ({rate('sigma_api_request_errors_total')}) > 0",
                "{{action}} {{reason}}",
            ),
            unit="reqps",
        ),
        timeseries(
            "API error ratio by action",
            "Share of Sigma API calls that failed (alert SigmaApiErrorRatioHigh).",
            Target(
                f"sum by (action) ({rate('sigma_api_request_errors_total')})\n"
                f"/\nsum by (action) ({rate('sigma_api_requests_total')})",
                "{{action}}",
            ),
            unit="percentunit",
            min=0,
        ),
        Row("Exporter health"),
        stat(
            "Sigma API reachable",
            "sigma_up per exporter instance: the last poll cycle reached and authenticated against Sigma "
            "(alert SigmaApiDown).",
            Target(f"sigma_up{{{SEL}}}", "{{instance}}", instant=True),
            mappings=up_mappings("UP", "DOWN"),
            thresholds=[(None, "red"), (1, "green")],
        ),
        stat(
            "Exporter scraped",
            "Prometheus's `up` for each exporter instance (alert SigmaExporterDown).",
            Target(f"up{{{SEL}}}", "{{instance}}", instant=True),
            mappings=up_mappings("UP", "DOWN"),
            thresholds=[(None, "red"), (1, "green")],
        ),
        stat(
            "Last poll age",
            "Seconds since the last poll cycle ended (alert SigmaPollsStalled).",
            Target(f"time() - sigma_last_poll_timestamp_seconds{{{SEL}}}", "{{instance}}", instant=True),
            unit="s",
            thresholds=[(None, "green"), (300, "orange"), (600, "red")],
        ),
        stat(
            "Config reload",
            "Whether the last configuration (re)load succeeded (alert SigmaConfigReloadFailed).",
            Target(f"sigma_config_last_reload_successful{{{SEL}}}", "{{instance}}", instant=True),
            mappings=up_mappings("OK", "FAILED"),
            thresholds=[(None, "red"), (1, "green")],
        ),
        timeseries(
            "Poll duration",
            "Duration of the last poll cycle per instance; it should stay below poll.interval_seconds.",
            Target(f"sigma_poll_duration_seconds{{{SEL}}}", "{{instance}}"),
            unit="s",
        ),
        timeseries(
            "Skipped checks",
            "Reference checks left undone because a poll cycle ran out of its interval (alert SigmaPollChecksSkipped).",
            Target(
                f"sum by (instance) (increase(sigma_poll_checks_skipped_total{{{SEL}}}[$__rate_interval]))",
                "{{instance}}",
            ),
            min=0,
        ),
        timeseries(
            "Watched references",
            "References watched, by kind, and how many of them failed their last check (sigma_reference_up == 0).",
            Target(f"sum by (kind) (sigma_references{{{SEL}}})", "{{kind}}"),
            Target(f"sum by (kind) (1 - sigma_reference_up{{{SEL}}})", "failing {{kind}}"),
            min=0,
        ),
        timeseries(
            "Last successful config reload",
            "When each instance last (re)loaded its configuration successfully.",
            Target(f"sigma_config_last_reload_success_timestamp_seconds{{{SEL}}} * 1000", "{{instance}}"),
            unit="dateTimeAsIso",
        ),
        table(
            "Exporter instances",
            "Version and shard of each exporter instance.",
            Target(
                f"sigma_exporter_build_info{{{SEL}}}\n"
                f"* on (job, instance) group_left (shard_index, shard_count)\nsigma_exporter_shard{{{SEL}}}",
                instant=True,
                table=True,
            ),
            value_name=None,
            width=24,
            height=6,
        ),
    ]


def status_code_expr(selector: str) -> str:
    """One series per report whose value is the number of its current status (see STATUS_CODES)."""
    parts = [
        f'(sigma_report_status{{{selector}, status="{status}"}} == 1) * {code}'
        for status, code, _ in STATUS_CODES
    ]
    return "max without (status) (\n  " + "\n  or\n  ".join(parts) + "\n)"


def status_mappings() -> list[Json]:
    return [
        {
            "options": {
                str(code): {"color": color, "index": index, "text": status}
                for index, (status, code, color) in enumerate(STATUS_CODES)
            },
            "type": "value",
        }
    ]


def reference_panels() -> list[Panel | Row]:
    members = (
        f"(time() - sigma_report_status_since_timestamp_seconds{{{REF_SEL}}})\n"
        "* on (job, instance, reference, report_group_id, report_id) group_left (report_name, status)\n"
        f"(sigma_report_status{{{REF_SEL}}} == 1)"
    )
    return [
        Row("Reference"),
        stat(
            "Reference check",
            "sigma_reference_up: whether the last status check of this reference succeeded "
            "(alert SigmaReferenceCheckFailing).",
            Target(f"sigma_reference_up{{{REF_SEL}}}", "{{kind}}", instant=True),
            mappings=up_mappings("UP", "DOWN"),
            thresholds=[(None, "red"), (1, "green")],
        ),
        stat(
            "Group: failures / successes / members",
            "reportFailureCount, reportSuccessCount and noOfReports of a group run, as the API reports them "
            "(empty for an individual report).",
            Target(f"sigma_group_report_failures{{{REF_SEL}}}", "failures", instant=True),
            Target(f"sigma_group_report_successes{{{REF_SEL}}}", "successes", instant=True),
            Target(f"sigma_group_report_members{{{REF_SEL}}}", "members", instant=True),
            width=8,
            thresholds=[(None, "blue")],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "failures"},
                    "properties": [
                        {
                            "id": "thresholds",
                            "value": {
                                "mode": "absolute",
                                "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
                            },
                        }
                    ],
                }
            ],
        ),
        table(
            "Reference labels",
            "The reference's kind and its own labels (sigma_reference_info), as alerts carry them.",
            Target(f"sigma_reference_info{{{REF_SEL}}}", instant=True, table=True),
            value_name=None,
            width=10,
            height=4,
        ),
        Panel(
            "state-timeline",
            "Status timeline",
            "The status of each report of this reference over time.",
            [Target(status_code_expr(REF_SEL), "{{report_name}} {{report_id}}")],
            width=24,
            height=8,
            mappings=status_mappings(),
            color_mode="thresholds",
            thresholds=[(None, "text")],
            custom={"fillOpacity": 80, "lineWidth": 0},
            options={
                "alignValue": "left",
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                "mergeValues": True,
                "rowHeight": 0.9,
                "showValue": "auto",
                "tooltip": {"mode": "single", "sort": "none"},
            },
        ),
        table(
            "Reports",
            "Each report of this reference (the member reports of a group run), its current status and how long "
            "it has had it.",
            Target(members, instant=True, table=True),
            value_name="In status for",
            unit="s",
            width=24,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "status"},
                    "properties": [
                        {"id": "mappings", "value": _status_text_mappings()},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                }
            ],
        ),
        Row("Errors"),
        table(
            "Report error codes",
            "Reports of this reference whose last reply carried an errorCode (sigma_report_error_info).",
            Target(f"sigma_report_error_info{{{REF_SEL}}}", instant=True, table=True),
            value_name=None,
        ),
        Panel(
            "state-timeline",
            "Reference check over time",
            "sigma_reference_up over time: red while the status checks of this reference fail.",
            [Target(f"sigma_reference_up{{{REF_SEL}}}", "{{reference}}")],
            mappings=up_mappings("UP", "DOWN"),
            color_mode="thresholds",
            thresholds=[(None, "red"), (1, "green")],
            custom={"fillOpacity": 80, "lineWidth": 0},
            options={
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                "mergeValues": True,
                "showValue": "auto",
            },
        ),
        timeseries(
            "Group reports by status",
            "Per group run, the number of its reports in each status (sigma_group_reports).",
            Target(f"sum by (status) (sigma_group_reports{{{REF_SEL}}})", "{{status}}"),
            stack=True,
            overrides=status_overrides(),
        ),
        timeseries(
            "API errors of the instance watching it",
            "Failed Sigma API calls per second by action and reason, of the exporter instance that watches this "
            "reference (the API metrics are per instance, not per reference).",
            Target(
                f"sum by (job, instance, action, reason) ({rate('sigma_api_request_errors_total')}) > 0\n"
                f"and on (job, instance)\nsigma_reference_info{{{REF_SEL}}}",
                "{{instance}} {{action}} {{reason}}",
            ),
            unit="reqps",
        ),
    ]


def _status_text_mappings() -> list[Json]:
    return [
        {
            "options": {
                status: {"color": color, "index": index}
                for index, (status, _, color) in enumerate(STATUS_CODES)
            },
            "type": "value",
        }
    ]


# --- assembly --------------------------------------------------------------------------------------------
def query_variable(name: str, label: str, query: str, *, include_all: bool = False) -> Json:
    variable: Json = {
        "current": {},
        "datasource": DATASOURCE,
        "definition": query,
        "hide": 0,
        "includeAll": include_all,
        "label": label,
        "multi": include_all,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "StandardVariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
    if include_all:
        variable["allValue"] = ".*"
    return variable


def variables(with_reference: bool) -> list[Json]:
    result: list[Json] = [
        {
            "current": {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        query_variable("job", "Job", "label_values(sigma_up, job)"),
        query_variable(
            "instance", "Instance", 'label_values(sigma_up{job="$job"}, instance)', include_all=True
        ),
    ]
    if with_reference:
        result.append(
            query_variable(
                "reference", "Reference", f"label_values(sigma_reference_info{{{SEL}}}, reference)"
            )
        )
    return result


def layout(items: Sequence[Panel | Row]) -> list[Json]:
    """Place panels left to right, wrapping at Grafana's 24 columns; a Row starts a new line."""
    panels: list[Json] = []
    x = y = line_height = 0
    for panel_id, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += line_height
            x = line_height = 0
            grid = {"h": 1, "w": 24, "x": 0, "y": y}
            panels.append(
                {
                    "collapsed": False,
                    "gridPos": grid,
                    "id": panel_id,
                    "panels": [],
                    "title": item.title,
                    "type": "row",
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            y += line_height
            x = line_height = 0
        panels.append(item.to_json(panel_id, {"h": item.height, "w": item.width, "x": x, "y": y}))
        x += item.width
        line_height = max(line_height, item.height)
    return panels


def dashboard(
    uid: str, title: str, description: str, items: Sequence[Panel | Row], *, with_reference: bool
) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["sigma-exporter"],
                "targetBlank": False,
                "title": "Sigma dashboards",
                "type": "dashboards",
            }
        ],
        "panels": layout(items),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": variables(with_reference)},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def dashboards() -> dict[str, Json]:
    """File name -> dashboard JSON."""
    return {
        "sigma-overview.json": dashboard(
            "sigma-overview",
            "Sigma / Overview",
            "Sigma report runs watched by sigma-exporter: statuses, failures, API health, exporter health.",
            overview_panels(),
            with_reference=False,
        ),
        "sigma-reference.json": dashboard(
            "sigma-reference",
            "Sigma / Reference",
            "One Sigma reference (report run or report-group run): status timeline, reports, errors.",
            reference_panels(),
            with_reference=True,
        ),
    }


def render(document: Json) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    stale: list[str] = []
    for name, document in dashboards().items():
        path = args.output_dir / name
        text = render(document)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write("out of date (run `python grafana/generate.py`): " + ", ".join(stale) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
