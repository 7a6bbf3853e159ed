"""The status page's Reports section: one row per report identity with last success, last failure, last
duration, next expected and missed/overdue, late rows in red, everything escaped, still no JavaScript."""

from __future__ import annotations

import re
from dataclasses import replace

from sigma_exporter.metrics.snapshot import ExporterInfo, IdentityState, initial_snapshot
from sigma_exporter.runs.expectations import Verdict
from sigma_exporter.runs.store.records import IdentityRecord
from sigma_exporter.sigma.stats import ApiStats
from sigma_exporter.web.statuspage import render_status_page

NOW = 1_800_000_000.0


def verdict(missed: bool = False, overdue: bool = False, missed_total: int = 0) -> Verdict:
    return Verdict(NOW - 60, NOW + 240, missed, overdue, missed_total, NOW + 240)


def page(*states: IdentityState) -> str:
    snapshot = initial_snapshot(ExporterInfo.of_this_process(0, 1, "all"), ApiStats())
    return render_status_page(replace(snapshot, identities=states), now=NOW)


def row_of(html: str, name: str) -> str:
    match = re.search(rf"<tr[^>]*><td><a href=[^>]*>{re.escape(name)}</a></td>.*?</tr>", html)
    assert match, name
    return match.group(0)


def test_each_identity_has_a_row_and_late_ones_are_red() -> None:
    good = IdentityRecord("", "rpt-daily", "DailyBalances", last_success=NOW - 30, last_duration=3.5)
    never = IdentityRecord("", "rpt-never")
    slow = IdentityRecord("grp-month", "", last_failure=NOW - 7200)
    html = page(
        IdentityState(good, 0, verdict()),
        IdentityState(never, 0, verdict(missed=True, missed_total=2)),
        IdentityState(slow, 1, verdict(overdue=True)),
    )
    assert "<h2>Reports</h2>" in html and "<script" not in html
    daily = row_of(html, "DailyBalances")
    assert 'class="late"' not in daily and "(30s ago)" in daily and "3.5s" in daily and "(in 240s)" in daily
    missing = row_of(html, "rpt-never")
    assert (
        missing.startswith('<tr class="late">')
        and ">MISSED</span>" in missing
        and "2 missed in all" in missing
    )
    assert "never" in missing  # no success yet
    overdue = row_of(html, "grp-month")
    assert (
        overdue.startswith('<tr class="late">')
        and ">OVERDUE</span>" in overdue
        and "<td>group</td>" in overdue
    )
    assert "(7200s ago)" in overdue


def test_each_identity_links_to_its_page_with_its_ids_escaped() -> None:
    member = IdentityRecord("grp &1", "rpt/a b", "Member")
    html = page(IdentityState(member, 0, None))
    assert (
        '<a href="report?report_group_id=grp%20%261&amp;report_id=rpt%2Fa%20b">grp &amp;1 / Member</a>'
        in row_of(html, "grp &amp;1 / Member")
    )


def test_an_identity_without_expectation_shows_no_next_time_and_names_are_escaped() -> None:
    hostile = IdentityRecord("", "rpt-x", "<img src=x>", last_success=NOW - 5)
    html = page(IdentityState(hostile, 0, None))
    row = row_of(html, "&lt;img src=x&gt;")
    assert "<img" not in html and "MISSED" not in row and "(in " not in row


def test_no_identity_yet_says_so() -> None:
    assert "No report has run or is expected yet." in page()


def test_identities_other_shards_own_are_listed_as_their_owners_keep_them() -> None:
    snapshot = initial_snapshot(ExporterInfo.of_this_process(1, 2, "all"), ApiStats())
    mine = IdentityRecord("", "rpt-mine", "Mine", last_success=NOW - 5)
    theirs = IdentityRecord(
        "",
        "rpt-theirs",
        "Theirs",
        last_failure=NOW - 60,
        missed=True,
        missed_total=3,
        active=2,
        next_expected_at=NOW + 120,
    )
    stale_mine = replace(mine, last_success=NOW - 3600)  # the store lags this shard's live state
    html = render_status_page(
        replace(snapshot, identities=(IdentityState(mine, 1, None),)), now=NOW, stored=(stale_mine, theirs)
    )
    row = row_of(html, "Theirs")
    assert 'class="late"' in row and "MISSED" in row and "3 missed in all" in row
    assert "<td>2</td>" in row and "(in 120s)" in row and "(60s ago)" in row
    assert "(5s ago)" in row_of(html, "Mine")  # its own identity live, not as stored
    assert "state store cannot be read" not in html
    unread = render_status_page(
        replace(snapshot, identities=(IdentityState(mine, 1, None),)), now=NOW, unreadable=True
    )
    assert "state store cannot be read" in unread and "Theirs" not in unread and "Mine" in unread
