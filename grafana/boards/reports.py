"""Sigma / Reports: per report identity (report_group_id, report_id), across all its runs: when it last
succeeded, how its runs end, how long they take, and whether its expected runs happen on time."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from boards.kit import (
    IDENTITY_SEL as S,
)
from boards.kit import (
    SEL,
    PanelBuilder,
    base,
    dashboard,
    dashboard_link,
    fixed_color,
    link_column,
    query,
    query_variable,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
    value_mappings,
    variables,
)
from boards.reference import timeline

UID = "sigma-reports"
IDENTITY = "report_group_id, report_id"
#: Every series here is an identity series, exported by the identity's owner shard only (docs/metrics.md, "One
#: shard exports an identity"), so two of them pair up on `instance` too: while an owner change has two
#: shards export an identity, each table row stays one shard's (its report_url with its values). No panel
#: here joins a run's series (from the shard that polls it), which would have to join without `instance`.
ON_IDENTITY = f"on (job, instance, {IDENTITY})"


def with_info(expr: str) -> str:
    """`expr` (one series per identity) with the identity's name, page and team."""
    return f"({expr})\n* {ON_IDENTITY} group_left (report_name, report_url, team)\nsigma_report_info{{{S}}}"


def or_zero(expr: str) -> str:
    """`expr` (one series or none), 0 when it has none: a stat shows 0, not "No data"."""
    return f"{expr} or vector(0)"


LEGEND = "{{report_group_id}} {{report_id}}"
#: A data link to the row's identity page (the report_url label of sigma_report_info).
PAGE = "${__data.fields.report_url}"
#: Colour of each outcome of sigma_report_runs_total.
OUTCOME_COLORS = {
    "success": "green",
    "no_data": "yellow",
    "failure": "red",
    "abandoned": "orange",
    "lost": "purple",
}
#: sigma:alert_threshold:no_recent_success_periods in prometheus/alerts.yml.
NO_RECENT_SUCCESS_PERIODS = 2
PERIOD = (
    f"(sigma_report_next_expected_run_timestamp_seconds{{{S}}}\n"
    f"- {ON_IDENTITY}\nsigma_report_expected_run_timestamp_seconds{{{S}}})"
)
FLAG = {"0": ("no", "green"), "1": ("yes", "red")}


def _summary_row() -> list[PanelBuilder]:
    late = [(None, "green"), (1, "red")]
    return [
        stat_panel(
            "Identities",
            "Identities (report_group_id, report_id) the exporter knows: from runs, expectations and schedules.",
            query(or_zero(f"count(sigma_report_info{{{S}}})"), "identities", instant=True),
            steps=[(None, "blue")],
        ),
        stat_panel(
            "Missed now",
            "Identities whose latest expected run did not start within its grace (alert SigmaReportMissedRun).",
            query(or_zero(f"sum(sigma_report_run_missed{{{S}}})"), "missed", instant=True),
            steps=late,
        ),
        stat_panel(
            "Overdue now",
            "Identities with a run active for longer than max_duration_seconds (alert SigmaReportRunOverdue).",
            query(or_zero(f"sum(sigma_report_run_overdue{{{S}}})"), "overdue", instant=True),
            steps=[(None, "green"), (1, "orange")],
        ),
        stat_panel(
            "Active runs",
            "Runs held that have not reached a final status yet.",
            query(or_zero(f"sum(sigma_report_runs_active{{{S}}})"), "active", instant=True),
            steps=[(None, "blue")],
        ),
    ]


def _identity_table() -> PanelBuilder:
    columns = {
        "Value #B": "Since last success",
        "Value #C": "Since last failure",
        "Value #D": "Last duration",
        "Value #E": "Next expected in",
        "Value #F": "Missed",
        "Value #G": "Overdue",
        "Value #H": "Active runs",
    }
    panel = table_panel(
        "Report identities",
        "One row per identity: how long since its last success and failure, its last run's duration, when its "
        "next run is expected, and whether it is late now. Empty cells: never happened, or no expectation. "
        "Click a report_group_id or report_id for the identity's page on the exporter (its last 50 runs with "
        "Sigma's errorCode and errorMsg, its expected runs), or to show only that report here.",
        query(f"sigma_report_info{{{S}}}", instant=True, table_format=True),
        query(
            with_info(f"time() - sigma_report_last_success_timestamp_seconds{{{S}}}"),
            instant=True,
            table_format=True,
        ),
        query(
            with_info(f"time() - sigma_report_last_failure_timestamp_seconds{{{S}}}"),
            instant=True,
            table_format=True,
        ),
        query(with_info(f"sigma_report_last_run_duration_seconds{{{S}}}"), instant=True, table_format=True),
        query(
            with_info(f"sigma_report_next_expected_run_timestamp_seconds{{{S}}} - time()"),
            instant=True,
            table_format=True,
        ),
        query(with_info(f"sigma_report_run_missed{{{S}}}"), instant=True, table_format=True),
        query(with_info(f"sigma_report_run_overdue{{{S}}}"), instant=True, table_format=True),
        query(with_info(f"sigma_report_runs_active{{{S}}}"), instant=True, table_format=True),
        columns=columns,
        hide=["Value #A"],
        width=24,
        height=9,
    )
    for name in ("Since last success", "Since last failure", "Last duration", "Next expected in"):
        panel = panel.override_by_name(name, [dm.DynamicConfigValue(id_val="unit", value="s")])
    for name in ("Missed", "Overdue"):
        panel = panel.override_by_name(
            name,
            [
                dm.DynamicConfigValue(id_val="mappings", value=value_mappings(FLAG)),
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            ],
        )
    # report_url stays in the frame (hidden, not excluded) so that the identity columns can link to it.
    panel = panel.override_by_name("report_url", [dm.DynamicConfigValue(id_val="custom.hidden", value=True)])
    page = db.DashboardLink("Report page: last 50 runs, errors, expected runs").url(PAGE).build()
    only = dashboard_link(
        "sigma-reports", "Show only ${__value.raw}", "report_id", **{"report_group_id": "$__all"}
    )
    return link_column(link_column(panel, "report_group_id", page), "report_id", page, only)


