"""A report identity's page and its JSON, pure: every run with its reference, outcome and Sigma's error,
escaped; verdicts on time, late and missed; links back and to the JSON that keep a path prefix; no
JavaScript."""

from __future__ import annotations

import pytest

from sigma_exporter.runs.store.records import ExpectedRun, History, HistoryRun, IdentityRecord
from sigma_exporter.web.api.history import identity_of_query, view_of_history, view_of_identity
from sigma_exporter.web.reportpage import render_not_found, render_report_page

NOW = 1_800_000_000.0
MEMBER = IdentityRecord(
    "grp-eod",
    "rpt-a&b",
    "Balances <EU>",
    labels=(("team", "treasury"),),
    last_success=NOW - 3600,
    last_failure=NOW - 60,
    outcomes=(("failure", 1), ("success", 4)),
)
FAILED = HistoryRun(
    "grp-eod",
    "rpt-a&b",
    "REF-<1>",
    "group",
    "api",
    started_at=NOW - 160,
    final_at=NOW - 60,
    duration_seconds=100.0,
    outcome="failure",
    error_code="SIG-RPT-500",
    error_message="<img src=x onerror=alert(1)> failed",
)
OK = HistoryRun("grp-eod", "rpt-a&b", "REF-0", "group", "schedule", None, NOW - 86400, None, "success")
VERDICTS = (
    ExpectedRun("grp-eod", "rpt-a&b", NOW - 7200, missed=True),
    ExpectedRun("grp-eod", "rpt-a&b", NOW - 14400, started_at=NOW - 13000, late=True, missed=True),
    ExpectedRun("grp-eod", "rpt-a&b", NOW - 21600, started_at=NOW - 21590),
)


def test_the_page_shows_each_run_and_verdict_escaped_without_javascript() -> None:
    html = render_report_page(History(MEMBER, (FAILED, OK), VERDICTS), now=NOW)
    assert "<script" not in html and "onerror=alert" not in html.replace(
        "&lt;img src=x onerror=alert(1)&gt;", ""
    )
    assert "<h1>Balances &lt;EU&gt; (grp-eod / rpt-a&amp;b)</h1>" in html
    assert "<code>REF-&lt;1&gt;</code>" in html and "SIG-RPT-500" in html
    assert "&lt;img src=x onerror=alert(1)&gt; failed" in html
    assert html.index("REF-&lt;1&gt;") < html.index("REF-0")  # newest first, as given
    assert "<td>100.0s</td>" in html
    assert "(60.0s ago)" in html and "failure 1, success 4" in html and "team=treasury" in html
    assert [html.count(f">{v}</span>") for v in ("MISSED", "LATE", "ON TIME")] == [1, 1, 1]
    assert '<a href="./">' in html  # back to the status page, under any path prefix
    assert (
        '<a href="./api/v1/reports/history?report_group_id=grp-eod&amp;report_id=rpt-a%26b">JSON</a>' in html
    )


def test_a_report_without_runs_or_expectation_says_so() -> None:
    html = render_report_page(History(IdentityRecord("", "rpt-new")), now=NOW)
    assert "No run has ended yet." in html and "Expected runs" not in html and "never" in html
    assert "<b>" not in render_not_found("", "<b>x</b>") and "&lt;b&gt;x&lt;/b&gt;" in render_not_found(
        "", "<b>x</b>"
    )


def test_the_json_views_name_the_identity_and_its_links() -> None:
    view = view_of_history(History(MEMBER, (FAILED,), VERDICTS[:1]))
    assert view["runs"] == [
        {
            "reference": "REF-<1>",
            "kind": "group",
            "source": "api",
            "started_at": NOW - 160,
            "final_at": NOW - 60,
            "duration_seconds": 100.0,
            "outcome": "failure",
            "error_code": "SIG-RPT-500",
            "error_message": "<img src=x onerror=alert(1)> failed",
        }
    ]
    assert view["expected"] == [
        {"expected_at": NOW - 7200, "started_at": None, "late": False, "missed": True}
    ]
    assert (view["report_group_id"], view["report_id"], view["report_name"]) == (
        "grp-eod",
        "rpt-a&b",
        "Balances <EU>",
    )
    identity = view_of_identity(MEMBER)
    assert identity["page"] == "/report?report_group_id=grp-eod&report_id=rpt-a%26b"
    assert identity["history"] == "/api/v1/reports/history?report_group_id=grp-eod&report_id=rpt-a%26b"
    assert (identity["last_success"], identity["last_failure"], identity["runs"]) == (
        NOW - 3600,
        NOW - 60,
        {"failure": 1, "success": 4},
    )


def test_a_query_names_an_identity_by_either_id_trimmed() -> None:
    assert identity_of_query({"report_id": " rpt-1 "}) == ("", "rpt-1")
    assert identity_of_query({"report_group_id": "g", "report_id": ""}) == ("g", "")
    assert identity_of_query({}) == ("", "")  # names none: never held
    for bad in ({"report_id": "x" * 257}, {"report_group_id": "g" * 257}):
        with pytest.raises(ValueError, match="at most 256 characters"):
            identity_of_query(bad)
