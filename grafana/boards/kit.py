"""The parts every dashboard shares, on grafana-foundation-sdk's typed builders: the datasource, queries,
the common panel shapes, the variables, the links between the dashboards, the status vocabulary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeVar

from grafana_foundation_sdk.builders import (
    bargauge,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

DATASOURCE: Final = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS: Final = ["sigma-exporter", "sigma"]

#: The label selector of every query: the chosen job and instances (shards).
SEL: Final = 'job="$job", instance=~"$instance"'
#: ... plus the chosen reference (reference dashboard).
REF_SEL: Final = f'{SEL}, reference="$reference"'
#: ... plus the chosen report identities (reports dashboard).
IDENTITY_SEL: Final = f'{SEL}, report_group_id=~"$report_group_id", report_id=~"$report_id"'

# The statuses of the `status` label, with the number and colour the status timeline shows them with.
STATUS_CODES: Final[tuple[tuple[str, int, str], ...]] = (
    ("GENERATED", 1, "blue"),
    ("PUBLISHED", 2, "green"),
    ("NOTIFIED", 3, "dark-green"),
    ("NO_DATA_AVAILABLE", 4, "yellow"),
    ("NOTIFICATION_FAILED", 5, "orange"),
    ("FAILED", 6, "red"),
    ("PENDING", 7, "purple"),
    ("UNKNOWN", 8, "text"),
)
STUCK_SECONDS: Final = 3600  # colour threshold of waiting reports; keep in line with prometheus/alerts.yml

P = TypeVar(
    "P", timeseries.Panel, stat.Panel, table.Panel, bargauge.Panel, statetimeline.Panel, heatmap.Panel
)
PanelBuilder = Builder[dm.Panel]
Steps = Sequence[tuple[float | None, str]]


def query(
    expr: str, legend: str = "__auto", *, instant: bool = False, table_format: bool = False
) -> prometheus.Dataquery:
    """A Prometheus query on the dashboard's datasource; `table_format`: one row per series."""
    target = (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .editor_mode(QueryEditorMode.CODE)
        .expr(expr)
        .legend_format(legend)
        .format(PromQueryFormat.TABLE if table_format else PromQueryFormat.TIME_SERIES)
    )
    return target.instant() if instant else target.range()


def thresholds(steps: Steps) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in steps])
    )


def color_mode(mode: dm.FieldColorModeId) -> db.FieldColor:
    return db.FieldColor().mode(mode)


def fixed_color(color: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="color", value={"fixedColor": color, "mode": "fixed"})


def base(panel: P, title: str, description: str, targets: Sequence[prometheus.Dataquery]) -> P:
    """Title, description, datasource and the targets (refIds A, B, ...) of any panel."""
    panel = panel.title(title).description(description).datasource(DATASOURCE)
    return panel.targets([t.ref_id(chr(ord("A") + i)) for i, t in enumerate(targets)])


def timeseries_panel(
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    unit: str = "short",
    stack: bool = False,
    bars: bool = False,
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    legend = (
        cb.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )
    return (
        base(timeseries.Panel(), title, description, targets)
        .span(width)
        .height(height)
        .unit(unit)
        .color_scheme(color_mode(dm.FieldColorModeId.PALETTE_CLASSIC))
        .thresholds(thresholds([(None, "green")]))
        .draw_style(cm.GraphDrawStyle.BARS if bars else cm.GraphDrawStyle.LINE)
        .fill_opacity(20 if stack else 10)
        .line_width(1)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            cb.StackingConfig().group("A").mode(cm.StackingMode.NORMAL if stack else cm.StackingMode.NONE)
        )
        .legend(legend)
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )


def stat_panel(
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    unit: str = "short",
    steps: Steps = ((None, "green"),),
    width: int = 6,
    height: int = 4,
) -> stat.Panel:
    return (
        base(stat.Panel(), title, description, targets)
        .span(width)
        .height(height)
        .unit(unit)
        .color_scheme(color_mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds(steps))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
        .text_mode(cm.BigValueTextMode.AUTO)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
    )


