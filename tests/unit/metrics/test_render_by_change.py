"""The exposition rendered by change equals the full render, byte for byte once decompressed, after any
sequence of changes; and a snapshot in which nothing changed renders no bucket again."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from sigma_exporter.metrics.render import Exposition, render
from sigma_exporter.metrics.snapshot import (
    ExporterInfo,
    IdentityState,
    ReferenceState,
    RegistryState,
    Snapshot,
)
from sigma_exporter.runs.held import GroupCounts, ReportRow
from sigma_exporter.runs.store.records import IdentityRecord
from sigma_exporter.sigma.replies import ALL_STATUSES
from sigma_exporter.sigma.stats import ApiStats
from tests.support.factories import api_ref

BOUNDS = (10.0, 60.0)
API = ApiStats().freeze()


def run_state(n: int, status: str, up: bool, label: str) -> ReferenceState:
    ref = replace(api_ref(f"run-{n}", report_id=f"rpt-{n % 7}"), labels=(("team", label),) if label else ())
    if n % 5 == 0:  # a group run
        ref = replace(ref, kind="group", report_group_id="G")
        rows = (ReportRow("G", "m1", "M1", status, 1.0), ReportRow("G", "m2", "M2", "PUBLISHED", 2.0))
        return ReferenceState(ref, up, reports=rows, group=GroupCounts(0, 1, 2))
    return ReferenceState(
        ref,
        up,
        reports=(ReportRow("", ref.report_id, "Report", status, 3.0, "E1" if status == "FAILED" else ""),),
    )


def identity_state(n: int, successes: int) -> IdentityState:
    record = IdentityRecord(
        "",
        f"rpt-{n}",
        "Report",
        outcomes=(("success", successes),),
        bounds=BOUNDS,
        buckets=(successes, 0, 1),
        duration_sum=float(successes),
        last_success=float(successes) or None,
        # exemplars: OpenMetrics pieces of their own, whose references escape
        latest_runs=(("success", f"run-{n}-{successes}", float(successes)),) if successes else (),
        latest_buckets=((0, f'run-"{n}"\\{successes}', 0.5, float(successes)),) if successes else (),
    )
    return IdentityState(record, active=n % 2)


runs = st.dictionaries(
    st.integers(0, 60),
    st.tuples(st.sampled_from(ALL_STATUSES), st.booleans(), st.sampled_from(["", "ops", 'q"uote'])),
    max_size=40,
)
identities = st.dictionaries(st.integers(0, 30), st.integers(0, 3), max_size=20)


def snapshot_of(
    r: dict[int, tuple[str, bool, str]],
    i: dict[int, int],
    sparse: bool,
    kept: dict[int, tuple[tuple[str, bool, str], ReferenceState]] | None = None,
) -> Snapshot:
    """With `kept`, a run whose value did not change is the same state object as in the last snapshot, as
    the poller hands them over; without, every state is a new object."""
    states = []
    for n, value in r.items():
        previous = kept.get(n) if kept is not None else None
        state = previous[1] if previous is not None and previous[0] == value else run_state(n, *value)
        if kept is not None:
            kept[n] = (value, state)
        states.append(state)
    return Snapshot(
        info=ExporterInfo("1", "3", status_series="current" if sparse else "all"),
        api=API,
        references=tuple(states),
        identities=tuple(identity_state(n, v) for n, v in sorted(i.items())),
        registry=RegistryState(duration_bounds=BOUNDS),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(runs, identities, st.booleans()), min_size=1, max_size=8))
def test_rendered_by_change_equals_the_full_render(
    steps: list[tuple[dict[int, tuple[str, bool, str]], dict[int, int], bool]],
) -> None:
    incremental = Exposition()
    for r, i, sparse in steps:
        snapshot = snapshot_of(r, i, sparse)
        got, full = incremental.render(snapshot), render(snapshot)
        assert got.text == full.text
        assert got.openmetrics == full.openmetrics
        assert gzip.decompress(got.text_gzip) == full.text
        assert gzip.decompress(got.openmetrics_gzip) == full.openmetrics


value = st.tuples(st.sampled_from(ALL_STATUSES), st.booleans(), st.sampled_from(["", "ops"]))


@settings(max_examples=60, deadline=None)
@given(
    runs,
    st.lists(st.dictionaries(st.integers(0, 60), st.one_of(st.none(), value), max_size=6), max_size=8),
)
def test_runs_edited_in_place_as_the_poller_does_render_as_the_full_render(
    start: dict[int, tuple[str, bool, str]], edits: list[dict[int, tuple[str, bool, str] | None]]
) -> None:
    """The poller's cycles: most runs the same objects in the same order, a few changed, came or went."""
    incremental = Exposition()
    kept: dict[int, tuple[tuple[str, bool, str], ReferenceState]] = {}
    r = dict(start)
    for edit in [{}, *edits]:
        for n, change in edit.items():
            if change is None:
                r.pop(n, None)
            else:
                r[n] = change
        snapshot = snapshot_of(r, {}, False, kept)
        got, full = incremental.render(snapshot), render(snapshot)
        assert got.text == full.text
        assert gzip.decompress(got.text_gzip) == full.text


def test_nothing_changed_nothing_rendered_again_and_one_change_one_bucket() -> None:
    r = dict.fromkeys(range(400), ("PUBLISHED", True, "ops"))
    i = dict.fromkeys(range(30), 1)
    exposition = Exposition()
    exposition.render(snapshot_of(r, i, False))
    first = exposition.buckets_rendered
    exposition.render(snapshot_of(r, i, False))  # new state objects, the same series
    assert exposition.buckets_rendered == first
    r[7] = ("FAILED", True, "ops")
    exposition.render(snapshot_of(r, i, False))
    assert exposition.buckets_rendered == first + 1


def test_the_gzip_body_is_one_member_that_a_first_member_reader_reads_whole() -> None:
    """curl --compressed (and urllib3's decoder when a member ends at a read boundary) read one member
    only: the joined body must be one, checked by a decoder that stops at the first member's end."""
    r = {n: ("FAILED" if n % 3 else "PUBLISHED", True, "ops") for n in range(200)}
    exposition = Exposition()
    for changed in (None, 5, 17):
        if changed is not None:
            r[changed] = ("NOTIFIED", True, "")
        got = exposition.render(snapshot_of(r, dict.fromkeys(range(12), 2), False))
        for body, plain in ((got.text_gzip, got.text), (got.openmetrics_gzip, got.openmetrics)):
            reader = zlib.decompressobj(31)
            assert reader.decompress(body) == plain
            assert reader.eof and reader.unused_data == b""
