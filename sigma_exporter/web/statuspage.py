"""The HTML status page: server-rendered, no JavaScript, every value escaped. A pure function."""

from __future__ import annotations

import time
from dataclasses import replace
from html import escape
from typing import Final

from sigma_exporter.metrics.links import PAGE_PATH, identity_query
from sigma_exporter.metrics.snapshot import IdentityState, ReferenceState, Snapshot
from sigma_exporter.runs.store.records import IdentityRecord

COLOURS: Final = {
    "GENERATED": "#1f77b4",
    "PUBLISHED": "#2ca02c",
    "NOTIFIED": "#2ca02c",
    "FAILED": "#d62728",
    "NOTIFICATION_FAILED": "#ff7f0e",
    "NO_DATA_AVAILABLE": "#7f7f7f",
    "PENDING": "#9467bd",
    "UNKNOWN": "#8c564b",
    "DOWN": "#d62728",
}
STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f4f4f4}
.status{color:#fff;border-radius:3px;padding:.1em .4em;font-weight:600;font-size:.85em;white-space:nowrap}
.err{color:#a00}
tr.late td{background:#fde8e8}
.late-flag{color:#fff;background:#d62728;border-radius:3px;padding:.1em .4em;font-weight:600;font-size:.85em}
"""


def _when(timestamp: float | None, now: float) -> str:
    if not timestamp:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    ago = max(0, int(now - timestamp))
    return f"{stamp} ({ago}s ago)"


def _badge(status: str) -> str:
    colour = COLOURS.get(status, "#555")
    return f'<span class="status" style="background:{colour}">{escape(status)}</span>'


def _rows(state: ReferenceState, now: float) -> list[str]:
    ref = escape(state.ref.reference)
    labels = escape(", ".join(f"{k}={v}" for k, v in state.ref.labels))
    last_check = escape(_when(state.last_check, now))
    if not state.up:
        error = escape(state.last_error or "not checked yet")
        status = _badge("DOWN") if state.last_check else _badge("PENDING")
        return [
            f"<tr><td>{ref}</td><td>{state.ref.kind}</td><td>{labels}</td><td></td><td>{status}</td>"
            f"<td></td><td>{last_check}</td><td class=err>{error}</td></tr>"
        ]
    lines = []
    for row in state.reports:
        name = escape(row.report_name or row.report_id or "(not named yet)")
        if row.report_group_id:
            name = f"{escape(row.report_group_id)} / {name}"
        error = escape(" ".join(p for p in (row.error_code, row.error_msg) if p))
        lines.append(
            f"<tr><td>{ref}</td><td>{state.ref.kind}</td><td>{labels}</td><td>{name}</td>"
            f"<td>{_badge(row.status)}</td><td>{escape(_when(row.since, now))}</td><td>{last_check}</td>"
            f"<td class=err>{error}</td></tr>"
        )
    return lines


def duration_text(seconds: float | None) -> str:
    """A duration for people: seconds, minutes or hours (empty for none)."""
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _identity_row(state: IdentityState, now: float) -> str:
    """A row of an identity this shard owns: its live state."""
    verdict = state.verdict
    if verdict is None:
        return _summary_row(state.record, state.active, now)
    return _summary_row(
        replace(
            state.record,
            missed=verdict.missed,
            overdue=verdict.overdue,
            missed_total=verdict.missed_total,
            next_expected_at=verdict.next_expected_at,
        ),
        state.active,
        now,
    )


def _summary_row(record: IdentityRecord, active: int, now: float) -> str:
    """A row of the Reports table: the identity's summary as its owner keeps it."""
    name = record.report_name or record.report_id or record.report_group_id
    if record.report_group_id and record.report_id:
        name = f"{record.report_group_id} / {name}"
    kind = "group" if record.report_group_id and not record.report_id else "report"
    flags = []
    if record.missed:
        flags.append('<span class="late-flag">MISSED</span>')
    if record.overdue:
        flags.append('<span class="late-flag">OVERDUE</span>')
    missed_total = f" · {record.missed_total} missed in all" if record.missed_total else ""
    expected = ""
    if record.next_expected_at is not None:
        ahead = max(0, int(record.next_expected_at - now))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.next_expected_at))
        expected = escape(f"{stamp} (in {ahead}s)")
    late = ' class="late"' if flags else ""
    link = f'<a href="{escape(PAGE_PATH)}?{escape(identity_query(*record.key))}">{escape(name)}</a>'
    return (
        f"<tr{late}><td>{link}</td><td>{kind}</td><td>{escape(_when(record.last_success, now))}</td>"
        f"<td>{escape(_when(record.last_failure, now))}</td><td>{escape(duration_text(record.last_duration))}</td>"
        f"<td>{active}</td><td>{expected}</td><td>{' '.join(flags)}{escape(missed_total)}</td></tr>"
    )


def _reports_section(
    snapshot: Snapshot, now: float, stored: tuple[IdentityRecord, ...] | None, unreadable: bool
) -> str:
    """Every identity: the ones this shard owns live, the others as their owners keep them in the store
    (`stored`; None: this shard's only, and with `unreadable` it says the store could not be read)."""
    live = {state.record.key: state for state in snapshot.identities}
    note = ""
    if unreadable:
        note = "<p>The state store cannot be read now: only the reports this shard owns are listed.</p>\n"
    if stored is None:
        rows = [_identity_row(state, now) for state in snapshot.identities]
    else:
        keys = sorted({*live, *(r.key for r in stored)})
        records = {r.key: r for r in stored}
        rows = [
            _identity_row(live[key], now)
            if key in live
            else _summary_row(records[key], records[key].active, now)
            for key in keys
        ]
    empty = '<tr><td colspan="8">No report has run or is expected yet.</td></tr>'
    return f"""<h2>Reports</h2>
{note}<table>
<thead><tr><th>Report</th><th>Kind</th><th>Last success</th><th>Last failure</th><th>Last duration</th>
<th>Active runs</th><th>Next expected</th><th>Missed / overdue</th></tr></thead>
<tbody>
{chr(10).join(rows) or empty}
</tbody></table>
"""


def render_status_page(
    snapshot: Snapshot,
    now: float | None = None,
    stored: tuple[IdentityRecord, ...] | None = None,
    *,
    unreadable: bool = False,
) -> str:
    """The status page of `snapshot` as HTML: the Reports table (with the identities `stored` that other
    shards own; `unreadable`: the store could not be read) and the Runs table, times relative to `now`.
    Pure."""
    now = time.time() if now is None else now
    info = snapshot.info
    up = "yes" if snapshot.up else "no"
    body = [row for state in snapshot.references for row in _rows(state, now)]
    empty = '<tr><td colspan="8">No references are watched.</td></tr>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sigma exporter</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>Sigma exporter</h1>
<p><a href="/metrics">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a>
 · Reload: <code>POST /-/reload</code></p>
<p>Version {escape(info.version)} · shard {info.shard_index + 1} of {info.shard_count} ·
Sigma reachable: <strong>{up}</strong> · poll cycles: {snapshot.cycles} ·
last poll: {escape(_when(snapshot.last_poll, now))} ({snapshot.poll_duration:.2f}s) ·
last config reload: {"ok" if snapshot.reload.successful else "FAILED: " + escape(snapshot.reload.last_error)}</p>
{_reports_section(snapshot, now, stored, unreadable)}
<h2>Runs</h2>
<table>
<thead><tr><th>Reference</th><th>Kind</th><th>Labels</th><th>Report</th><th>Status</th><th>Since</th>
<th>Last check</th><th>Last error</th></tr></thead>
<tbody>
{chr(10).join(body) or empty}
</tbody></table>
</body></html>
"""
