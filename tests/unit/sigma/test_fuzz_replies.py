"""Property-based tests (hypothesis) of Sigma's replies, the outside input the exporter reads most.

- The reply parser (sigma/replies.py) on arbitrary (HTTP status, bytes) and on JSON documents built close
  to the real reply shapes: it returns a typed reply or raises a `SigmaError`, nothing else; every value
  that can become a label is a clean string; statuses are in ALL_STATUSES.
- The whole way from parsed replies to the exposition: the poller folds them into a snapshot, the
  collector renders it, and prometheus_client's parsers read it back without duplicate series.

The config loader's fuzz tests: tests/unit/config/test_fuzz_config.py. Examples per test:
$SIGMA_FUZZ_EXAMPLES (default 200; `make fuzz` runs 10000). Under CI=true the runs are derandomized so that
a failure reproduces (tests/support/fuzz.py).
"""

from __future__ import annotations

import json
import math
import string
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics import parser as openmetrics_parser

from sigma_exporter.config.load import Reference
from sigma_exporter.metrics.render import render
from sigma_exporter.metrics.snapshot import ExporterInfo, Snapshot
from sigma_exporter.poll.publish import reference_state
from sigma_exporter.runs.fold import fold
from sigma_exporter.runs.held import HeldRun, Observation
from sigma_exporter.sigma.actions import POLLED_ACTIONS as ACTIONS
from sigma_exporter.sigma.errors import SigmaError
from sigma_exporter.sigma.replies import (
    ALL_STATUSES,
    DOCUMENTED_STATUSES,
    MAX_NUMBER,
    MAX_TEXT,
    GroupReply,
    ReportReply,
    ReportResult,
    parse_group_reply,
    parse_report_reply,
    parse_token_reply,
)
from sigma_exporter.sigma.stats import ApiStats
from tests.support.exporter import samples
from tests.support.fuzz import EXAMPLES, FUZZ, FUZZ_TIMEOUT, anything, digit_strings, maybe, spaces, texts

pytestmark = [FUZZ_TIMEOUT, pytest.mark.usefixtures("quiet_logs")]
REASONS = frozenset(
    {
        "timeout",
        "connection",
        "tls",
        "unauthorized",
        "bad_request",
        "server_error",
        "http_error",
        "failure_reply",
        "invalid_reply",
        "reply_too_large",
    }
)
PARSERS: dict[str, Callable[[int, bytes], object]] = {
    "report": parse_report_reply,
    "group": parse_group_reply,
    "token": parse_token_reply,
}


# --- what every parsed value must be -------------------------------------------------------------------
def assert_label_value(value: object, what: str) -> None:
    assert isinstance(value, str), (what, value)
    value.encode("utf-8")  # raises on lone surrogates
    assert value == value.strip(), (what, value)
    assert len(value) <= MAX_TEXT, (what, len(value))


def assert_report(report: ReportResult) -> None:
    for name in ("report_id", "report_name", "report_group_id", "error_code", "error_msg", "raw_status"):
        assert_label_value(getattr(report, name), name)
    assert report.status in ALL_STATUSES


def assert_count(value: object) -> None:
    assert value is None or (
        isinstance(value, int) and 0 <= value <= MAX_NUMBER and math.isfinite(float(value))
    )


def assert_parsed(kind: str, result: object) -> None:
    if kind == "token":
        assert isinstance(result, str) and result and not any(c.isspace() for c in result)
        result.encode("utf-8", "surrogatepass")
    elif kind == "report":
        assert isinstance(result, ReportReply)
        assert_report(result.report)
        if result.pending:
            assert result.report.status == "PENDING"
    else:
        assert isinstance(result, GroupReply)
        assert_label_value(result.report_group_id, "report_group_id")
        for report in result.reports:
            assert_report(report)
        ids = [r.report_id for r in result.reports]
        assert len(ids) == len(set(ids)), "duplicate member ids survive"
        for count in (result.failure_count, result.success_count, result.member_count):
            assert_count(count)


def parse(kind: str, status: int, body: bytes) -> object | SigmaError:
    """The parse result or the typed error; anything else propagates and fails the test."""
    try:
        result = PARSERS[kind](status, body)
    except SigmaError as exc:
        assert exc.reason in REASONS, exc.reason
        assert str(exc), "an error without a message"
        return exc
    assert_parsed(kind, result)
    return result


# --- strategies close to the real replies --------------------------------------------------------------------
#: Text without surrogates, as a config holds (the config loader refuses them), trimmed as it trims.
label_texts = st.text(max_size=30).map(str.strip)
statuses = st.one_of(
    st.sampled_from(DOCUMENTED_STATUSES),
    st.builds(
        lambda s, case, a, b: a + (s.lower() if case else s) + b,
        st.sampled_from(DOCUMENTED_STATUSES),
        st.booleans(),
        spaces,
        spaces,
    ),
    st.sampled_from(["IN_PROGRESS", "RUNNING", "", " ", "Notified"]),
    texts,
)
status_codes = st.sampled_from(
    ["200", 200, "204", 204, " 200 ", "400", 401, "401", "500", 503, "", None, 200.0, "2OO"]
)
reply_types = st.sampled_from(["SUCCESS", "success", " Success ", "FAILURE", "failure", "", None])
successes = st.sampled_from(["true", "false", True, False, "TRUE", None])


