"""`simulate --replay DIR`: a Sigma that answers with the replies of a `--record` directory.

Each call is matched by its action and the run or report it names (referenceNumber, reportId or
reportGroupId; none for GENERATE_TOKEN) to the recorded replies for the same, which are given in the order
they were recorded, the last one again once they run out. The redacted token (`<secret>`) is handed out as
a fixed replay token, and any access token is accepted. A call that was never recorded gets a 400, as
Sigma answers an unknown reference."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from sigma_exporter.sigma.actions import GENERATE_TOKEN
from sigma_exporter.sigma.recording import MARK

REPLAY_TOKEN: Final = "replay-access-token"  # noqa: S105 - handed out by the replay, not a secret
IDENTITY_PARAMS: Final = ("referenceNumber", "ReferenceNumber", "reportId", "reportGroupId")
UNKNOWN: Final = (
    b'{"headerMap": {"replyType": "FAILURE", "success": "false", "statusCode": "400", '
    b'"errorCode": "SIG-REPLAY-400", "errorMsg": "not in the recording"}}'
)


@dataclass(frozen=True)
class Reply:
    """One recorded reply: the HTTP status, content type and body (the redaction mark replaced by the replay
    token)."""

    status: int
    content_type: str
    body: bytes


def key_of(action: str, params: Mapping[str, object]) -> tuple[str, str]:
    """What a call is matched by: its action and the first identity parameter it names, or ""."""
    for name in IDENTITY_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value.strip():
            return action, value.strip()
    return action, ""


@dataclass
class Recorded:
    """The replies of a recorded directory, by call, and where each call's sequence has got to."""

    replies: dict[tuple[str, str], list[Reply]]
    served: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, directory: Path) -> Recorded:
        """The replies of every fixture file in `directory`, in recorded order; ValueError (or KeyError) for a
        directory that holds none or a file that is not a fixture."""
        replies: dict[tuple[str, str], list[Reply]] = {}
        for path in sorted(directory.glob("*.json")):
            document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            reply = document["reply"]
            headers = {str(k).lower(): str(v) for k, v in reply.get("headers", {}).items()}
            body = str(reply["body"]).replace(MARK, REPLAY_TOKEN).encode("utf-8")
            key = key_of(str(document["action"]), document["request"]["params"])
            replies.setdefault(key, []).append(
                Reply(int(reply["status"]), headers.get("content-type", "application/json"), body)
            )
        if not replies:
            raise ValueError(f"{directory}: no recorded exchange (*.json) in it")
        return cls(replies)

    def next(self, key: tuple[str, str]) -> Reply:
        """The next reply for `key` (the last one again once they run out), or the 400 for an unknown
        reference when none was recorded. Any thread."""
        with self.lock:
            sequence = self.replies.get(key)
            if not sequence:
                return Reply(400, "application/json", UNKNOWN)
            index = self.served.get(key, 0)
            self.served[key] = index + 1
            return sequence[min(index, len(sequence) - 1)]


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        params: dict[str, object] = {}
        try:
            document = json.loads(raw) if raw else {}
            params = dict(document) if isinstance(document, dict) else {}
        except ValueError:
            params = dict(parse_qsl(raw.decode("utf-8", "replace")))
        for name, value in parse_qsl(urlsplit(self.path).query):
            params.setdefault(name, value)
        action = str(params.get("action", ""))
        reply = self.server.recorded.next(
            key_of(action, params) if action != GENERATE_TOKEN else (action, "")
        )
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class ReplayServer(ThreadingHTTPServer):
    """The threaded HTTP server of a replay: every POST gets the next recorded reply for its call."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], recorded: Recorded) -> None:
        super().__init__(address, _Handler)
        self.recorded = recorded

    def start(self) -> ReplayServer:
        """Serve on a background thread (the socket is bound already)."""
        threading.Thread(target=self.serve_forever, args=(0.1,), name="sigma-replay", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; only after `start`."""
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        """The `sigma.url` an exporter config takes."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/sigma/rest/reports"
