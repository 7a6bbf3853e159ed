"""The links the exporter publishes for users to follow: an identity's page, under `--web.external-url`.
Pure."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def report_page_url(external_url: str, report_group_id: str, report_id: str) -> str:
    """The page of a report identity: `<external-url>report?report_group_id=G&report_id=R`, both ids
    percent-escaped (either may be empty). `external_url` ends in "/" (web/external.py)."""
    query = urlencode({"report_group_id": report_group_id, "report_id": report_id}, quote_via=quote)
    return f"{external_url}report?{query}"
