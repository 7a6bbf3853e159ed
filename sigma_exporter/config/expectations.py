"""The `expectations:` and `schedules:` sections: which report identities should run when, and which the
exporter starts itself. Cron expressions are checked by cronsim (the parser healthchecks.io uses) and time
zones by zoneinfo, here, so that a bad one fails `check-config` with `FILE: KEY: problem`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from sigma_exporter.config.model import (
    DEFAULT_GRACE_SECONDS,
    Expectation,
    ExpectationsConfig,
    Schedule,
    Timetable,
    label_name_problem,
)
from sigma_exporter.config.walker import ConfigError, Section, kind_of, utf8

#: Longest `report_filter`, as JSON: it is sent to Sigma on every firing.
MAX_FILTER_BYTES: Final = 16 * 1024
SCHEDULE_NAME_MAX: Final = 128


def _zone(section: Section) -> str:
    name = section.text("timezone", "UTC") or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise section.error(
            "timezone", f"unknown time zone {name[:64]!r} (use an IANA name such as Europe/London)"
        ) from None
    return name


def parse_timetable(section: Section) -> Timetable:
    """The timetable of an expectation or schedule: a cron expression (checked) in a time zone, or
    `every_seconds`; exactly one of them."""
    cron = section.text("cron")
    every = section.get("every_seconds")
    if (cron is None) == (every is None):
        raise section.here("needs exactly one of cron or every_seconds")
    if cron is not None:
        zone = _zone(section)
        try:
            CronSim(cron, datetime.now(timezone.utc))
        except CronSimError as exc:
            raise section.error("cron", f"{cron[:64]!r} is not a cron expression: {exc}") from None
        return Timetable(cron=cron, timezone=zone)
    if section.get("timezone") is not None:
        raise section.error("timezone", "applies to cron only; every_seconds counts real seconds")
    return Timetable(every_seconds=section.number("every_seconds", 0.0, minimum=0.001))


def parse_labels(section: Section) -> tuple[tuple[str, str], ...]:
    """The operator's labels of a section, as sorted (name, value) pairs; reserved and invalid names are
    errors."""
    pairs = []
    for label, value in section.data.items():
        name = str(label)
        section.get(name)
        problem = label_name_problem(name)
        if problem:
            raise section.error(name, problem)
        if isinstance(value, (dict, list)) or value is None:
            raise section.error(name, f"should be a plain value, got {kind_of(value)}")
        pairs.append((name, utf8(str(value).strip(), section, name)))
    return tuple(sorted(pairs))


def _identity(section: Section) -> tuple[str, str]:
    report_id = section.text("report_id") or ""
    group_id = section.text("report_group_id") or ""
    if bool(report_id) == bool(group_id):
        raise section.here("needs exactly one of report_id or report_group_id")
    for name, value in (("report_id", report_id), ("report_group_id", group_id)):
        if value and (len(value) > 256 or any(ch.isspace() for ch in value)):
            raise section.error(name, f"{value[:64]!r} is not a report id")
    return group_id, report_id


def parse_expectation(section: Section, schedule: str = "") -> Expectation:
    """One expectation (or the one a schedule named `schedule` implies): its identity, timetable, grace, max
    duration and labels. The caller rejects unknown keys."""
    group_id, report_id = _identity(section)
    timetable = parse_timetable(section)
    grace = section.number("grace_seconds", DEFAULT_GRACE_SECONDS, minimum=0)
    max_duration = section.get("max_duration_seconds")
    return Expectation(
        report_group_id=group_id,
        report_id=report_id,
        timetable=timetable,
        grace_seconds=grace,
        max_duration_seconds=(
            None if max_duration is None else section.number("max_duration_seconds", 0.0, minimum=0.001)
        ),
        labels=parse_labels(section.section("labels")),
        schedule=schedule,
    )


EXPECTATION_KEYS: Final = (
    "report_id",
    "report_group_id",
    "cron",
    "timezone",
    "every_seconds",
    "grace_seconds",
    "max_duration_seconds",
    "labels",
)
SCHEDULE_KEYS: Final = ("name", *EXPECTATION_KEYS, "report_filter", "skip_if_running")


def _filter(section: Section) -> str:
    value = section.get("report_filter")
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise section.error(
            "report_filter", f"should be a mapping (sent as reportFilter), got {kind_of(value)}"
        )
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise section.error("report_filter", f"cannot be sent as JSON: {exc}") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILTER_BYTES:
        raise section.error("report_filter", f"is over {MAX_FILTER_BYTES // 1024} KiB as JSON")
    return text


def parse_expectations(top: Section) -> ExpectationsConfig:
    """The `expectations:` and `schedules:` lists of the top section; an identity with two of them (a schedule
    is an expectation of its identity) and a schedule name used twice are errors."""
    expectations: list[Expectation] = []
    seen: dict[tuple[str, str], str] = {}
    for index, item in enumerate(top.items("expectations")):
        where = f"expectations[{index}]"
        section = Section(item, where, top.source)
        expectation = parse_expectation(section)
        section.done(EXPECTATION_KEYS)
        if expectation.key in seen:
            raise section.here(f"repeats the expectation of {seen[expectation.key]}")
        seen[expectation.key] = where
        expectations.append(expectation)
    schedules: list[Schedule] = []
    names: set[str] = set()
    for index, item in enumerate(top.items("schedules")):
        where = f"schedules[{index}]"
        section = Section(item, where, top.source)
        name = section.text("name", required=True) or ""
        if not name or len(name) > SCHEDULE_NAME_MAX or any(ch.isspace() for ch in name):
            raise section.error("name", f"{name[:64]!r} should be a short name without spaces")
        if name in names:
            raise section.error("name", f"{name!r} names another schedule too")
        names.add(name)
        expectation = parse_expectation(section, schedule=name)
        schedule = Schedule(
            name=name,
            expectation=expectation,
            report_filter=_filter(section),
            skip_if_running=section.flag("skip_if_running", False),
        )
        section.done(SCHEDULE_KEYS)
        if expectation.key in seen:
            raise section.here(
                f"its identity already has the expectation {seen[expectation.key]}; "
                "a schedule is an expectation of its identity, so drop one of them"
            )
        seen[expectation.key] = where
        schedules.append(schedule)
    return ExpectationsConfig(tuple(expectations), tuple(schedules))


__all__ = [
    "ConfigError",
    "Expectation",
    "ExpectationsConfig",
    "Schedule",
    "Timetable",
    "parse_expectations",
]
