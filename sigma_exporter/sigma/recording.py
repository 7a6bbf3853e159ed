"""`--record DIR`: every exchange with Sigma as a redacted fixture file, for a bug report.

One JSON file per exchange, `NNNNNN-ACTION.json`: the action, the parameters sent and the reply's HTTP
status, headers and body. The body is kept as the raw text Sigma sent (its stray spaces and string codes
are what a bug report is about); secrets are replaced inside it. Tokens, passwords, client tokens, cookies,
every configured secret and any `--record.redact` pattern become `<secret>`; with pseudonymize, reference
numbers and report (group) ids become stable pseudonyms (`ref-0001`, `rpt-0001`, `grp-0001`)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

MARK: Final = "<secret>"
#: Parameters and reply fields whose values are secrets.
SECRET_KEYS: Final = frozenset(
    {"accessToken", "clientToken", "clitentToken", "password", "token", "clientSecret"}
)
SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Fields that name a run or a report, and the prefix of their pseudonyms.
IDENTITY_KEYS: Final = {
    "referenceNumber": "ref",
    "ReferenceNumber": "ref",
    "reportId": "rpt",
    "reportGroupId": "grp",
}


def _pairs(value: object) -> Iterator[tuple[str, str]]:
    """(key, string value) of every string field, nested ones too."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                yield str(key), item
            else:
                yield from _pairs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pairs(item)


class Scrubber:
    """Replaces secrets (and, with pseudonymize, identities) in text. Pseudonyms are stable for its life.
    Not thread-safe: a `Recording` calls it under its lock."""

    def __init__(
        self,
        redact: Callable[[str], str],
        patterns: Sequence[re.Pattern[str]] = (),
        *,
        pseudonymize: bool = False,
    ) -> None:
        self._redact = redact
        self._patterns = tuple(patterns)
        self._pseudonymize = pseudonymize
        self._pseudonyms: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def _pseudonym(self, prefix: str, value: str) -> str:
        if value not in self._pseudonyms:
            self._counts[prefix] = self._counts.get(prefix, 0) + 1
            self._pseudonyms[value] = f"{prefix}-{self._counts[prefix]:04d}"
        return self._pseudonyms[value]

    def learn(self, document: object) -> list[tuple[str, str]]:
        """The replacements a JSON document calls for: its secret fields, and its identities."""
        replacements = []
        for key, value in _pairs(document):
            stripped = value.strip()
            if not stripped:
                continue
            if key in SECRET_KEYS:
                replacements.append((stripped, MARK))
            elif self._pseudonymize and key in IDENTITY_KEYS:
                replacements.append((stripped, self._pseudonym(IDENTITY_KEYS[key], stripped)))
        return replacements

    def text(self, text: str, replacements: Sequence[tuple[str, str]] = ()) -> str:
        """`text` with the `replacements` applied (longest first), every pseudonym learnt so far, the known
        secrets and the --record.redact patterns."""
        for old, new in sorted(replacements, key=lambda pair: -len(pair[0])):
            text = text.replace(old, new)
        if self._pseudonymize:
            for old, new in sorted(self._pseudonyms.items(), key=lambda pair: -len(pair[0])):
                text = text.replace(old, new)
        text = self._redact(text)
        for pattern in self._patterns:
            text = pattern.sub(MARK, text)
        return text


def fixture(
    scrubber: Scrubber,
    action: str,
    params: Mapping[str, object],
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, object]:
    """One exchange as a redacted fixture document."""
    text = body.decode("utf-8", "replace")
    replacements = scrubber.learn(dict(params))
    with contextlib.suppress(ValueError):
        replacements += scrubber.learn(json.loads(text))

    def scrub(value: object) -> object:  # each string on its own: a pattern never sees JSON's quotes
        if isinstance(value, str):
            return scrubber.text(value, replacements)
        if isinstance(value, Mapping):
            return {str(k): MARK if k in SECRET_KEYS else scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    sent = scrub(params)
    kept_headers = {
        name: MARK if name.lower() in SECRET_HEADERS else scrubber.text(value, replacements)
        for name, value in headers.items()
    }
    return {
        "action": action,
        "request": {"params": sent},
        "reply": {"status": status, "headers": kept_headers, "body": scrubber.text(text, replacements)},
    }


class Recording:
    """The client's exchange hook that writes each exchange into `directory` (thread-safe)."""

    def __init__(self, directory: Path, scrubber: Scrubber) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._scrubber = scrubber
        self._lock = threading.Lock()
        self._count = len(list(directory.glob("*.json")))
        self._failed = False

    def __call__(
        self, action: str, params: Mapping[str, object], status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Write one exchange as the next numbered file. Any thread (calls are serialised); after a failed
        write it logs once and records nothing more, never failing the call it sees."""
        with self._lock:
            if self._failed:
                return
            document = fixture(self._scrubber, action, params, status, headers, body)
            self._count += 1
            path = self.directory / f"{self._count:06d}-{action}.json"
            try:
                path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            except OSError as exc:  # a full or read-only disk must not fail the call it records
                self._failed = True
                log.error(
                    "cannot write the recording; recording stops",
                    extra={"path": str(path), "error": exc.strerror or type(exc).__name__},
                )


def recorded(directory: Path) -> list[dict[str, Any]]:
    """The fixture documents of a recorded directory, in the order they were made."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))]
