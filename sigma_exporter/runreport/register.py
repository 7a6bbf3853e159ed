"""Registering a run that run-report started with an exporter's API (`POST /api/v1/runs`), as a scheduler's
job would: retried while the exporter answers 503 or cannot be reached (about 15 s in all)."""

from __future__ import annotations

import json
import time
from typing import Final

import requests

from sigma_exporter.config.secret import Secret

#: Tries of a registration answered 503 or not answered at all (about 15 s in all).
REGISTER_ATTEMPTS: Final = 5


def registration(kind: str, ident: str, reference: str, submitted_at: float) -> dict[str, object]:
    """The body of `POST /api/v1/runs` for a run of the report (or group) `ident`."""
    body: dict[str, object] = {"reference": reference, "kind": kind, "submitted_at": submitted_at}
    body["report_group_id" if kind == "group" else "report_id"] = ident
    return body


def register(
    exporter_url: str,
    api_token: Secret | None,
    body: dict[str, object],
    timeout: float,
) -> str | None:
    """Register the run with the exporter at `exporter_url`; None when it took it, else what went wrong
    (no secret)."""
    url = exporter_url.rstrip("/")
    if not url.endswith("/api/v1/runs"):
        url += "/api/v1/runs"
    headers = {"Content-Type": "application/json"}
    if api_token is not None:
        headers["Authorization"] = f"Bearer {api_token.reveal()}"
    data = json.dumps(body)
    problem = ""
    for attempt in range(REGISTER_ATTEMPTS):  # 503 (the store is busy) and connection errors are retried
        if attempt:
            time.sleep(min(8.0, 0.5 * 2**attempt))
        try:
            reply = requests.post(url, data=data, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            problem = f"cannot reach {url} ({type(exc).__name__})"
            continue
        if reply.status_code != 503:
            break
        problem = f"{url} answered 503 (its state store cannot write now)"
    else:
        return problem
    if reply.status_code in (200, 201):
        return None
    try:
        detail = str(reply.json().get("error", ""))[:200]
    except ValueError:
        detail = ""
    return f"{url} answered {reply.status_code}" + (f": {detail}" if detail else "")
