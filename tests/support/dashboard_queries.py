"""The PromQL queries of the Grafana dashboards, with Grafana's variables replaced by concrete values,
so that a test can run each of them against a real Prometheus (or parse it with promtool).

    for query in dashboard_queries(job="sigma-exporter", instance="127\\.0\\.0\\.1:9842", reference="ref-1"):
        query.uid, query.panel, query.expr

Substitutions: `$job` -> `job`, `$instance` -> `instance` (a regex, as the dashboards match it with =~),
`$reference` -> `reference`, `$report_id` -> `report_id` (a regex, ".*" by default) and `$report_group_id`
-> ".*"; they are escaped for a PromQL double-quoted string, where the
dashboards use them. `$__rate_interval` -> `1m`, `$__interval` -> `15s`, `$__range` -> `1h`.
A variable this module does not know raises ValueError, so a new dashboard variable cannot slip past
the tests unsubstituted. `$datasource` is a panel setting, never part of an expression.

Pure: reads the JSON files, no network, no pytest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tests.support.paths import ROOT

DASHBOARD_DIR = ROOT / "grafana" / "dashboards"

#: The reports dashboard's stat panels that count identities: 0 when none matches, not "No data".
COUNTING_STATS = ("Identities", "Missed now", "Overdue now", "Active runs")
#: Grafana's built-in interval variables, as a test evaluates them.
BUILTINS: Mapping[str, str] = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

# $name, ${name} and ${name:format}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::[\w-]+)?\}|(\w+))")
# label_values(<selector>, <label>) of a query variable
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$", re.DOTALL)


class DashboardQuery(NamedTuple):
    uid: str
    panel: str
    expr: str


def promql_string(value: str) -> str:
    """`value` escaped for the inside of a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace every Grafana variable of `expr` by its value (taken as is); unknown ones raise ValueError."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def _values(job: str, instance: str, reference: str, report_id: str = ".*") -> dict[str, str]:
    return {
        **BUILTINS,
        "job": promql_string(job),
        "instance": promql_string(instance),
        "reference": promql_string(reference),
        # The reports dashboard's identity drop-downs: group at "All", report at `report_id` (a regex).
        "report_group_id": ".*",
        "report_id": promql_string(report_id),
    }


def dashboard_files(directory: Path = DASHBOARD_DIR) -> list[Path]:
    return sorted(directory.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a dashboard object")
    return document


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows; rows themselves are skipped."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_queries(
    *,
    job: str,
    instance: str = ".*",
    reference: str = "",
    report_id: str = ".*",
    directory: Path = DASHBOARD_DIR,
) -> Iterator[DashboardQuery]:
    """(dashboard uid, panel title, substituted expr) for every target of every dashboard."""
    values = _values(job, instance, reference, report_id)
    for path in dashboard_files(directory):
        dashboard = load(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if expr.strip():
                    yield DashboardQuery(dashboard["uid"], panel["title"], substitute(expr, values))


def variable_queries(
    *, job: str, instance: str = ".*", directory: Path = DASHBOARD_DIR
) -> Iterator[DashboardQuery]:
    """(dashboard uid, "variable <name>", series selector) for each label_values() query variable: the
    selector whose series give the drop-down its values."""
    values = _values(job, instance, "")
    for path in dashboard_files(directory):
        dashboard = load(path)
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            match = _LABEL_VALUES.match(text)
            if not match:
                raise ValueError(f"{path}: variable {variable.get('name')}: not label_values(): {text!r}")
            yield DashboardQuery(
                dashboard["uid"], f"variable {variable['name']}", substitute(match["selector"], values)
            )
