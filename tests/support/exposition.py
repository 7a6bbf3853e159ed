"""Random snapshots for exposition checks, odd label values included (quotes, backslashes, newlines,
non-ASCII, user labels, groups, errors, pending rows, both status_series modes), and the round trip that
proves the exposition canonical: the text and OpenMetrics bodies parse and re-render byte for byte through
prometheus_client's own parser and writer. Used by tests/unit/metrics/test_exposition_canonical.py and by
benchmarks/check_exposition.py."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Iterator

from prometheus_client.exposition import generate_latest as text_generate
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as om_generate
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from sigma_exporter.config.load import Reference
from sigma_exporter.metrics.exposition import OM_EOF
from sigma_exporter.metrics.render import render
from sigma_exporter.metrics.snapshot import (
    ExporterInfo,
    ReferenceState,
    ReloadState,
    Snapshot,
)
from sigma_exporter.runs.held import GroupCounts, ReportRow
from sigma_exporter.sigma.replies import ALL_STATUSES
from sigma_exporter.sigma.stats import ApiStats

ODD = ["", "plain", 'quo"te', "back\\slash", "new\nline", "tab\tstop", "ünïcödé ✓", " spaced ", "a,b=c{d}"]


def _text(rng: random.Random) -> str:
    return rng.choice(ODD) if rng.random() < 0.3 else f"x{rng.randrange(10**6)}"


def snapshots(count: int, seed: int = 7) -> Iterator[Snapshot]:
    """`count` random snapshots, the same ones for the same seed."""
    rng = random.Random(seed)
    for index in range(count):
        stats = ApiStats()
        for _ in range(rng.randrange(0, 40)):
            action = rng.choice(
                ["GENERATE_TOKEN", "REPORT_INSTANCE_STATUS_CHECK", "REPORT_GROUP_INSTANCE_STATUS_CHECK"]
            )
            code = rng.choice(["200", "401", "500", "error"])
            reason = (
                None
                if code == "200"
                else rng.choice(["timeout", "connection", "unauthorized", "server_error"])
            )
            stats.observe(action, code, rng.choice([0.001, 0.02, 0.3, 7.0, 45.0, rng.random()]), reason)
        refs = []
        for i in range(rng.randrange(0, 25)):
            kind = rng.choice(["report", "group"])
            labels = tuple(
                sorted({(rng.choice(["team", "owner", "zone"]), _text(rng)) for _ in range(rng.randrange(3))})
            )
            ref = Reference(f"{_text(rng)}-{i}", kind, labels)
            up = rng.random() < 0.8
            rows = []
            group_id = _text(rng) if kind == "group" else ""
            for j in range(1 if kind == "report" else rng.randrange(1, 4)):
                status = rng.choice(ALL_STATUSES)
                # a run with no status yet has one nameless row (a group's pending row stands alone)
                pending = status == "PENDING" and j == 0 and rng.random() < 0.5
                rows.append(
                    ReportRow(
                        report_group_id="" if pending else group_id,
                        report_id="" if pending else f"{_text(rng)}{j}",
                        report_name="" if pending else _text(rng),
                        status=status,
                        since=rng.choice([0.0, 1.5, 1_700_000_000.123456, 1e21]),
                        error_code=rng.choice(["", "", "E-1", 'E"2']),
                        error_msg=_text(rng),
                    )
                )
                if pending:
                    break
            group = (
                GroupCounts(rng.choice([None, 0, 3]), rng.choice([None, 1]), rng.choice([None, 2, 10**7]))
                if kind == "group"
                else None
            )
            refs.append(
                ReferenceState(
                    ref=ref,
                    up=up,
                    last_check=1.0,
                    reports=tuple(rows),
                    group=group,
                    last_error="boom" if not up else "",
                )
            )
        yield Snapshot(
            info=ExporterInfo(
                version="0.1.0",
                python_version="3.11.7",
                shard_index=index % 3,
                shard_count=3,
                status_series="current" if index % 4 == 3 else "all",
            ),
            api=stats.freeze(),
            references=tuple(refs),
            up=rng.random() < 0.5,
            cycles=index,
            poll_duration=rng.random() * 100,
            last_poll=1_700_000_000.0 + index,
            skipped_checks_total=rng.randrange(3),
            reload=ReloadState(successful=rng.random() < 0.5, last_success=1_600_000_000.0 + index),
        )


class Families:
    """A prometheus_client collector over parsed families."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def round_trip(count: int) -> int:
    """Renders `count` snapshots and round-trips both formats; the number of bodies that changed (each one
    named on stderr)."""
    failures = 0
    for index, snapshot in enumerate(snapshots(count)):
        rendered = render(snapshot)
        text = rendered.text.decode()
        again = text_generate(Families(text_parse(text)))
        if again != rendered.text:
            failures += 1
            print(f"snapshot {index}: text exposition is not canonical", file=sys.stderr)
        om = (rendered.openmetrics + OM_EOF).decode()
        again = om_generate(Families(om_parse(om)))  # type: ignore[no-untyped-call]
        if again != rendered.openmetrics + OM_EOF:
            failures += 1
            print(f"snapshot {index}: OpenMetrics exposition is not canonical", file=sys.stderr)
    return failures
