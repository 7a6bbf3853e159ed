"""An identity's page, as `report_url` on sigma_report_info: under the external URL, ids escaped, the
exporter's own label winning over a stored one, and none without an external URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sigma_exporter.metrics.links import report_page_url
from sigma_exporter.metrics.render import Exposition, render
from sigma_exporter.metrics.snapshot import ExporterInfo, IdentityState, RegistryState, Snapshot
from sigma_exporter.runs.store.records import IdentityRecord
from sigma_exporter.sigma.stats import ApiStats
from tests.support.exporter import select

BASE = "https://gw.example.com/sigma/"


@pytest.mark.parametrize(
    ("group", "report", "expected"),
    [
        ("", "rpt-daily", "report?report_group_id=&report_id=rpt-daily"),
        ("MonthEnd", "", "report?report_group_id=MonthEnd&report_id="),
        ("G 1", "a&b=c/d", "report?report_group_id=G%201&report_id=a%26b%3Dc%2Fd"),
        ("", "Bilanz-Ü+1", "report?report_group_id=&report_id=Bilanz-%C3%9C%2B1"),
    ],
)
def test_the_page_is_under_the_external_url_with_escaped_ids(group: str, report: str, expected: str) -> None:
    url = report_page_url(BASE, group, report)
    assert url == BASE + expected
    parts = urlsplit(url)
    assert parts.path == "/sigma/report"
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query == {"report_group_id": [group], "report_id": [report]}


def snapshot(external_url: str, labels: tuple[tuple[str, str], ...] = (("team", "ops"),)) -> Snapshot:
    identities = (
        IdentityState(IdentityRecord("", "rpt-daily", "Daily", labels=labels)),
        IdentityState(IdentityRecord("MonthEnd", "", "")),
    )
    return Snapshot(
        info=ExporterInfo("1", "3", external_url=external_url),
        api=ApiStats().freeze(),
        identities=identities,
        registry=RegistryState(duration_bounds=(10.0,)),
    )


def info_lines(text: bytes) -> dict[tuple[tuple[str, str], ...], float]:
    return select(text.decode(), "sigma_report_info")


def test_sigma_report_info_carries_the_page_of_each_identity() -> None:
    got = info_lines(render(snapshot(BASE)).text)
    assert sorted(dict(labels)["report_url"] for labels in got) == [
        BASE + "report?report_group_id=&report_id=rpt-daily",
        BASE + "report?report_group_id=MonthEnd&report_id=",
    ]
    daily = next(dict(labels) for labels in got if dict(labels)["report_id"] == "rpt-daily")
    assert daily["team"] == "ops" and daily["report_name"] == "Daily"


def test_no_external_url_no_report_url() -> None:
    got = info_lines(render(snapshot("")).text)
    assert len(got) == 2
    assert not any("report_url" in dict(labels) for labels in got)


def test_a_stored_report_url_label_gives_way_to_the_exporters() -> None:
    """A run registered before report_url was reserved may carry one: one label, the exporter's."""
    text = render(snapshot(BASE, (("report_url", "http://elsewhere/"), ("team", "ops")))).text.decode()
    line = next(line for line in text.splitlines() if line.startswith('sigma_report_info{report_group_id=""'))
    assert line.count("report_url=") == 1
    assert f'report_url="{BASE}report?report_group_id=&report_id=rpt-daily"' in line


def test_a_changed_external_url_renders_the_identities_again() -> None:
    exposition = Exposition()
    exposition.render(snapshot(BASE))
    for url in ("http://127.0.0.1:9842/", ""):
        assert exposition.render(snapshot(url)).text == render(snapshot(url)).text