def table_panel(
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    columns: dict[str, str] | None = None,
    hide: Sequence[str] = (),
    width: int = 12,
    height: int = 8,
) -> table.Panel:
    """Instant queries as a table, one row per series and its labels as columns. With one query, `columns`
    names its value column ({"Value": name}; no value column when None); with several, the queries are
    merged into one row per label set and `columns` renames "Value #A", "Value #B", ..."""
    exclude = dict.fromkeys(("Time", "__name__", "job", *hide), True)
    if columns is None:
        exclude["Value"] = True
    panel = (
        base(table.Panel(), title, description, targets)
        .span(width)
        .height(height)
        .thresholds(thresholds([(None, "green")]))
        .cell_height(cm.TableCellHeight.SM)
        .show_header(True)
        .align(cm.FieldTextAlignment.AUTO)
        .cell_options(cm.TableAutoCellOptions())
        .filterable(True)
    )
    if len(targets) > 1:
        panel = panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    organize = {"excludeByName": exclude, "renameByName": columns or {}}
    return panel.with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))


def value_mappings(options: Mapping[str, tuple[str | None, str]]) -> list[dm.ValueMapping]:
    """{value: (display text or None, colour)} as one value mapping."""
    return [
        dm.ValueMap(
            options={
                value: dm.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, (text, color)) in enumerate(options.items())
            }
        )
    ]


def up_mappings(up: str, down: str) -> list[dm.ValueMapping]:
    return value_mappings({"0": (down, "red"), "1": (up, "green")})


def status_overrides(panel: P) -> P:
    """Series named after a status (legend {{status}}) get that status's colour."""
    for status, _, color in STATUS_CODES:
        panel = panel.override_by_name(status, [fixed_color(color)])
    return panel


def rate(metric: str, selector: str = SEL) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def dashboard_link(uid: str, title: str, var: str, **vars_: str) -> dm.DashboardLink:
    """A data link from a table cell to another of our dashboards, keeping the datasource, job, instances
    and time range, and setting the variable `var` to the cell's value (plus any fixed `vars_`)."""
    extra = "".join(f"&var-{name}={value}" for name, value in vars_.items())
    url = (
        f"/d/{uid}/{uid}?${{datasource:queryparam}}&${{job:queryparam}}&${{instance:queryparam}}"
        f"&var-{var}=${{__value.raw}}{extra}&${{__url_time_range}}"
    )
    return db.DashboardLink(title).url(url).build()


def link_column(panel: table.Panel, column: str, *links: dm.DashboardLink) -> table.Panel:
    """The cells of `column` link to `links` (several: a menu)."""
    return panel.override_by_name(column, [dm.DynamicConfigValue(id_val="links", value=list(links))])


def query_variable(name: str, label: str, expr: str, *, include_all: bool = False) -> db.QueryVariable:
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": expr, "refId": "StandardVariableQuery"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(include_all)
        .include_all(include_all)
    )
    return variable.all_value(".*") if include_all else variable


def variables(*extra: db.QueryVariable) -> list[db.QueryVariable | db.DatasourceVariable]:
    """The datasource, job and instance drop-downs of every dashboard, then its own."""
    return [
        db.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        query_variable("job", "Job", "label_values(sigma_up, job)"),
        query_variable(
            "instance", "Instance", 'label_values(sigma_up{job="$job"}, instance)', include_all=True
        ),
        *extra,
    ]


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: Sequence[tuple[str, Sequence[PanelBuilder]]],
    variables_: Sequence[db.QueryVariable | db.DatasourceVariable],
) -> dm.Dashboard:
    """A dashboard of rows of panels (laid out left to right by the SDK), linked to the other Sigma
    dashboards by tag, with unique panel ids."""
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .version(1)
        .link(
            db.DashboardLink("Sigma dashboards")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["sigma-exporter"])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
            .icon("external link")
            .target_blank(False)
        )
        .variables(list(variables_))
    )
    for row_title, panels in rows:
        builder = builder.with_row(db.Row(row_title))
        for panel in panels:
            builder = builder.with_panel(panel)
    document = builder.build()
    for panel_id, item in enumerate(document.panels or [], start=1):
        item.id_val = panel_id
    return document
