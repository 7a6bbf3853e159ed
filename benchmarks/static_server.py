"""The floor for /metrics latency: a minimal threaded http.server (the same server classes as the exporter's,
keep-alive, TCP_NODELAY, each reply in one write, listen backlog 128) that serves fixed bodies of given
sizes and nothing else. `run.py` scrapes it exactly as it scrapes the exporter, so that the exporter's
figures can be read against what Python's threaded HTTP server itself costs on the machine.

    python benchmarks/static_server.py --port 9999 --identity-bytes 13800000 --gzip-bytes 514000
"""

from __future__ import annotations

import argparse
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--identity-bytes", type=int, required=True)
    parser.add_argument("--gzip-bytes", type=int, required=True)
    args = parser.parse_args()
    plain = b"x" * args.identity_bytes
    compressed = os.urandom(args.gzip_bytes)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            gzip_ok = "gzip" in (self.headers.get("Accept-Encoding") or "")
            body = compressed if gzip_ok else plain
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            if gzip_ok:
                head += "Content-Encoding: gzip\r\n"
            self.wfile.write((head + "\r\n").encode("latin-1") + body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    Server(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
