"""The collector, a pure function of a snapshot: the state set is complete, a run that is down has no
status series, `status_series: current` keeps only the current status, histograms are cumulative."""

from __future__ import annotations

from dataclasses import replace

from sigma_exporter.metrics.collector import reports_family, run_families
from sigma_exporter.metrics.families import Family, add_histogram, labels_text
from sigma_exporter.metrics.snapshot import ExporterInfo, ReferenceState, Snapshot
from sigma_exporter.runs.held import GroupCounts, ReportRow
from sigma_exporter.sigma.replies import ALL_STATUSES
from sigma_exporter.sigma.stats import ApiStats
from tests.support.factories import api_ref

INFO = ExporterInfo("1.0", "3.11")


def lines(snapshot: Snapshot, name: str) -> list[str]:
    sparse = snapshot.info.status_series == "current"
    (family,) = [
        f for f in (*run_families(snapshot.references, sparse), reports_family(snapshot)) if f.name == name
    ]
    return family.lines


def snapshot(*states: ReferenceState, status_series: str = "all") -> Snapshot:
    return Snapshot(
        info=replace(INFO, status_series=status_series), api=ApiStats().freeze(), references=states
    )


def up(reference: str, status: str) -> ReferenceState:
    return ReferenceState(api_ref(reference), True, reports=(ReportRow("", "rpt-1", "Daily", status, 5.0),))


def test_every_status_of_the_state_set_is_emitted_with_one_current() -> None:
    status = lines(snapshot(up("r1", "GENERATED")), "sigma_report_status")
    assert len(status) == len(ALL_STATUSES)
    current = [line for line in status if line.endswith(" 1.0\n")]
    assert current == [
        'sigma_report_status{reference="r1",report_group_id="",report_id="rpt-1",report_name="Daily",status="GENERATED"} 1.0\n'
    ]


def test_a_run_that_is_down_has_no_status_series_but_its_up_is_zero() -> None:
    down = ReferenceState(api_ref("r2"), False, last_error="timeout")
    snap = snapshot(up("r1", "FAILED"), down)
    assert all('reference="r2"' not in line for line in lines(snap, "sigma_report_status"))
    assert 'sigma_reference_up{kind="report",reference="r2"} 0.0\n' in lines(snap, "sigma_reference_up")
    totals = dict(line.rsplit(" ", 1) for line in lines(snap, "sigma_reports"))
    assert totals['sigma_reports{status="FAILED"}'] == "1.0\n"


def test_current_status_series_only() -> None:
    status = lines(snapshot(up("r1", "NOTIFIED"), status_series="current"), "sigma_report_status")
    assert len(status) == 1 and 'status="NOTIFIED"} 1.0' in status[0]


def test_group_counts_are_exported_as_the_api_sent_them() -> None:
    group = ReferenceState(
        replace(api_ref("g1"), kind="group"),
        True,
        reports=(ReportRow("MonthEnd", "m1", "Ledger", "PUBLISHED", 1.0),),
        group=GroupCounts(failures=None, successes=1, members=3),
    )
    snap = snapshot(group)
    assert lines(snap, "sigma_group_report_failures") == []  # none sent: none exported
    assert lines(snap, "sigma_group_report_members") == [
        'sigma_group_report_members{reference="g1",report_group_id="MonthEnd"} 3.0\n'
    ]


def test_label_values_are_escaped_and_sorted_by_name() -> None:
    assert labels_text([("z", 'a"b'), ("a", "back\\slash\nnew")]) == '{a="back\\\\slash\\nnew",z="a\\"b"}'
    assert labels_text([]) == ""


def test_a_histogram_is_written_cumulative_with_count_and_sum() -> None:
    family = Family("d", "doc", "histogram", ("k",))
    add_histogram(family, (("k", "v"),), (1.0, 5.0, float("inf")), (2, 0, 3), 12.5)
    assert family.lines == [
        'd_bucket{k="v",le="1.0"} 2.0\n',
        'd_bucket{k="v",le="5.0"} 2.0\n',
        'd_bucket{k="v",le="+Inf"} 5.0\n',
        'd_count{k="v"} 5.0\n',
        'd_sum{k="v"} 12.5\n',
    ]
