"""Content negotiation of /metrics: gzip when Accept-Encoding allows it, whatever the order of its entries."""

from __future__ import annotations

import pytest

from sigma_exporter.metrics.exposition import accepts_gzip


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("identity, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("*", True),
        ("*;q=0, gzip", True),  # gzip named: its own weight counts, not the wildcard's
        ("gzip;q=0, *", False),
        ("deflate, br", False),
    ],
)
def test_gzip_when_allowed(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected
