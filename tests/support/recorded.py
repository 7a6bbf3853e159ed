"""A `--record` directory as parser test cases: one case per recorded reply, with what the parser must
make of it when the file says (`"expect"`). A user's recording becomes a test by copying it under
tests/recorded/ (RECORDED_DIR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from sigma_exporter.sigma.actions import (
    EXEC_REPORT_GROUP,
    GENERATE_TOKEN,
    GROUP_CHECK,
    REPORT_CHECK,
    RUN_REPORT,
)
from sigma_exporter.sigma.recording import recorded
from sigma_exporter.sigma.replies import (
    parse_group_reply,
    parse_report_reply,
    parse_start_reply,
    parse_token_reply,
)
from tests.support.paths import RECORDED_DIR


class Case(NamedTuple):
    name: str
    action: str
    status: int
    body: bytes
    expect: dict[str, Any] | None


def cases(directory: Path = RECORDED_DIR) -> list[Case]:
    """Every recorded reply under `directory` (its subdirectories are recordings)."""
    found = []
    for recording in sorted(p for p in directory.iterdir() if p.is_dir()):
        paths = sorted(recording.glob("*.json"))
        for path, document in zip(paths, recorded(recording), strict=True):
            reply = document["reply"]
            found.append(
                Case(
                    f"{recording.name}/{path.stem}",
                    str(document["action"]),
                    int(reply["status"]),
                    str(reply["body"]).encode("utf-8"),
                    document.get("expect"),
                )
            )
    return found


def parse(case: Case) -> dict[str, Any]:
    """What the exporter's parser makes of a recorded reply, in the vocabulary of `"expect"`. Raises the
    parser's typed SigmaError for a reply it rejects."""
    if case.action == GENERATE_TOKEN:
        return {"token": parse_token_reply(case.status, case.body)}
    if case.action in (RUN_REPORT, EXEC_REPORT_GROUP):
        return {"reference": parse_start_reply(case.action, case.status, case.body)}
    if case.action == REPORT_CHECK:
        reply = parse_report_reply(case.status, case.body)
        report = reply.report
        return {
            "report_id": report.report_id,
            "report_name": report.report_name,
            "status": report.status,
            "pending": reply.pending,
        }
    if case.action == GROUP_CHECK:
        group = parse_group_reply(case.status, case.body)
        return {
            "report_group_id": group.report_group_id,
            "statuses": [r.status for r in group.reports],
            "failure_count": group.failure_count,
            "success_count": group.success_count,
            "member_count": group.member_count,
        }
    raise ValueError(f"{case.name}: no parser for action {case.action!r}")
