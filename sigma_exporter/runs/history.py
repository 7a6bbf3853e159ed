"""What a report identity's history keeps of an ended run and of a judged expected time. Pure.

Sigma's `errorCode` and `errorMsg` are free text from a bank's production system: they are redacted of every
secret the exporter knows, control characters are escaped (a message cannot forge lines in a log or a
terminal), and they are cut to `MAX_ERROR_CHARS`. They are never a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from sigma_exporter.config.model import Expectation
from sigma_exporter.runs import timetable
from sigma_exporter.runs.expectations import early_tolerance
from sigma_exporter.runs.held import HeldRun
from sigma_exporter.runs.store.records import ExpectedRun, HistoryRun, IdentityRecord

IdentityKey = tuple[str, str]  # (report_group_id, report_id)

#: Characters of an error code or message kept; longer ones end with an ellipsis.
MAX_ERROR_CHARS = 1000
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escaped(text: str) -> str:
    """`text` with control characters written as escapes (`\\n`, `\\x1b`, ...), cut to `MAX_ERROR_CHARS`."""
    out = []
    for char in text.strip():
        if char.isprintable():
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    joined = "".join(out)
    return joined if len(joined) <= MAX_ERROR_CHARS else joined[: MAX_ERROR_CHARS - 1] + "…"


def cleaned(run: HistoryRun, redact: Callable[[str], str]) -> HistoryRun:
    """`run` with its error code and message redacted and escaped."""
    return replace(
        run, error_code=escaped(redact(run.error_code)), error_message=escaped(redact(run.error_message))
    )


def history_run(
    memory: HeldRun, key: IdentityKey, outcome: str, final_at: float, duration: float | None
) -> HistoryRun:
    """The run `memory` as the history of identity `key` keeps it: a member of a group run with its own row's
    error; a report or a group run as a whole with the first error of its reports."""
    ref = memory.ref
    rows = [r for r in memory.rows if r.report_id == key[1]] if key[0] and key[1] else list(memory.rows)
    failed = next((r for r in rows if r.error_code or r.error_msg), None)
    return HistoryRun(
        report_group_id=key[0],
        report_id=key[1],
        reference=ref.reference,
        kind=ref.kind,
        source=ref.source,
        started_at=ref.submitted_at if ref.submitted_at is not None else memory.first_seen_at,
        final_at=final_at,
        duration_seconds=duration,
        outcome=outcome,
        error_code=failed.error_code if failed else "",
        error_message=failed.error_msg if failed else "",
    )


def verdict_entries(
    expectation: Expectation,
    record: IdentityRecord,
    met: Sequence[tuple[float, float]],
    missed: Sequence[float],
    starts: Iterable[float],
) -> tuple[list[ExpectedRun], float | None]:
    """The expected times of identity `record` just judged, met (expected time, start) or `missed`, as its
    history keeps them, oldest first; and the missed time a late start may still meet. The one that was open
    (`record.missed_open`) turns late with the first start after its grace and before the window of the next
    expected time (a start in that window is the next one's); it closes once a later time is judged."""
    group, report = record.key
    entries = [ExpectedRun(group, report, at, started_at=start) for at, start in met]
    entries += [ExpectedRun(group, report, at, missed=True) for at in missed]
    entries.sort(key=lambda e: e.expected_at)
    opened = record.missed_open
    if opened is not None:
        following = timetable.following(expectation.timetable, opened)
        before = following - early_tolerance(expectation, following)
        later = [s for s in starts if opened + expectation.grace_seconds < s < before]
        if later:
            entries.insert(
                0, ExpectedRun(group, report, opened, started_at=min(later), late=True, missed=True)
            )
            opened = None
        elif entries:
            opened = None
    if missed and not any(at > missed[-1] for at, _ in met):
        opened = missed[-1]
    return entries, opened
