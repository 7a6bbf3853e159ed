"""The Python floor for a durable registration: a bare `http.server` that parses the JSON body and inserts
one row into SQLite (WAL, synchronous=FULL, one connection behind a lock), answering 201. No validation,
no auth, no index for the API: what any Python service must at least spend on it.

    python benchmarks/registry_floor.py PORT DB
"""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS runs (reference TEXT PRIMARY KEY, kind TEXT, body TEXT)")
    conn.commit()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._reply(200, b"ok\n")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            run = json.loads(body)
            with LOCK:
                conn.execute(
                    "INSERT OR IGNORE INTO runs VALUES (?, ?, ?)", (run["reference"], run["kind"], body)
                )
                conn.commit()
            self._reply(201, body)

        def _reply(self, status: int, body: bytes) -> None:
            # One write on a TCP_NODELAY socket: head and body apart would meet Nagle and delayed ACKs.
            head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wfile.write(head.encode() + body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
