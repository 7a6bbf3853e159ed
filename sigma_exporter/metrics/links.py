"""The links the exporter publishes for users to follow: an identity's page, under `--web.external-url`.
Pure."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlencode

#: The identity's page, relative to the exporter's root (a path prefix in front of it keeps working).
PAGE_PATH: Final = "report"


def identity_query(report_group_id: str, report_id: str) -> str:
    """The query that names an identity: `report_group_id=G&report_id=R`, both percent-escaped."""
    return urlencode({"report_group_id": report_group_id, "report_id": report_id}, quote_via=quote)


def report_page_url(external_url: str, report_group_id: str, report_id: str) -> str:
    """The page of a report identity: `<external-url>report?report_group_id=G&report_id=R`, both ids
    percent-escaped (either may be empty). `external_url` ends in "/" (web/external.py)."""
    return f"{external_url}{PAGE_PATH}?{identity_query(report_group_id, report_id)}"
