"""Sigma / Overview: every watched run's status, the failures, the Sigma API, the exporter's health."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, prometheus
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from boards.kit import (
    SEL,
    STUCK_SECONDS,
    PanelBuilder,
    base,
    dashboard,
    dashboard_link,
    link_column,
    query,
    rate,
    stat_panel,
    status_overrides,
    table_panel,
    thresholds,
    timeseries_panel,
    up_mappings,
    variables,
)

UID = "sigma-overview"
REFERENCE_LINK = dashboard_link("sigma-reference", "Open reference ${__value.raw}", "reference")


def latency_targets(selector: str) -> list[prometheus.Dataquery]:
    return [
        query(
            f"histogram_quantile({q}, sum by (le, action) ({rate('sigma_api_request_duration_seconds_bucket', selector)}))",
            f"p{round(q * 100)} {{{{action}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _reports_row() -> list[PanelBuilder]:
    failing = (
        f'(sigma_report_status{{{SEL}, status=~"FAILED|NOTIFICATION_FAILED"}} == 1)\n'
        f"* on (job, instance, reference) group_left (team)\nsigma_reference_info{{{SEL}}}"
    )
    waiting = (
        f"(time() - sigma_report_status_since_timestamp_seconds{{{SEL}}})\n"
        "* on (job, instance, reference, report_group_id, report_id) group_left (report_name, status)\n"
        f'(sigma_report_status{{{SEL}, status=~"GENERATED|PENDING"}} == 1)'
    )
    by_status = f"sum by (status) (sigma_reports{{{SEL}}})"
    group_failures = (
        base(
            bargauge.Panel(),
            "Group report failures",
            "reportFailureCount of each watched group run, as the API reports it (alert SigmaGroupReportFailures).",
            [
                query(
                    f"sigma_group_report_failures{{{SEL}}}", "{{reference}} {{report_group_id}}", instant=True
                )
            ],
        )
        .span(12)
        .height(8)
        .min(0)
        .thresholds(thresholds([(None, "green"), (1, "red")]))
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
    )
    return [
        status_overrides(
            stat_panel(
                "Reports by status",
                "Watched reports (individual reports and group members) in each status, now.",
                query(by_status, "{{status}}", instant=True),
                width=24,
                steps=[(None, "text")],
            )
        ),
        status_overrides(
            timeseries_panel(
                "Reports by status over time",
                "Watched reports in each status.",
                query(by_status, "{{status}}"),
                stack=True,
            )
        ),
        link_column(
            table_panel(
                "Failed reports",
                "Reports whose current status is FAILED or NOTIFICATION_FAILED (alerts SigmaReportFailed, "
                "SigmaReportNotificationFailed). Click a reference to open it.",
                query(failing, instant=True, table_format=True),
            ),
            "reference",
            REFERENCE_LINK,
        ),
        link_column(
            table_panel(
                "Waiting reports (GENERATED or PENDING)",
                f"Reports not yet published or without a status yet, and for how long. Orange after "
                f"{STUCK_SECONDS}s (alert SigmaReportStuck).",
                query(waiting, instant=True, table_format=True),
                columns={"Value": "Waiting for"},
            )
            .unit("s")
            .thresholds(thresholds([(None, "green"), (STUCK_SECONDS, "orange")]))
            .override_by_name(
                "Waiting for",
                [dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})],
            ),
            "reference",
            REFERENCE_LINK,
        ),
        group_failures,
        link_column(
            table_panel(
                "Report error codes",
                "Reports whose last reply carried an errorCode (sigma_report_error_info).",
                query(f"sigma_report_error_info{{{SEL}}}", instant=True, table_format=True),
                width=24,
            ),
            "reference",
            REFERENCE_LINK,
        ),
    ]


def _api_row() -> list[PanelBuilder]:
    return [
        timeseries_panel(
            "API latency p50 / p95 / p99 by action",
            "Quantiles of the Sigma API call latency (alert SigmaApiLatencyHigh on p95).",
            *latency_targets(SEL),
            unit="s",
        ),
        timeseries_panel(
            "API calls by action and code",
            'Sigma API calls per second by HTTP status (code "error": no HTTP status came back).',
            query(f"sum by (action, code) ({rate('sigma_api_requests_total')})", "{{action}} {{code}}"),
            unit="reqps",
        ),
        timeseries_panel(
            "API errors by reason",
            "Failed Sigma API calls per second by action and reason (only reasons that occur).",
            query(
                f"sum by (action, reason) ({rate('sigma_api_request_errors_total')}) > 0",
                "{{action}} {{reason}}",
            ),
            unit="reqps",
        ),
        timeseries_panel(
            "API error ratio by action",
            "Share of Sigma API calls that failed (alert SigmaApiErrorRatioHigh).",
            query(
                f"sum by (action) ({rate('sigma_api_request_errors_total')})\n"
                f"/\nsum by (action) ({rate('sigma_api_requests_total')})",
                "{{action}}",
            ),
            unit="percentunit",
        ).min(0),
    ]


def up_stat(title: str, description: str, expr: str, up: str = "UP", down: str = "DOWN") -> PanelBuilder:
    """A 0/1 series per instance, shown as the words `up` (green) and `down` (red)."""
    return stat_panel(
        title, description, query(expr, "{{instance}}", instant=True), steps=[(None, "red"), (1, "green")]
    ).mappings(up_mappings(up, down))


def _health_row() -> list[PanelBuilder]:
    return [
        up_stat(
            "Sigma API reachable",
            "sigma_up per exporter instance: the last poll cycle reached and authenticated against Sigma "
            "(alert SigmaApiDown).",
            f"sigma_up{{{SEL}}}",
        ),
        up_stat(
            "Exporter scraped",
            "Prometheus's `up` for each exporter instance (alert SigmaExporterDown).",
            f"up{{{SEL}}}",
        ),
        stat_panel(
            "Last poll age",
            "Seconds since the last poll cycle ended (alert SigmaPollsStalled).",
            query(f"time() - sigma_last_poll_timestamp_seconds{{{SEL}}}", "{{instance}}", instant=True),
            unit="s",
            steps=[(None, "green"), (300, "orange"), (600, "red")],
        ),
        up_stat(
            "Config reload",
            "Whether the last configuration (re)load succeeded (alert SigmaConfigReloadFailed).",
            f"sigma_config_last_reload_successful{{{SEL}}}",
            "OK",
            "FAILED",
        ),
        timeseries_panel(
            "Poll duration",
            "Duration of the last poll cycle per instance; it should stay below poll.interval_seconds.",
            query(f"sigma_poll_duration_seconds{{{SEL}}}", "{{instance}}"),
            unit="s",
        ),
        timeseries_panel(
            "Skipped checks",
            "Reference checks left undone because a poll cycle ran out of its interval (alert SigmaPollChecksSkipped).",
            query(
                f"sum by (instance) (increase(sigma_poll_checks_skipped_total{{{SEL}}}[$__rate_interval]))",
                "{{instance}}",
            ),
        ).min(0),
        timeseries_panel(
            "Watched references",
            "References watched, by kind, and how many of them failed their last check (sigma_reference_up == 0).",
            query(f"sum by (kind) (sigma_references{{{SEL}}})", "{{kind}}"),
            query(f"sum by (kind) (1 - sigma_reference_up{{{SEL}}})", "failing {{kind}}"),
        ).min(0),
        timeseries_panel(
            "Last successful config reload",
            "When each instance last (re)loaded its configuration successfully.",
            query(f"sigma_config_last_reload_success_timestamp_seconds{{{SEL}}} * 1000", "{{instance}}"),
            unit="dateTimeAsIso",
        ),
        table_panel(
            "Exporter instances",
            "Version and shard of each exporter instance.",
            query(
                f"sigma_exporter_build_info{{{SEL}}}\n"
                f"* on (job, instance) group_left (shard_index, shard_count)\nsigma_exporter_shard{{{SEL}}}",
                instant=True,
                table_format=True,
            ),
            width=24,
            height=6,
        ),
    ]


def build() -> dm.Dashboard:
    return dashboard(
        UID,
        "Sigma / Overview",
        "Sigma report runs watched by sigma-exporter: statuses, failures, API health, exporter health.",
        [("Reports", _reports_row()), ("Sigma API", _api_row()), ("Exporter health", _health_row())],
        variables(),
    )
