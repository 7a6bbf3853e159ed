"""The quirks doctor names in a Sigma reply (sigma/quirks.py, pure): stray spaces, string codes, 204 in the
body, statusCode against the HTTP status, undocumented statuses, not JSON."""

from __future__ import annotations

import pytest

from sigma_exporter.sigma.quirks import quirks


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (204, b"", ["204 (no status yet)"]),
        (200, b'{"headerMap": {"statusCode": 200, "reportStatus": "PUBLISHED"}}', []),
        (
            200,
            b'{"headerMap": {"statusCode": "200 ", "reportStatus": " PUBLISHED"}}',
            ["stray spaces", "string codes"],
        ),
        (200, b'{"headerMap": {"statusCode": "204"}}', ["string codes", "204 in the body (no status yet)"]),
        (200, b'{"headerMap": {"statusCode": 500}}', ["statusCode 500 under HTTP 200"]),
        (
            200,
            b'{"headerMap": {"statusCode": 200, "reportStatus": "ARCHIVED"}}',
            ["undocumented status ARCHIVED"],
        ),
        (200, b"<html>", ["not JSON"]),
    ],
)
def test_quirks_of_a_reply(status: int, body: bytes, expected: list[str]) -> None:
    assert quirks(status, body) == expected
