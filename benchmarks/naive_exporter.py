"""The exporter a newcomer writes first: the baseline every benchmark figure is compared with.

It polls every reference one after the other with `requests.post` (no session: a new connection per
call), sets prometheus_client Gauges with labels (the same state set as sigma-exporter: one series per
status, 1 for the current one) and serves them with `start_http_server`. No concurrency, no skipping of
final reports, no caching of the exposition: written as plainly as the API documentation suggests.

    python benchmarks/naive_exporter.py --url http://127.0.0.1:9081/sigma/rest/reports \
        --references refs.txt --port 9843 --interval 60
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client import Gauge, start_http_server

STATUSES = [
    "GENERATED",
    "PUBLISHED",
    "NOTIFIED",
    "FAILED",
    "NOTIFICATION_FAILED",
    "NO_DATA_AVAILABLE",
    "PENDING",
    "UNKNOWN",
]

report_status = Gauge(
    "sigma_report_status",
    "Current status of each watched report.",
    ["reference", "report_group_id", "report_id", "report_name", "status"],
)
reference_up = Gauge("sigma_reference_up", "1 when the last check succeeded.", ["reference", "kind"])
poll_duration = Gauge("sigma_poll_duration_seconds", "Duration of the last poll cycle.")
last_poll = Gauge("sigma_last_poll_timestamp_seconds", "End of the last poll cycle.")


def get_token(url: str, client_id: str, client_token: str) -> str:
    reply = requests.post(
        url + "/generate-token",
        json={
            "action": "GENERATE_TOKEN",
            "authType": "APIKEY",
            "clientId": client_id,
            "clientToken": client_token,
        },
        timeout=10,
    )
    token: str = reply.json()["headerMap"]["accessToken"]
    return token.strip()


def check(url: str, token: str, reference: str) -> dict[str, Any]:
    reply = requests.post(
        url + "/report-status",
        json={"action": "REPORT_INSTANCE_STATUS_CHECK", "referenceNumber": reference, "accessToken": token},
        timeout=10,
    )
    reply.raise_for_status()
    header: dict[str, Any] = reply.json()["headerMap"]
    return header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--references", required=True, help="a file with one reference per line")
    parser.add_argument("--port", type=int, default=9843)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--client-id", default="8HIG1002H6")
    parser.add_argument("--client-token", default="sample72695bf9-3932-4f60-88b5-2f-2hjd")
    args = parser.parse_args()
    references = Path(args.references).read_text().split()

    start_http_server(args.port, addr="127.0.0.1")
    token = get_token(args.url, args.client_id, args.client_token)
    while True:
        started = time.time()
        for reference in references:
            try:
                header = check(args.url, token, reference)
                current = header.get("reportStatus", "PENDING").strip()
                for status in STATUSES:
                    report_status.labels(
                        reference,
                        "",
                        header.get("reportId", "").strip(),
                        header.get("reportName", "").strip(),
                        status,
                    ).set(1 if status == current else 0)
                reference_up.labels(reference, "report").set(1)
            except Exception:
                reference_up.labels(reference, "report").set(0)
        poll_duration.set(time.time() - started)
        last_poll.set(time.time())
        time.sleep(max(0.0, args.interval - (time.time() - started)))


if __name__ == "__main__":
    main()
