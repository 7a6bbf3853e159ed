"""Which of the quirks the exporter tolerates (shared/sigma-api.md) a status reply shows: what `doctor`
reports for each reference. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sigma_exporter.sigma.replies import DOCUMENTED_STATUSES


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _statuses(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reportStatus" and isinstance(item, str):
                yield item.strip()
            else:
                yield from _statuses(item)
    elif isinstance(value, list):
        for item in value:
            yield from _statuses(item)


def quirks(status: int, body: bytes) -> list[str]:
    """What a status reply shows of the quirks the exporter tolerates (shared/sigma-api.md). Pure."""
    found = []
    if status == 204 or not body.strip():
        return ["204 (no status yet)"]
    try:
        document = json.loads(body)
    except ValueError:
        return ["not JSON"]
    header = document.get("headerMap") if isinstance(document, dict) else None
    if not isinstance(header, dict):
        return ["no headerMap"]
    if any(text != text.strip() for text in _strings(document)):
        found.append("stray spaces")
    code = header.get("statusCode")
    if isinstance(code, str):
        found.append("string codes")
    if str(code).strip() == "204":
        found.append("204 in the body (no status yet)")
    elif code is not None and str(code).strip() != str(status):
        found.append(f"statusCode {str(code).strip()} under HTTP {status}")
    undocumented = sorted(set(_statuses(document)) - set(DOCUMENTED_STATUSES))
    if undocumented:
        found.append("undocumented status " + ", ".join(undocumented))
    return found
