"""A registration body -> a `Reference` (source `api`), or a `FieldError` naming the field. Pure."""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping
from typing import Final

from sigma_exporter.config.model import KINDS, MAX_LABEL_VALUE, Reference, label_name_problem

MAX_TEXT: Final = 256
MAX_LABELS: Final = 32
#: submitted_at must fall between this and a day after now (a clock off by a day is a bug, not a run).
EARLIEST_SUBMITTED: Final = 946684800.0  # 2000-01-01
#: How far in the future a submitted_at may be (clock skew); beyond it, it is taken for milliseconds or a typo.
MAX_FUTURE_SECONDS: Final = 86400.0
DOT_SEGMENTS: Final = frozenset({".", ".."})
FIELDS: Final = ("reference", "kind", "report_id", "report_group_id", "labels", "submitted_at")


class FieldError(ValueError):
    """A registration the API refuses (400): `field` names what is wrong, `problem` says what."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object's members, refusing a key given twice (which of the two would count is a guess)."""
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise FieldError(_shown(key), "is given twice")
        document[key] = value
    return document


def _unicode_problem(text: str) -> str | None:
    """Why `text` is not text that UTF-8 can carry (a lone surrogate: a JSON escape such as \\ud800, or its
    bytes encoded), None when it is."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "is not valid Unicode: it holds a lone surrogate (a UTF-16 half, such as \\ud800)"
    return None


def _shown(text: str) -> str:
    """`text` safe to name in an error (a lone surrogate written as its escape)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _text(data: Mapping[str, object], name: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise FieldError(name, "is required")
        return ""
    if not isinstance(value, str):
        raise FieldError(name, f"should be a string, got {_type_name(value)}")
    problem = _unicode_problem(value)
    if problem:
        raise FieldError(name, problem)
    if len(value) > MAX_TEXT:
        raise FieldError(name, f"is longer than {MAX_TEXT} characters")
    value = value.strip()
    if required and not value:
        raise FieldError(name, "is empty")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value):
        raise FieldError(name, "must not contain white space or control characters")
    return value


def _labels(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise FieldError("labels", f"should be an object of strings, got {_type_name(value)}")
    if len(value) > MAX_LABELS:
        raise FieldError("labels", f"has more than {MAX_LABELS} labels")
    pairs = []
    for name, label in value.items():
        problem = _unicode_problem(name) or label_name_problem(name)
        if problem:
            raise FieldError(f"labels.{_shown(name)}", problem)
        if not isinstance(label, str):
            raise FieldError(f"labels.{name}", f"should be a string, got {_type_name(label)}")
        problem = _unicode_problem(label)
        if problem:
            raise FieldError(f"labels.{name}", problem)
        if "\x00" in label:
            raise FieldError(f"labels.{name}", "must not contain NUL")
        if len(label) > MAX_LABEL_VALUE:
            raise FieldError(f"labels.{name}", f"is longer than {MAX_LABEL_VALUE} characters")
        pairs.append((name, label.strip()))
    return tuple(sorted(pairs))


def _submitted_at(value: object, now: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError("submitted_at", f"should be unix seconds (a number), got {_type_name(value)}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < EARLIEST_SUBMITTED:
        raise FieldError("submitted_at", f"{value!r} is not a unix time in seconds")
    if seconds > now + MAX_FUTURE_SECONDS:
        raise FieldError("submitted_at", f"{value!r} is more than a day in the future")
    return seconds


def parse_registration(body: bytes, now: float) -> Reference:
    """A registration body as a run of source `api`, registered at `now`; FieldError names the first field at
    fault (unknown fields included). Pure."""
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys)
    except FieldError:
        raise
    except (ValueError, RecursionError):
        raise FieldError("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise FieldError("body", f"should be a JSON object, got {_type_name(data)}")
    for name in data:
        if name not in FIELDS:
            raise FieldError(_shown(str(name)), f"is not a field of a run (fields: {', '.join(FIELDS)})")
    reference = _text(data, "reference", required=True)
    if reference in DOT_SEGMENTS:
        raise FieldError(
            "reference", "cannot be addressed by a URL: clients and servers remove the dot segments . and .."
        )
    kind = data.get("kind")
    if kind not in KINDS:
        shown = kind if isinstance(kind, str) else _type_name(kind)
        raise FieldError(
            "kind", f"should be report or group, got {shown!r}" if kind is not None else "is required"
        )
    report_group_id = _text(data, "report_group_id")
    report_id = _text(data, "report_id")
    return Reference(
        reference=reference,
        kind=str(kind),
        labels=_labels(data.get("labels")),
        source="api",
        report_id=report_id,
        report_group_id=report_group_id,
        submitted_at=_submitted_at(data.get("submitted_at"), now),
        registered_at=now,
    )
