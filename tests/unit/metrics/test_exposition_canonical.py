"""Our own exposition writer (one pass, once per snapshot) must stay byte-identical to what
prometheus_client's reference parsers and writers make of it, in both formats, for odd label values too.
(benchmarks/check_exposition.py runs the same round trip over more snapshots.)"""

from __future__ import annotations

from tests.support.exposition import round_trip


def test_rendered_exposition_round_trips_through_prometheus_client() -> None:
    assert round_trip(60) == 0, "bodies not canonical: see stderr"
