"""A report identity's page: its last runs with Sigma's errors and its judged expected times, so that the
link in an alert leads to the run behind it. Server-rendered, no JavaScript, every value escaped. Pure."""

from __future__ import annotations

import time
from html import escape
from typing import Final

from sigma_exporter.metrics.links import identity_query
from sigma_exporter.runs.outcomes import ABANDONED, FAILURE, LOST, NO_DATA, SUCCESS
from sigma_exporter.runs.store.records import ExpectedRun, History, HistoryRun, IdentityRecord
from sigma_exporter.web.api.history import HISTORY_PATH
from sigma_exporter.web.statuspage import STYLE, duration_text

OUTCOME_COLOURS: Final = {
    SUCCESS: "#2ca02c",
    NO_DATA: "#7f7f7f",
    FAILURE: "#d62728",
    ABANDONED: "#ff7f0e",
    LOST: "#8c564b",
}


def _stamp(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _ago(timestamp: float | None, now: float) -> str:
    if not timestamp:
        return "never"
    return f"{_stamp(timestamp)} ({duration_text(max(0.0, now - timestamp))} ago)"


PAGE_STYLE: Final = STYLE + "td.nowrap{white-space:nowrap}\n"


def _badge(text: str, colour: str) -> str:
    return f'<span class="status" style="background:{colour}">{escape(text)}</span>'


def _run_row(run: HistoryRun) -> str:
    outcome = _badge(run.outcome, OUTCOME_COLOURS.get(run.outcome, "#555"))
    failed = ' class="late"' if run.outcome in (FAILURE, ABANDONED, LOST) else ""
    return (
        f'<tr{failed}><td class="nowrap"><code>{escape(run.reference)}</code></td><td>{escape(run.kind)}</td>'
        f'<td>{escape(run.source)}</td><td class="nowrap">{escape(_stamp(run.started_at))}</td>'
        f'<td class="nowrap">{escape(_stamp(run.final_at))}</td><td>{escape(duration_text(run.duration_seconds))}</td>'
        f'<td>{outcome}</td><td class="err nowrap">{escape(run.error_code)}</td>'
        f"<td class=err>{escape(run.error_message)}</td></tr>"
    )


def _expected_row(item: ExpectedRun) -> str:
    if item.late:
        verdict = _badge("LATE", "#ff7f0e")
    elif item.missed:
        verdict = _badge("MISSED", "#d62728")
    else:
        verdict = _badge("ON TIME", "#2ca02c")
    marked = ' class="late"' if item.missed else ""
    return (
        f"<tr{marked}><td>{escape(_stamp(item.expected_at))}</td><td>{escape(_stamp(item.started_at))}</td>"
        f"<td>{verdict}</td></tr>"
    )


def title_of(record: IdentityRecord) -> str:
    """How the page names an identity: its name, else its ids."""
    ids = " / ".join(i for i in (record.report_group_id, record.report_id) if i)
    return f"{record.report_name} ({ids})" if record.report_name else ids


def render_report_page(history: History, now: float | None = None) -> str:
    """The page of an identity with its `history` (newest first). Pure."""
    now = time.time() if now is None else now
    record = history.identity
    title = title_of(record)
    labels = ", ".join(f"{k}={v}" for k, v in record.labels) or "none"
    counts = ", ".join(f"{outcome} {n}" for outcome, n in record.outcomes) or "none yet"
    runs = (
        "\n".join(_run_row(r) for r in history.runs) or '<tr><td colspan="9">No run has ended yet.</td></tr>'
    )
    expected = "\n".join(_expected_row(e) for e in history.expected)
    expected_section = (
        f"""<h2>Expected runs</h2>
<table>
<thead><tr><th>Expected at</th><th>Started at</th><th>Verdict</th></tr></thead>
<tbody>
{expected}
</tbody></table>
"""
        if expected
        else ""
    )
    query = identity_query(record.report_group_id, record.report_id)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · Sigma exporter</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{PAGE_STYLE}</style></head>
<body>
<p><a href="./">← Status page</a> · <a href=".{escape(HISTORY_PATH)}?{escape(query)}">JSON</a></p>
<h1>{escape(title)}</h1>
<p>Group: <code>{escape(record.report_group_id or "none")}</code> · report: <code>{escape(record.report_id or "none")}</code>
 · labels: {escape(labels)}</p>
<p>Last success: <strong>{escape(_ago(record.last_success, now))}</strong> ·
last failure: <strong>{escape(_ago(record.last_failure, now))}</strong> ·
last duration: {escape(duration_text(record.last_duration) or "none")} · runs by outcome: {escape(counts)}</p>
<h2>Last runs</h2>
<table>
<thead><tr><th>Reference</th><th>Kind</th><th>Source</th><th>Started</th><th>Final</th><th>Duration</th>
<th>Outcome</th><th>Error code</th><th>Error message</th></tr></thead>
<tbody>
{runs}
</tbody></table>
{expected_section}</body></html>
"""


def render_not_found(report_group_id: str, report_id: str) -> str:
    """The page for an identity that is not held."""
    ids = escape(" / ".join(i for i in (report_group_id, report_id) if i) or "(none)")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Unknown report · Sigma exporter</title>
<style>{STYLE}</style></head>
<body><p><a href="./">← Status page</a></p><h1>No report {ids}</h1>
<p>No run of it has been seen, and no expectation names it.</p></body></html>
"""