def _success_row() -> list[PanelBuilder]:
    age_in_periods = (
        base(
            bargauge.Panel(),
            "Last success age, in periods of its expectation",
            "Time since each identity's last success divided by the period of its expectation (the gap between "
            f"its expected runs). Green under one period, orange up to {NO_RECENT_SUCCESS_PERIODS} and red beyond "
            "(alert SigmaReportNoRecentSuccess). Identities without an expectation, or that never succeeded, "
            "are in the table above.",
            [
                query(
                    f"(time() - sigma_report_last_success_timestamp_seconds{{{S}}})\n/ {ON_IDENTITY}\n{PERIOD}",
                    LEGEND,
                    instant=True,
                )
            ],
        )
        .span(12)
        .height(8)
        .min(0)
        .decimals(2)
        .thresholds(thresholds([(None, "green"), (1, "orange"), (NO_RECENT_SUCCESS_PERIODS, "red")]))
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
    )
    outcomes = timeseries_panel(
        "Runs by outcome",
        "Runs that ended, by outcome (each run counted once, at its first final status).",
        query(
            f"sum by (outcome) (increase(sigma_report_runs_total{{{S}}}[$__rate_interval]))", "{{outcome}}"
        ),
        stack=True,
        bars=True,
    ).min(0)
    for outcome, color in OUTCOME_COLORS.items():
        outcomes = outcomes.override_by_name(outcome, [fixed_color(color)])
    return [age_in_periods, outcomes]


def _duration_row() -> list[PanelBuilder]:
    bucket = f"sigma_report_run_duration_seconds_bucket{{{S}}}"
    durations = (
        base(
            heatmap.Panel(),
            "Run duration",
            "How long runs took (submitted or first seen, to the first final status), per time slot. The "
            "dots are exemplars: the latest run counted in a bucket, with its reference (Prometheus keeps them "
            "with --enable-feature=exemplar-storage).",
            [
                query(f"sum by (le) (increase({bucket}[$__rate_interval]))", "{{le}}")
                .format(PromQueryFormat.HEATMAP)
                .exemplar(True)
            ],
        )
        .span(12)
        .height(8)
        .calculate(False)
        .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Oranges").steps(64))
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .cell_values(heatmap.CellValues().unit("short"))
        .exemplars_color("rgba(255,0,255,0.7)")
    )
    quantiles: list[prometheus.Dataquery] = [
        query(
            f"histogram_quantile({q}, sum by (le, {IDENTITY}) (increase({bucket}[$__range])))",
            f"p{round(q * 100)} {LEGEND}",
            instant=True,
        )
        for q in (0.5, 0.95)
    ]
    return [
        durations,
        timeseries_panel(
            "Last run duration",
            "Duration of each identity's last run that ended.",
            query(f"sigma_report_last_run_duration_seconds{{{S}}}", LEGEND),
            unit="s",
        ).show_points(cm.VisibilityMode.AUTO),
        stat_panel(
            "Run duration p50 / p95 over the time range",
            "Quantiles of the run durations over the dashboard's time range, per identity (from the histogram "
            "buckets, metrics.duration_buckets).",
            *quantiles,
            unit="s",
            width=24,
            height=5,
            steps=[(None, "blue")],
        ),
    ]


def _expectation_row() -> list[PanelBuilder]:
    flags = value_mappings({"0": ("on time", "green"), "1": ("late", "red")})
    return [
        timeline(
            "Missed and overdue",
            "Per identity with an expectation: missed (its latest expected run did not start within grace) and "
            "overdue (a run active longer than max_duration_seconds).",
            f"sigma_report_run_missed{{{S}}}",
            f"missed {LEGEND}",
        )
        .with_target(query(f"sigma_report_run_overdue{{{S}}}", f"overdue {LEGEND}").ref_id("B"))
        .span(12)
        .height(8)
        .mappings(flags)
        .thresholds(thresholds([(None, "green"), (1, "red")])),
        timeseries_panel(
            "Missed runs",
            "Expected runs that never started within their grace, per time slot (each counted once).",
            query(
                f"sum by ({IDENTITY}) (increase(sigma_report_missed_runs_total{{{S}}}[$__rate_interval]))",
                LEGEND,
            ),
            bars=True,
        ).min(0),
        timeseries_panel(
            "Next expected run",
            "When each identity's next run is expected (from its expectation or schedule).",
            query(f"sigma_report_next_expected_run_timestamp_seconds{{{S}}} * 1000", LEGEND),
            unit="dateTimeAsIso",
            width=24,
        ),
    ]


def build() -> dm.Dashboard:
    return dashboard(
        UID,
        "Sigma / Reports",
        "Sigma reports by identity, across their runs: last success, outcomes, durations, missed and overdue runs.",
        [
            ("Now", _summary_row()),
            ("Identities", [_identity_table()]),
            ("Successes", _success_row()),
            ("Durations", _duration_row()),
            ("Expectations", _expectation_row()),
        ],
        variables(
            query_variable(
                "report_group_id",
                "Report group",
                f"label_values(sigma_report_info{{{SEL}}}, report_group_id)",
                include_all=True,
            ),
            query_variable(
                "report_id",
                "Report",
                f'label_values(sigma_report_info{{{SEL}, report_group_id=~"$report_group_id"}}, report_id)',
                include_all=True,
            ),
        ),
    )
