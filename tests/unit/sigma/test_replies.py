"""The pure reply parser: vendor samples, every documented quirk, and a corpus of bad replies."""

from __future__ import annotations

import json

import pytest

from sigma_exporter.sigma import errors as e
from sigma_exporter.sigma.replies import (
    ALL_STATUSES,
    MAX_TEXT,
    parse_group_reply,
    parse_report_reply,
    parse_token_reply,
)

# Verbatim from shared/sigma-api.md (the vendor's page).
VENDOR_REPORT = b'{ "headerMap": { "replyType": "SUCCESS", "reportId": " samplejk34-0925bccf-29f0-42f2-8896-77c57aea2198", "reportName": " AccountTransaction ", "success": "true", "reportStatus": "NOTIFIED", "errorCode": "", "statusCode": "200", "errorMsg": "" } }'
VENDOR_GROUP = b'{ "headerMap": { "reportFailureCount": "0", "reports": [ { "reportId": "samplejk34-0925bccf-29f0-42f2-8896-77c57aea2198", "reportName": " AccountTransaction ", "reportTitle": "", "reportStatus": "NOTIFIED", "errorCode": "", "reportGroupId": " AccountTransaction ", "errorMsg": "" } ], "replyType": "SUCCESS", "reportSuccessCount": "1", "referenceNumber": "sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd", "success": "true", "reportGroupId": " AccountTransaction ", "noOfReports": "1", "statusCode": "200" } }'
VENDOR_TOKEN = b'{"headerMap":{"replyType":"success","success":"true","accessToken":" sample61d74837-2e77-4ede-a967-2c84b30-dws-b3b4f 7"}}'


def header(**fields: object) -> bytes:
    base: dict[str, object] = {"replyType": "SUCCESS", "success": "true", "statusCode": "200"}
    base.update(fields)
    return json.dumps({"headerMap": {k: v for k, v in base.items() if v is not None}}).encode()


def test_vendor_report_sample() -> None:
    reply = parse_report_reply(200, VENDOR_REPORT)
    assert not reply.pending
    assert reply.report.status == "NOTIFIED"
    assert reply.report.report_name == "AccountTransaction"
    assert reply.report.report_id == "samplejk34-0925bccf-29f0-42f2-8896-77c57aea2198"
    assert reply.report.error_code == ""


def test_vendor_group_sample() -> None:
    reply = parse_group_reply(200, VENDOR_GROUP)
    assert reply.report_group_id == "AccountTransaction"
    assert (reply.success_count, reply.failure_count, reply.member_count) == (1, 0, 1)
    assert len(reply.reports) == 1
    member = reply.reports[0]
    assert (member.report_name, member.status, member.report_group_id) == (
        "AccountTransaction",
        "NOTIFIED",
        "AccountTransaction",
    )
    assert reply.notes == ()


def test_vendor_token_sample_is_trimmed() -> None:
    token = parse_token_reply(200, VENDOR_TOKEN)
    assert token == token.strip() and " " not in token
    assert token.startswith("sample61d74837")


@pytest.mark.parametrize("reply_type", ["SUCCESS", "success", "Success", " success "])
def test_reply_type_any_case(reply_type: str) -> None:
    assert (
        parse_report_reply(200, header(replyType=reply_type, reportStatus="PUBLISHED")).report.status
        == "PUBLISHED"
    )


@pytest.mark.parametrize("code", [200, "200", " 200 ", 200.0])
def test_status_code_int_or_string(code: object) -> None:
    assert (
        parse_report_reply(200, header(statusCode=code, reportStatus="GENERATED")).report.status
        == "GENERATED"
    )


def test_success_field_alone_is_enough() -> None:
    body = json.dumps(
        {"headerMap": {"success": "true", "reportStatus": "FAILED", "errorCode": "E1"}}
    ).encode()
    reply = parse_report_reply(200, body)
    assert (reply.report.status, reply.report.error_code) == ("FAILED", "E1")


def test_bare_http_204_is_pending() -> None:
    assert parse_report_reply(204, b"").pending
    assert parse_group_reply(204, b"").pending


def test_body_status_code_204_is_pending() -> None:
    assert parse_report_reply(200, header(statusCode="204")).pending
    assert parse_group_reply(200, header(statusCode=204)).pending