report_fields = {
    "reportId": maybe(texts),
    "reportName": maybe(texts),
    "reportTitle": maybe(texts),
    "reportStatus": maybe(statuses),
    "errorCode": maybe(texts),
    "errorMsg": maybe(texts),
    "reportGroupId": maybe(texts),
}
envelope_fields = {
    "replyType": maybe(reply_types),
    "success": maybe(successes),
    "statusCode": maybe(status_codes),
    "errorCode": maybe(texts),
    "errorMsg": maybe(texts),
}
count_values = maybe(
    st.one_of(st.integers(min_value=0, max_value=50), st.from_regex(r"\A[0-9]{1,3}\Z"), digit_strings)
)
report_headers = st.fixed_dictionaries({}, optional={**envelope_fields, **report_fields})
members = st.fixed_dictionaries({}, optional=report_fields)
group_headers = st.fixed_dictionaries(
    {},
    optional={
        **envelope_fields,
        "reportGroupId": maybe(texts),
        "referenceNumber": maybe(texts),
        "reports": maybe(st.lists(maybe(members), max_size=6)),
        "reportFailureCount": count_values,
        "reportSuccessCount": count_values,
        "noOfReports": count_values,
    },
)
token_headers = st.fixed_dictionaries(
    {},
    optional={
        **envelope_fields,
        "accessToken": maybe(st.builds(lambda a, t, b: a + t + b, spaces, texts, spaces)),
    },
)
HEADERS = {"report": report_headers, "group": group_headers, "token": token_headers}
http_statuses = st.one_of(
    st.sampled_from([200, 200, 200, 204, 400, 401, 404, 500, 502, 503]), st.integers(0, 999)
)


@st.composite
def encoded(draw: st.DrawFn, header: Any) -> bytes:
    """A document around `header`, serialised the ways a server might (or should not)."""
    document = draw(st.one_of(st.just({"headerMap": header}), st.just({"headerMap": header}), anything))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
    body = text.encode("utf-8", "surrogatepass")
    mutation = draw(st.sampled_from(["none", "none", "truncate", "pad", "bom", "latin1"]))
    if mutation == "truncate":
        body = body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    elif mutation == "pad":
        body = b" \r\n" + body + b"\n "
    elif mutation == "bom":
        body = b"\xef\xbb\xbf" + body
    elif mutation == "latin1":
        body = text.encode("latin-1", "replace")
    return body


# --- the reply parser ---------------------------------------------------------------------------------------------
@FUZZ
@given(kind=st.sampled_from(sorted(PARSERS)), status=http_statuses, body=st.binary(max_size=512))
def test_parsers_on_arbitrary_bytes(kind: str, status: int, body: bytes) -> None:
    parse(kind, status, body)


@FUZZ
@given(kind=st.sampled_from(sorted(PARSERS)), status=http_statuses, data=st.data())
def test_parsers_on_reply_shaped_documents(kind: str, status: int, data: st.DataObject) -> None:
    header = data.draw(HEADERS[kind])
    parse(kind, status, data.draw(encoded(header)))


@FUZZ
@given(
    status=st.one_of(st.sampled_from(DOCUMENTED_STATUSES), statuses.filter(lambda s: s.isprintable())),
    report_id=st.text(max_size=40),
    name=st.one_of(st.text(max_size=40), st.text(min_size=250, max_size=300)),
    reply_type=st.sampled_from(["SUCCESS", "success", " Success "]),
    code=st.sampled_from(["200", 200, " 200", None]),
    cut=st.floats(0, 1, exclude_max=True),
)
def test_a_good_report_reply_parses_and_any_prefix_of_it_fails(
    status: str, report_id: str, name: str, reply_type: str, code: object, cut: float
) -> None:
    header = {"replyType": reply_type, "reportId": report_id, "reportName": name, "reportStatus": status}
    if code is not None:
        header["statusCode"] = code  # type: ignore[assignment]
    body = json.dumps({"headerMap": header}).encode("utf-8", "surrogatepass")
    result = parse("report", 200, body)
    if status.strip():
        assert isinstance(result, ReportReply), result
        assert result.report.report_id == report_id.strip()[:MAX_TEXT].rstrip()
        wanted = status.strip().upper()
        assert result.report.status == (wanted if wanted in DOCUMENTED_STATUSES else "UNKNOWN")
        assert result.report.report_name == name.strip()[:MAX_TEXT].rstrip()
    else:
        assert isinstance(result, SigmaError), "a report without a status was accepted"
    prefix = body[: int(len(body) * cut)]
    assert isinstance(parse("report", 200, prefix), SigmaError), prefix


