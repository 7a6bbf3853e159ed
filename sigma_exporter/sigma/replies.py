"""Pure parsing of Sigma replies: (HTTP status, body bytes) in, a typed reply or a typed error out.

Tolerates every quirk seen in the vendor's own samples (see shared/sigma-api.md): stray spaces around
ids, names, reference numbers and tokens; `replyType` in any case; `statusCode` as int or string; counts
as strings; HTTP 204 without a body; `statusCode` "204" in an HTTP 200 body; unknown `reportStatus`
values; `noOfReports` disagreeing with `reports[]`. Everything else is a specific `InvalidReplyError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sigma_exporter.sigma.actions import EXEC_REPORT_GROUP, GENERATE_TOKEN, GROUP_CHECK, REPORT_CHECK
from sigma_exporter.sigma.errors import (
    BadRequestError,
    EmptyReplyError,
    FailureReplyError,
    HTTPStatusError,
    InvalidReplyError,
    MalformedJSONError,
    MissingFieldError,
    MissingHeaderMapError,
    NotJSONError,
    ServerError,
    TruncatedReplyError,
    UnauthorizedError,
    WrongTypeError,
)

DOCUMENTED_STATUSES: Final = (
    "GENERATED",
    "PUBLISHED",
    "NOTIFIED",
    "FAILED",
    "NOTIFICATION_FAILED",
    "NO_DATA_AVAILABLE",
)
PENDING: Final = "PENDING"
UNKNOWN: Final = "UNKNOWN"
#: Every value of the `status` label, in exposition order.
ALL_STATUSES: Final = (*DOCUMENTED_STATUSES, PENDING, UNKNOWN)
#: Statuses after which a run does not change by itself any more.
FINAL_STATUSES: Final = frozenset(
    {"PUBLISHED", "NOTIFIED", "FAILED", "NOTIFICATION_FAILED", "NO_DATA_AVAILABLE"}
)
#: Final statuses the vendor documents nothing after: a run here is over for good. PUBLISHED ("ready for
#: download") is not one of them: a report that also mails may still become NOTIFIED.
END_STATUSES: Final = FINAL_STATUSES - {"PUBLISHED"}
#: Longest text kept from a reply for a label value or a message; longer is cut.
MAX_TEXT: Final = 256
#: Largest count or status code accepted; beyond it a number cannot be a float sample exactly (2**53).
MAX_NUMBER: Final = 2**53


@dataclass(frozen=True)
class ReportResult:
    """One report run as Sigma described it. `raw_status` is only ever logged, never a label."""

    report_id: str
    report_name: str
    status: str
    report_group_id: str = ""
    error_code: str = ""
    error_msg: str = ""
    raw_status: str = ""


@dataclass(frozen=True)
class ReportReply:
    """Reply to REPORT_INSTANCE_STATUS_CHECK. `pending`: the API has no status yet (204)."""

    report: ReportResult
    pending: bool = False


@dataclass(frozen=True)
class GroupReply:
    """Reply to REPORT_GROUP_INSTANCE_STATUS_CHECK. Counts are as the API says (None when absent)."""

    report_group_id: str
    reports: tuple[ReportResult, ...]
    failure_count: int | None = None
    success_count: int | None = None
    member_count: int | None = None
    pending: bool = False
    dropped_duplicates: int = 0
    notes: tuple[str, ...] = field(default=())


PENDING_REPORT: Final = ReportResult(report_id="", report_name="", status=PENDING)


# --- small pure helpers -------------------------------------------------------------------------------
def clean_text(value: str) -> str:
    """Trim stray spaces, make the text encodable as UTF-8 and bound its length."""
    text = value.strip()
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT].rstrip()  # the cut may land just after a space
    return text.encode("utf-8", "replace").decode("utf-8")


def _text(header: Mapping[str, object], key: str, where: str) -> str:
    """A string field; numbers are accepted as text, absent or null is ""."""
    value = header.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise WrongTypeError(f"{where}: field {key!r} should be a string, got {type(value).__name__}")
    return clean_text(str(value))


def parse_int(value: object, key: str, where: str) -> int | None:
    """An integer given as a number or as a string of digits (both occur); "" and null are None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise WrongTypeError(f"{where}: field {key!r} should be a number, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        if not text.isascii() or not text.isdigit():
            raise WrongTypeError(f"{where}: field {key!r} should be a whole number, got {text[:32]!r}")
        if len(text) > len(str(MAX_NUMBER)):  # int() refuses over 4300 digits; far less is absurd already
            raise WrongTypeError(f"{where}: field {key!r} is implausibly large ({len(text)} digits)")
        number = int(text)
    else:
        raise WrongTypeError(f"{where}: field {key!r} should be a number, got {type(value).__name__}")
    if number < 0:
        raise WrongTypeError(f"{where}: field {key!r} should not be negative, got {number}")
    if number > MAX_NUMBER:
        raise WrongTypeError(f"{where}: field {key!r} is implausibly large")
    return number


def normalise_status(raw: str) -> str:
    """A documented status in upper case, or UNKNOWN. Empty means PENDING (no status yet)."""
    status = raw.strip().upper()
    if status == "":
        return PENDING
    return status if status in DOCUMENTED_STATUSES else UNKNOWN


def _unclosed(text: str) -> bool:
    """True when JSON text stops inside a string or with brackets still open (a truncated body)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return in_string or depth > 0


# --- envelope ---------------------------------------------------------------------------------------
def decode_header_map(body: bytes, where: str) -> dict[str, object]:
    """The `headerMap` object of a reply body, or the specific error saying why there is none."""
    stripped = body.strip()
    if not stripped:
        raise EmptyReplyError(f"{where}: empty reply body")
    try:
        document = json.loads(stripped)
    except (UnicodeDecodeError, RecursionError):
        raise NotJSONError(f"{where}: reply is not JSON text") from None
    except json.JSONDecodeError as exc:
        text = stripped.decode("utf-8", "replace")
        if text[:1] in ("{", "["):
            if _unclosed(text):
                raise TruncatedReplyError(
                    f"{where}: reply ends before the JSON document does ({len(body)} bytes)"
                ) from None
            raise MalformedJSONError(f"{where}: malformed JSON at offset {exc.pos}: {exc.msg}") from None
        kind = "an HTML page" if text[:1] == "<" else "not JSON"
        raise NotJSONError(f"{where}: reply is {kind}") from None
    except ValueError:  # not a JSONDecodeError: an integer literal longer than int() accepts
        raise MalformedJSONError(f"{where}: reply has a number too long to read") from None
    if not isinstance(document, dict):
        raise MissingHeaderMapError(f"{where}: reply is a JSON {type(document).__name__}, not an object")
    header = document.get("headerMap")
    if header is None:
        raise MissingHeaderMapError(f"{where}: reply has no 'headerMap'")
    if not isinstance(header, dict):
        raise MissingHeaderMapError(f"{where}: 'headerMap' is a {type(header).__name__}, not an object")
    return header


def _error_for_status(code: int, where: str, error_code: str) -> HTTPStatusError:
    suffix = f" (errorCode {error_code!r})" if error_code else ""
    if code == 401:
        return UnauthorizedError(f"{where}: unauthorized (401){suffix}", code, error_code)
    if code == 400:
        return BadRequestError(f"{where}: bad request (400){suffix}", code, error_code)
    if code >= 500:
        return ServerError(f"{where}: server error ({code}){suffix}", code, error_code)
    return HTTPStatusError(f"{where}: unexpected status {code}{suffix}", code, error_code)


def _error_code_of(body: bytes) -> str:
    """errorCode of an error body when there is one; error bodies are often not JSON at all."""
    try:
        header = decode_header_map(body, "")
        return _text(header, "errorCode", "")
    except InvalidReplyError:
        return ""


def check_envelope(http_status: int, body: bytes, where: str) -> dict[str, object] | None:
    """The headerMap of a successful reply; None when the API says "no data yet" (204).

    Raises the typed error for HTTP errors, FAILURE replies and malformed bodies.
    """
    if http_status == 204:
        return None
    if not 200 <= http_status < 300:
        raise _error_for_status(http_status, where, _error_code_of(body))
    header = decode_header_map(body, where)
    status_code = parse_int(header.get("statusCode"), "statusCode", where)
    reply_type = header.get("replyType")
    success = header.get("success")
    if reply_type is not None and not isinstance(reply_type, str):
        raise WrongTypeError(f"{where}: field 'replyType' should be a string")
    if reply_type is not None and reply_type.strip():
        failed = reply_type.strip().upper() != "SUCCESS"
    elif success is not None:
        failed = str(success).strip().lower() != "true"
    else:
        raise MissingFieldError(f"{where}: reply has neither 'replyType' nor 'success'")
    if failed:
        error_code = _text(header, "errorCode", where)
        if (status_code is not None and status_code in (400, 401)) or (status_code or 0) >= 500:
            raise _error_for_status(status_code or 0, where, error_code)
        suffix = f" (errorCode {error_code!r})" if error_code else ""
        raise FailureReplyError(f"{where}: Sigma replied FAILURE{suffix}", error_code, status_code)
    if status_code == 204:
        return None
    if status_code is not None and status_code != 200:
        raise _error_for_status(status_code, where, _text(header, "errorCode", where))
    return header


# --- the three replies ------------------------------------------------------------------------------
def parse_token_reply(http_status: int, body: bytes) -> str:
    """The access token of a GENERATE_TOKEN reply, trimmed."""
    where = GENERATE_TOKEN
    header = check_envelope(http_status, body, where)
    if header is None:
        raise MissingFieldError(f"{where}: reply has no access token (204)")
    token = header.get("accessToken")
    if not isinstance(token, str):
        if token is None:
            raise MissingFieldError(f"{where}: reply has no 'accessToken'")
        raise WrongTypeError(f"{where}: 'accessToken' should be a string")
    # Stray spaces appear inside the vendor's sample token too; a token never contains white space.
    token = "".join(token.split())
    if not token:
        raise MissingFieldError(f"{where}: 'accessToken' is empty")
    return token


def parse_start_reply(action: str, http_status: int, body: bytes) -> str:
    """The new run's reference number of a RUN_REPORT or EXEC_REPORT_GROUP reply, trimmed. A group's is
    inside `reportGroupStatus` (the vendor's sample); a report's is in the header map itself."""
    where = action
    header = check_envelope(http_status, body, where)
    if header is None:
        raise MissingFieldError(f"{where}: reply has no reference number (204)")
    holder: Mapping[str, object] = header
    nested = header.get("reportGroupStatus")
    if action == EXEC_REPORT_GROUP and isinstance(nested, dict) and "referenceNumber" in nested:
        holder = nested
    elif nested is not None and not isinstance(nested, dict):
        raise WrongTypeError(f"{where}: 'reportGroupStatus' should be an object")
    reference = _text(holder, "referenceNumber", where)
    if not reference:
        raise MissingFieldError(f"{where}: reply has no 'referenceNumber'")
    if any(ch.isspace() for ch in reference) or len(reference) > 256:
        raise WrongTypeError(f"{where}: 'referenceNumber' is not a reference number")
    return reference


def _report(item: Mapping[str, object], where: str, group_id: str, *, member: bool) -> ReportResult:
    raw = item.get("reportStatus")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if not member:
            raise MissingFieldError(f"{where}: reply has no 'reportStatus'")
        raw = ""
    if not isinstance(raw, str):
        raise WrongTypeError(f"{where}: field 'reportStatus' should be a string")
    own_group = _text(item, "reportGroupId", where)
    return ReportResult(
        report_id=_text(item, "reportId", where),
        report_name=_text(item, "reportName", where),
        status=normalise_status(raw),
        report_group_id=group_id or own_group,
        error_code=_text(item, "errorCode", where),
        error_msg=_text(item, "errorMsg", where),
        raw_status=clean_text(raw),
    )


def parse_report_reply(http_status: int, body: bytes) -> ReportReply:
    """A REPORT_INSTANCE_STATUS_CHECK reply."""
    where = REPORT_CHECK
    header = check_envelope(http_status, body, where)
    if header is None:
        return ReportReply(report=PENDING_REPORT, pending=True)
    return ReportReply(report=_report(header, where, "", member=False))


def parse_group_reply(http_status: int, body: bytes) -> GroupReply:
    """A REPORT_GROUP_INSTANCE_STATUS_CHECK reply. Duplicate member ids keep their first entry."""
    where = GROUP_CHECK
    header = check_envelope(http_status, body, where)
    if header is None:
        return GroupReply(report_group_id="", reports=(), pending=True)
    group_id = _text(header, "reportGroupId", where)
    items = header.get("reports")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise WrongTypeError(f"{where}: field 'reports' should be a list, got {type(items).__name__}")
    members: list[ReportResult] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise WrongTypeError(f"{where}: reports[{index}] should be an object")
        report = _report(item, f"{where} reports[{index}]", group_id, member=True)
        if report.report_id in seen:
            continue
        seen.add(report.report_id)
        members.append(report)
    reply = GroupReply(
        report_group_id=group_id,
        reports=tuple(members),
        failure_count=parse_int(header.get("reportFailureCount"), "reportFailureCount", where),
        success_count=parse_int(header.get("reportSuccessCount"), "reportSuccessCount", where),
        member_count=parse_int(header.get("noOfReports"), "noOfReports", where),
        dropped_duplicates=len(items) - len(members),
    )
    notes: list[str] = []
    if reply.member_count is not None and reply.member_count != len(items):
        notes.append(f"noOfReports is {reply.member_count} but reports[] has {len(items)} entries")
    if reply.dropped_duplicates:
        notes.append(f"{reply.dropped_duplicates} duplicate report ids in reports[] ignored")
    if notes:
        return GroupReply(**{**reply.__dict__, "notes": tuple(notes)})
    return reply