def test_unknown_status_is_unknown_with_raw_value_kept() -> None:
    report = parse_report_reply(200, header(reportStatus="IN_PROGRESS")).report
    assert report.status == "UNKNOWN"
    assert report.raw_status == "IN_PROGRESS"


def test_lower_case_status_is_understood() -> None:
    assert parse_report_reply(200, header(reportStatus=" published ")).report.status == "PUBLISHED"


def test_counts_disagreeing_with_members_are_reported_as_the_api_says() -> None:
    members = [{"reportId": f"r{i}", "reportStatus": "PUBLISHED"} for i in range(2)]
    reply = parse_group_reply(200, header(reports=members, noOfReports="5", reportSuccessCount="7"))
    assert reply.member_count == 5 and reply.success_count == 7
    assert len(reply.reports) == 2
    assert any("noOfReports" in note for note in reply.notes)


def test_duplicate_member_ids_keep_the_first() -> None:
    members = [
        {"reportId": "r1", "reportStatus": "FAILED"},
        {"reportId": " r1 ", "reportStatus": "PUBLISHED"},
    ]
    reply = parse_group_reply(200, header(reports=members))
    assert [(r.report_id, r.status) for r in reply.reports] == [("r1", "FAILED")]
    assert reply.dropped_duplicates == 1


def test_member_without_status_is_pending() -> None:
    reply = parse_group_reply(200, header(reports=[{"reportId": "r1", "reportStatus": ""}]))
    assert reply.reports[0].status == "PENDING"


def test_long_and_odd_text_is_bounded_and_encodable() -> None:
    name = "x" * 1000 + "\ud800"
    report = parse_report_reply(200, header(reportStatus="NOTIFIED", reportName=name)).report
    assert len(report.report_name) <= MAX_TEXT
    report.report_name.encode("utf-8")


def test_every_status_label_value_is_known() -> None:
    for raw in (
        "GENERATED",
        "PUBLISHED",
        "NOTIFIED",
        "FAILED",
        "NOTIFICATION_FAILED",
        "NO_DATA_AVAILABLE",
        "??",
    ):
        assert parse_report_reply(200, header(reportStatus=raw)).report.status in ALL_STATUSES


