"""The floor: a bare urllib3 loop making the same status calls as the exporter (same JSON bodies, same
concurrency, one keep-alive pool, the reply parsed with json.loads) and nothing else. Prints one JSON line:
calls made, CPU seconds of this process spent making them (imports excluded) and wall seconds.

    python benchmarks/urllib3_loop.py --url http://127.0.0.1:9081/sigma/rest/reports --calls 1000
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import urllib3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--prefix", default="gen")
    parser.add_argument("--client-id", default="8HIG1002H6")
    parser.add_argument("--client-token", default="sample72695bf9-3932-4f60-88b5-2f-2hjd")
    args = parser.parse_args()
    pool = urllib3.PoolManager(maxsize=args.concurrency, retries=False, timeout=10.0)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    reply = pool.request(
        "POST",
        args.url + "/generate-token",
        body=json.dumps(
            {
                "action": "GENERATE_TOKEN",
                "authType": "APIKEY",
                "clientId": args.client_id,
                "clientToken": args.client_token,
            }
        ).encode(),
        headers=headers,
    )
    token = json.loads(reply.data)["headerMap"]["accessToken"].strip()
    url = args.url + "/report-status"
    cursor = iter(range(args.calls))
    lock = threading.Lock()
    failures = [0]

    def work() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            body = {
                "action": "REPORT_INSTANCE_STATUS_CHECK",
                "referenceNumber": f"{args.prefix}-r-{i:06d}",
                "accessToken": token,
            }
            response = pool.request("POST", url, body=json.dumps(body).encode(), headers=headers)
            header = json.loads(response.data)["headerMap"]
            if response.status != 200 or not header.get("reportStatus"):
                with lock:
                    failures[0] += 1

    cpu, wall = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(
        json.dumps(
            {
                "calls": args.calls,
                "failures": failures[0],
                "cpu_seconds": time.process_time() - cpu,
                "wall_seconds": time.monotonic() - wall,
            }
        )
    )


if __name__ == "__main__":
    main()