@FUZZ
@given(
    member_statuses=st.lists(statuses, max_size=6),
    ids=st.lists(st.sampled_from(["a", "b", " a ", "c", ""]), min_size=6, max_size=6),
    counts=st.tuples(count_values, count_values, count_values),
)
def test_group_replies_keep_one_row_per_member(
    member_statuses: list[str], ids: list[str], counts: tuple[object, object, object]
) -> None:
    header: dict[str, object] = {
        "replyType": "SUCCESS",
        "reportGroupId": " G ",
        "reports": [{"reportId": i, "reportStatus": s} for i, s in zip(ids, member_statuses, strict=False)],
        "reportFailureCount": counts[0],
        "reportSuccessCount": counts[1],
        "noOfReports": counts[2],
    }
    result = parse("group", 200, json.dumps({"headerMap": header}).encode("utf-8", "surrogatepass"))
    if isinstance(result, GroupReply):
        assert result.report_group_id == "G"
        assert {r.report_id for r in result.reports} == {i.strip() for i in ids[: len(member_statuses)]}
        assert all(r.report_group_id == "G" for r in result.reports)


# --- parsed replies -> snapshot -> exposition --------------------------------------------------------------------
reference_names = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)


@FUZZ
@given(
    data=st.data(),
    refs=st.lists(
        st.tuples(reference_names, st.sampled_from(["report", "group"])),
        min_size=1,
        max_size=3,
        unique_by=lambda r: r[0],
    ),
    sparse=st.booleans(),
    rounds=st.integers(1, 2),
)
def test_parsed_replies_render_to_a_valid_exposition(
    data: st.DataObject, refs: list[tuple[str, str]], sparse: bool, rounds: int
) -> None:
    references = [
        Reference(
            name,
            kind,
            tuple(
                sorted(
                    data.draw(
                        st.dictionaries(st.sampled_from(["team", "env"]), label_texts, max_size=2)
                    ).items()
                )
            ),
        )
        for name, kind in refs
    ]
    memories = {ref.key: HeldRun(ref) for ref in references}
    stats = ApiStats()
    for _ in range(rounds):
        for ref in references:
            status = data.draw(http_statuses)
            # Plain JSON: the parser tests above already cover broken and mutated bodies.
            body = json.dumps({"headerMap": data.draw(HEADERS[ref.kind])}).encode()
            result = parse(ref.kind, status, body)
            stats.observe(
                ACTIONS[1] if ref.kind == "report" else ACTIONS[2],
                str(status),
                data.draw(st.floats(0, 100)),
                result.reason if isinstance(result, SigmaError) else None,
            )
            outcome = Observation(
                ref,
                None if isinstance(result, SigmaError) else result,  # type: ignore[arg-type]
                result if isinstance(result, SigmaError) else None,
                time.time(),
                not isinstance(result, SigmaError),
            )
            fold(memories[ref.key], outcome)
    snapshot = Snapshot(
        info=ExporterInfo("fuzz", "3", status_series="current" if sparse else "all"),
        api=stats.freeze(),
        references=tuple(reference_state(m) for m in memories.values()),
        up=True,
        cycles=rounds,
    )
    rendered = render(snapshot)
    text = rendered.text.decode("utf-8")
    found = samples(text)  # the text parser: raises on anything it cannot read
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]  # not splitlines: \x1e
    assert len(lines) == len(found), "duplicate series in the exposition"
    openmetrics = rendered.openmetrics.decode("utf-8") + "# EOF\n"
    families = list(openmetrics_parser.text_string_to_metric_families(openmetrics))  # type: ignore[no-untyped-call]
    assert {f.name for f in families} >= {"sigma_up", "sigma_report_status", "sigma_reference_up"}
    up = {
        dict(labels)["reference"]
        for (name, labels), value in found.items()
        if name == "sigma_reference_up" and value == 1
    }
    for (name, labels), _ in found.items():
        label_map = dict(labels)
        if name == "sigma_report_status":
            assert label_map["reference"] in up
            assert label_map["status"] in ALL_STATUSES
        for value in label_map.values():
            assert value == value.strip(), (name, value)
    if not sparse:
        rows = [dict(labels) for (name, labels), _ in found.items() if name == "sigma_report_status"]
        per_row: dict[tuple[str, ...], int] = {}
        for row in rows:
            key = (row["reference"], row["report_group_id"], row["report_id"], row["report_name"])
            per_row[key] = per_row.get(key, 0) + 1
        assert all(n == len(ALL_STATUSES) for n in per_row.values()), per_row


def test_examples_setting_is_honoured() -> None:
    assert FUZZ.max_examples == EXAMPLES >= 1
    assert yaml.safe_load("a: 1") == {"a": 1}  # the YAML library the loader builds on is importable