# --- the corpus of bad replies: each gives its own typed error ------------------------------------------
FAIL_401 = json.dumps(
    {
        "headerMap": {
            "replyType": "FAILURE",
            "success": "false",
            "statusCode": "401",
            "errorCode": "A1",
            "errorMsg": "x",
        }
    }
).encode()
CORPUS: list[tuple[str, int, bytes, type[e.SigmaError]]] = [
    ("html-error-page", 200, b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", e.NotJSONError),
    ("plain-text", 200, b"Service Unavailable", e.NotJSONError),
    ("binary", 200, b"\x00\x01\xff\xfe", e.NotJSONError),
    ("empty-body-200", 200, b"", e.EmptyReplyError),
    ("whitespace-body", 200, b"   \n", e.EmptyReplyError),
    ("truncated-object", 200, VENDOR_REPORT[: len(VENDOR_REPORT) // 2], e.TruncatedReplyError),
    ("truncated-in-string", 200, b'{"headerMap":{"replyType":"SUCC', e.TruncatedReplyError),
    ("truncated-after-colon", 200, b'{"headerMap":', e.TruncatedReplyError),
    ("trailing-comma", 200, b'{"headerMap":{"replyType":"SUCCESS",}}', e.MalformedJSONError),
    ("bare-word-value", 200, b'{"headerMap":{"reportStatus":NOTIFIED}}', e.MalformedJSONError),
    ("single-quotes", 200, b"{'headerMap':{}}", e.MalformedJSONError),
    ("json-array", 200, b"[1,2,3]", e.MissingHeaderMapError),
    ("json-string", 200, b'"NOTIFIED"', e.MissingHeaderMapError),
    ("json-null", 200, b"null", e.MissingHeaderMapError),
    ("no-headerMap", 200, b'{"replyType":"SUCCESS"}', e.MissingHeaderMapError),
    ("headerMap-null", 200, b'{"headerMap":null}', e.MissingHeaderMapError),
    ("headerMap-list", 200, b'{"headerMap":[]}', e.MissingHeaderMapError),
    ("headerMap-string", 200, b'{"headerMap":"SUCCESS"}', e.MissingHeaderMapError),
    ("no-replyType-no-success", 200, b'{"headerMap":{"reportStatus":"NOTIFIED"}}', e.MissingFieldError),
    ("no-reportStatus", 200, header(), e.MissingFieldError),
    ("empty-reportStatus", 200, header(reportStatus="  "), e.MissingFieldError),
    ("reportStatus-list", 200, header(reportStatus=["NOTIFIED"]), e.WrongTypeError),
    ("reportStatus-number", 200, header(reportStatus=3), e.WrongTypeError),
    ("reportName-object", 200, header(reportStatus="NOTIFIED", reportName={"a": 1}), e.WrongTypeError),
    ("reportId-bool", 200, header(reportStatus="NOTIFIED", reportId=True), e.WrongTypeError),
    ("statusCode-word", 200, header(statusCode="OK", reportStatus="NOTIFIED"), e.WrongTypeError),
    ("statusCode-bool", 200, header(statusCode=True, reportStatus="NOTIFIED"), e.WrongTypeError),
    ("replyType-number", 200, header(replyType=1, reportStatus="NOTIFIED"), e.WrongTypeError),
    (
        "failure-reply",
        200,
        header(replyType="FAILURE", success="false", statusCode=None, errorCode="X9"),
        e.FailureReplyError,
    ),
    ("success-false", 200, header(replyType=None, success="false", statusCode=None), e.FailureReplyError),
    ("failure-body-401", 200, FAIL_401, e.UnauthorizedError),
    ("failure-body-500", 200, header(replyType="FAILURE", statusCode="500"), e.ServerError),
    ("failure-body-400", 200, header(replyType="FAILURE", statusCode="400"), e.BadRequestError),
    ("success-with-code-404", 200, header(statusCode="404", reportStatus="NOTIFIED"), e.HTTPStatusError),
    ("http-400", 400, FAIL_401, e.BadRequestError),
    ("http-401", 401, FAIL_401, e.UnauthorizedError),
    ("http-401-html", 401, b"<html>denied</html>", e.UnauthorizedError),
    ("http-500", 500, b"Internal Server Error", e.ServerError),
    ("http-503", 503, b"", e.ServerError),
    ("http-302", 302, b"", e.HTTPStatusError),
    ("http-404", 404, b"not found", e.HTTPStatusError),
    ("deep-nesting", 200, b"[" * 100000, e.SigmaError),
    ("invalid-utf8-in-json", 200, b'{"headerMap":{"reportStatus":"\xff"}}', e.NotJSONError),
]


@pytest.mark.parametrize(
    ("http_status", "body", "expected"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_bad_report_replies_raise_their_specific_error(
    http_status: int, body: bytes, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as info:
        parse_report_reply(http_status, body)
    assert isinstance(info.value, e.SigmaError)
    assert info.value.reason in {
        "invalid_reply",
        "failure_reply",
        "unauthorized",
        "bad_request",
        "server_error",
        "http_error",
    }
    assert str(info.value)  # a message for the log, never empty


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    assert len({c[3] for c in CORPUS}) >= 12


GROUP_CORPUS: list[tuple[str, bytes, type[e.SigmaError]]] = [
    ("reports-not-list", header(reports={"a": 1}), e.WrongTypeError),
    ("member-not-object", header(reports=["r1"]), e.WrongTypeError),
    ("member-status-list", header(reports=[{"reportId": "r", "reportStatus": []}]), e.WrongTypeError),
    ("count-word", header(reports=[], noOfReports="three"), e.WrongTypeError),
    ("count-negative", header(reports=[], reportFailureCount="-1"), e.WrongTypeError),
    ("count-list", header(reports=[], reportSuccessCount=[1]), e.WrongTypeError),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in GROUP_CORPUS], ids=[c[0] for c in GROUP_CORPUS]
)
def test_bad_group_replies(body: bytes, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        parse_group_reply(200, body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (header(), e.MissingFieldError),
        (header(accessToken=""), e.MissingFieldError),
        (header(accessToken=12), e.WrongTypeError),
        (header(statusCode="204"), e.MissingFieldError),
        (FAIL_401, e.UnauthorizedError),
    ],
)
def test_bad_token_replies(body: bytes, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        parse_token_reply(200, body)
