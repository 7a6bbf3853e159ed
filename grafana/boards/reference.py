"""Sigma / Reference: one reference number (a report run or a group run): its status timeline, its
reports, its errors."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from boards.kit import (
    REF_SEL,
    SEL,
    STATUS_CODES,
    PanelBuilder,
    base,
    color_mode,
    dashboard,
    query,
    query_variable,
    rate,
    stat_panel,
    status_overrides,
    table_panel,
    thresholds,
    timeseries_panel,
    up_mappings,
    value_mappings,
    variables,
)

UID = "sigma-reference"


def status_code_expr(selector: str) -> str:
    """One series per report whose value is the number of its current status (see STATUS_CODES)."""
    parts = [
        f'(sigma_report_status{{{selector}, status="{status}"}} == 1) * {code}'
        for status, code, _ in STATUS_CODES
    ]
    return "max without (status) (\n  " + "\n  or\n  ".join(parts) + "\n)"


def timeline(title: str, description: str, expr: str, legend: str) -> statetimeline.Panel:
    return (
        base(statetimeline.Panel(), title, description, [query(expr, legend)])
        .color_scheme(color_mode(dm.FieldColorModeId.THRESHOLDS))
        .fill_opacity(80)
        .line_width(0)
        .merge_values(True)
        .show_value(cm.VisibilityMode.AUTO)
        .legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(False)
        )
    )


def _reference_row() -> list[PanelBuilder]:
    members = (
        f"(time() - sigma_report_status_since_timestamp_seconds{{{REF_SEL}}})\n"
        "* on (job, instance, reference, report_group_id, report_id) group_left (report_name, status)\n"
        f"(sigma_report_status{{{REF_SEL}}} == 1)"
    )
    status_texts = {status: (None, color) for status, _, color in STATUS_CODES}
    return [
        stat_panel(
            "Reference check",
            "sigma_reference_up: whether the last status check of this reference succeeded "
            "(alert SigmaReferenceCheckFailing).",
            query(f"sigma_reference_up{{{REF_SEL}}}", "{{kind}}", instant=True),
            steps=[(None, "red"), (1, "green")],
        ).mappings(up_mappings("UP", "DOWN")),
        stat_panel(
            "Group: failures / successes / members",
            "reportFailureCount, reportSuccessCount and noOfReports of a group run, as the API reports them "
            "(empty for an individual report).",
            query(f"sigma_group_report_failures{{{REF_SEL}}}", "failures", instant=True),
            query(f"sigma_group_report_successes{{{REF_SEL}}}", "successes", instant=True),
            query(f"sigma_group_report_members{{{REF_SEL}}}", "members", instant=True),
            width=8,
            steps=[(None, "blue")],
        ).override_by_name(
            "failures",
            [
                dm.DynamicConfigValue(
                    id_val="thresholds", value=thresholds([(None, "green"), (1, "red")]).build()
                )
            ],
        ),
        table_panel(
            "Reference labels",
            "The reference's kind and its own labels (sigma_reference_info), as alerts carry them.",
            query(f"sigma_reference_info{{{REF_SEL}}}", instant=True, table_format=True),
            width=10,
            height=4,
        ),
        timeline(
            "Status timeline",
            "The status of each report of this reference over time.",
            status_code_expr(REF_SEL),
            "{{report_name}} {{report_id}}",
        )
        .span(24)
        .height(8)
        .mappings(value_mappings({str(code): (status, color) for status, code, color in STATUS_CODES}))
        .thresholds(thresholds([(None, "text")]))
        .align_value(cm.TimelineValueAlignment.LEFT)
        .row_height(0.9)
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.SINGLE).sort(cm.SortOrder.NONE)),
        table_panel(
            "Reports",
            "Each report of this reference (the member reports of a group run), its current status and how long "
            "it has had it.",
            query(members, instant=True, table_format=True),
            columns={"Value": "In status for"},
            width=24,
        )
        .unit("s")
        .override_by_name(
            "status",
            [
                dm.DynamicConfigValue(id_val="mappings", value=value_mappings(status_texts)),
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
            ],
        ),
    ]


def _errors_row() -> list[PanelBuilder]:
    return [
        table_panel(
            "Report error codes",
            "Reports of this reference whose last reply carried an errorCode (sigma_report_error_info).",
            query(f"sigma_report_error_info{{{REF_SEL}}}", instant=True, table_format=True),
        ),
        timeline(
            "Reference check over time",
            "sigma_reference_up over time: red while the status checks of this reference fail.",
            f"sigma_reference_up{{{REF_SEL}}}",
            "{{reference}}",
        )
        .span(12)
        .height(8)
        .mappings(up_mappings("UP", "DOWN"))
        .thresholds(thresholds([(None, "red"), (1, "green")])),
        status_overrides(
            timeseries_panel(
                "Group reports by status",
                "Per group run, the number of its reports in each status (sigma_group_reports).",
                query(f"sum by (status) (sigma_group_reports{{{REF_SEL}}})", "{{status}}"),
                stack=True,
            )
        ),
        timeseries_panel(
            "API errors of the instance watching it",
            "Failed Sigma API calls per second by action and reason, of the exporter instance that watches this "
            "reference (the API metrics are per instance, not per reference).",
            query(
                f"sum by (job, instance, action, reason) ({rate('sigma_api_request_errors_total')}) > 0\n"
                f"and on (job, instance)\nsigma_reference_info{{{REF_SEL}}}",
                "{{instance}} {{action}} {{reason}}",
            ),
            unit="reqps",
        ),
    ]


def build() -> dm.Dashboard:
    return dashboard(
        UID,
        "Sigma / Reference",
        "One Sigma reference (report run or report-group run): status timeline, reports, errors.",
        [("Reference", _reference_row()), ("Errors", _errors_row())],
        variables(
            query_variable(
                "reference", "Reference", f"label_values(sigma_reference_info{{{SEL}}}, reference)"
            )
        ),
    )
