"""What the doctor found: one finding per step (ok, warning or failed, with what to do), and the text it
prints. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

OK: Final = "ok"
WARNING: Final = "warning"
FAILED: Final = "failed"


@dataclass(frozen=True)
class Finding:
    """The result of one step: its name, ok/warning/failed, what was seen and, when useful, what to do."""

    name: str
    result: str  # OK | WARNING | FAILED
    detail: str
    hint: str = ""


def render(steps: Sequence[Finding], redact: Callable[[str], str]) -> str:
    """One line per step, `[ ok ]`, `[warn]` or `[FAIL]`, with what to do under it. Pure."""
    marks = {OK: "[ ok ]", WARNING: "[warn]", FAILED: "[FAIL]"}
    width = max(len(step.name) for step in steps)
    lines = []
    for step in steps:
        lines.append(f"{marks[step.result]} {step.name.ljust(width)}  {redact(step.detail)}")
        if step.hint:
            lines.append(f"{' ' * 7}{' ' * width}  -> {redact(step.hint)}")
    failed = sum(step.result == FAILED for step in steps)
    warned = sum(step.result == WARNING for step in steps)
    verdict = (
        "the exporter would work as configured" if not failed else "the exporter would NOT work as configured"
    )
    lines.append(f"{len(steps)} steps: {failed} failed, {warned} warnings: {verdict}.")
    return "\n".join(lines) + "\n"
