"""Logging in logfmt or JSON, one line per event, with every secret the process knows masked."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Final, TextIO

from sigma_exporter.config.secret import MASK

#: LogRecord attributes that are not `extra` fields.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
LEVELS: Final = ("debug", "info", "warning", "error")
FORMATS: Final = ("logfmt", "json")


class Redactor:
    """Knows every secret (configured credentials and access tokens as they are issued) and masks them.
    Any thread: `add` swaps the tuple of secrets under a lock, `redact` reads it without one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, *secrets: str) -> None:
        """Learn more secrets (the config's credentials at load and reload, each access token as Sigma issues
        it); strings under 4 characters are ignored, as masking them would garble every line. Any thread."""
        with self._lock:
            fresh = {s for s in secrets if len(s) >= 4} | set(self._secrets)
            self._secrets = tuple(sorted(fresh, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """`text` with every known secret, longest first, replaced by the mask. Any thread (each log line goes
        through it)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    return fields


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return text


class LogfmtFormatter(logging.Formatter):
    """One logfmt line per record: ts, level, logger, msg, then the `extra` fields, redacted as a whole."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted logfmt line (on whatever thread logged it)."""
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record).items())
        return self.redactor.redact(line)


class JSONFormatter(LogfmtFormatter):
    """One JSON object per record, with the same fields as the logfmt line, redacted as a whole."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted JSON line (on whatever thread logged it)."""
        return self.redactor.redact(json.dumps(_fields(record), default=str, ensure_ascii=False))


def setup_logging(level: str, fmt: str, redactor: Redactor, stream: TextIO | None = None) -> logging.Handler:
    """Make the root logger write `fmt` lines at `level` to `stream` (stderr) through `redactor`, replacing
    any handler it had; urllib3 is held at WARNING. Each command that logs calls it once, before anything
    else."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter(redactor) if fmt == "json" else LogfmtFormatter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # urllib3 logs whole request lines (query strings included) at DEBUG; ours say what matters.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return handler
