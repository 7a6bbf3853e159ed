"""The Python floor for a durable registration: a bare `http.server` that parses the JSON body and inserts
one row into SQLite (WAL, synchronous=FULL, one connection behind a lock), answering 201, and then gives
each new run the same first status call as the exporter, from 8 threads over one keep-alive urllib3 pool.
No validation, no auth, no index for the API: what any Python service must at least spend on it.

    python benchmarks/registry_floor.py PORT DB SIGMA_URL
"""

from __future__ import annotations

import json
import queue
import socket
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import urllib3

LOCK = threading.Lock()
CHECKERS = 8
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def token_of(pool: urllib3.PoolManager, sigma_url: str) -> str:
    body = {
        "action": "GENERATE_TOKEN",
        "authType": "APIKEY",
        "clientId": "8HIG1002H6",
        "clientToken": "sample72695bf9-3932-4f60-88b5-2f-2hjd",
    }
    reply = pool.request(
        "POST", sigma_url + "/generate-token", body=json.dumps(body).encode(), headers=HEADERS
    )
    return str(json.loads(reply.data)["headerMap"]["accessToken"]).strip()


def main() -> None:
    port, path, sigma_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS runs (reference TEXT PRIMARY KEY, kind TEXT, body TEXT)")
    conn.commit()
    pool = urllib3.PoolManager(maxsize=CHECKERS, retries=False, timeout=10.0)
    token = token_of(pool, sigma_url)
    due: queue.SimpleQueue[str] = queue.SimpleQueue()
    checked = [0]

    def check() -> None:
        while True:
            reference = due.get()
            body = {
                "action": "REPORT_INSTANCE_STATUS_CHECK",
                "referenceNumber": reference,
                "accessToken": token,
            }
            reply = pool.request(
                "POST", sigma_url + "/report-status", body=json.dumps(body).encode(), headers=HEADERS
            )
            json.loads(reply.data)
            with LOCK:
                checked[0] += 1

    for _ in range(CHECKERS):
        threading.Thread(target=check, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with LOCK:
                done = checked[0]
            self._reply(200, f"{done}\n".encode())  # how many runs had their first check

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            run = json.loads(body)
            with LOCK:
                conn.execute(
                    "INSERT OR IGNORE INTO runs VALUES (?, ?, ?)", (run["reference"], run["kind"], body)
                )
                conn.commit()
            due.put(run["reference"])
            self._reply(201, body)

        def _reply(self, status: int, body: bytes) -> None:
            # One write on a TCP_NODELAY socket: head and body apart would meet Nagle and delayed ACKs.
            head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wfile.write(head.encode() + body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
