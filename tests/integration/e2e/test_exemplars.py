"""Exemplars end to end: simulator -> exporter -> the real Prometheus with `--enable-feature=exemplar-storage`
(it scrapes OpenMetrics), and the run's reference back from /api/v1/query_exemplars: on the run count of its
outcome and on each duration bucket at or above its duration, with a quote and a backslash in it, and at 119
code points; a reference of 120 has none (an exemplar's labels hold 128)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.metrics.families import escape_value
from sigma_exporter.simulator import Simulator
from sigma_exporter.simulator.scenario import ReportSpec, RunSpec, TimelineStep
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.prometheus import PrometheusProcess
from tests.support.runs import SCENARIO, config, register
from tests.support.scenarios import scenario_from

pytestmark = pytest.mark.e2e

#: report_id -> the reference of its one run
RUNS = {
    "rpt-quoted": 'e2e-"lone-quote\\and-backslash',
    "rpt-fits": ("e2e-fits-" + "x" * 120)[:118] + "é",  # 119 code points, 120 bytes in UTF-8
    "rpt-long": ("e2e-long-" + "y" * 120)[:119] + "é",  # 120
}
SELECT = 'report_id=~"rpt-quoted|rpt-fits|rpt-long"'


def names_the_run(exemplar: dict[str, Any], report_id: str) -> bool:
    """The exemplar's labels are the run's reference. Prometheus 2.42 keeps an exemplar's label values as
    the exposition wrote them (its OpenMetrics parser unescapes a series' labels, not an exemplar's), so a
    reference with a quote or a backslash comes back escaped: as OpenMetrics escapes it, nothing else (a
    quote left unescaped fails the whole scrape, a backslash left alone comes back single)."""
    reference = RUNS[report_id]
    return exemplar["labels"] in ({"reference": reference}, {"reference": escape_value(reference)})


@dataclass
class Stack:
    exporter: ExporterProcess
    prometheus: PrometheusProcess
    started: float

    def exemplars(self, name: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The exemplars of `name`'s series, by (report_id, outcome or le)."""
        found = self.prometheus.exemplars(f"{name}{{{SELECT}}}", self.started - 60, time.time() + 60)
        return {
            (
                series["seriesLabels"]["report_id"],
                series["seriesLabels"].get("le", "") or series["seriesLabels"].get("outcome", ""),
            ): series["exemplars"]
            for series in found
        }


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="sigma-exemplars-"))
    sim = Simulator(scenario_from(SCENARIO)).start()
    prometheus: PrometheusProcess | None = None
    try:
        (workdir / "exporter.yml").write_text(config(sim, workdir, metrics={"duration_buckets": [0.5, 600]}))
        with ExporterProcess(workdir / "exporter.yml") as exporter:
            prometheus = PrometheusProcess(
                workdir, [exporter.url.removeprefix("http://")], "--enable-feature=exemplar-storage"
            )
            prometheus.wait_ready()
            started = time.time()
            timeline = (TimelineStep("GENERATED", 2.0), TimelineStep("PUBLISHED"))
            sim.add_runs(
                [
                    RunSpec(reference, "report", (ReportSpec(report_id, report_id, timeline),))
                    for report_id, reference in RUNS.items()
                ]
            )
            for report_id, reference in RUNS.items():
                body = {"reference": reference, "kind": "report", "report_id": report_id}
                reply = register(exporter, {**body, "submitted_at": time.time()})
                assert reply.status_code == 201, reply.text
            yield Stack(exporter, prometheus, started)
    finally:
        if prometheus is not None:
            prometheus.stop()
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def counted_in_prometheus(stack: Stack) -> dict[str, float]:
    """report_id -> its success count as Prometheus scraped it, once all three runs are counted there."""

    def all_counted() -> dict[str, float] | None:
        rows = stack.prometheus.query(f'sigma_report_runs_total{{outcome="success",{SELECT}}} == 1')
        return {r["metric"]["report_id"]: float(r["value"][1]) for r in rows} if len(rows) == 3 else None

    counted: dict[str, float] = wait_for(all_counted, 60, interval=0.5, what="the three runs counted")
    return counted


def test_the_run_count_names_the_run_quote_and_backslash_included(stack: Stack) -> None:
    counted_in_prometheus(stack)
    ended = {
        r["metric"]["report_id"]: float(r["value"][1])
        for r in stack.prometheus.query(f"sigma_report_last_success_timestamp_seconds{{{SELECT}}}")
    }
    runs = stack.exemplars("sigma_report_runs_total")
    assert runs[("rpt-fits", "success")][0]["labels"] == {"reference": RUNS["rpt-fits"]}  # whole
    for report_id in ("rpt-quoted", "rpt-fits"):
        (exemplar,) = runs[(report_id, "success")]
        assert names_the_run(exemplar, report_id), exemplar
        assert float(exemplar["value"]) == 1.0
        assert exemplar["timestamp"] == pytest.approx(ended[report_id], abs=0.001)
    assert ("rpt-long", "success") not in runs  # 120 code points: no exemplar, not a cut one
    assert not any(key[1] != "success" for key in runs)  # no other outcome counted a run


def test_each_bucket_at_or_above_the_duration_names_the_run(stack: Stack) -> None:
    counted_in_prometheus(stack)
    took = {
        r["metric"]["report_id"]: float(r["value"][1])
        for r in stack.prometheus.query(f"sigma_report_last_run_duration_seconds{{{SELECT}}}")
    }
    assert all(0.5 < seconds < 600 for seconds in took.values()), took
    buckets = stack.exemplars("sigma_report_run_duration_seconds_bucket")
    for report_id in ("rpt-quoted", "rpt-fits"):
        assert (report_id, "0.5") not in buckets  # below its duration: counted nothing
        for le in ("600.0", "+Inf"):
            (exemplar,) = buckets[(report_id, le)]
            assert names_the_run(exemplar, report_id), exemplar
            assert float(exemplar["value"]) == pytest.approx(took[report_id], abs=1e-6)
    assert not any(report_id == "rpt-long" for report_id, _ in buckets)
