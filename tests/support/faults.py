"""The fault suite's loop and its eyes (tests/integration/faults/test_faults.py): the poll interval, the
vendor scenario's references, what one scrape of /metrics shows (View), and a Scraper that checks on every
scrape what must hold whatever the fault: an answer within SCRAPE_LIMIT, and no status series for a
reference whose last check failed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from tests.support.exporter import samples
from tests.support.net import wait_for
from tests.support.paths import OUT_DIR
from tests.support.process import ExporterProcess
from tests.support.scenarios import SAMPLE_REF

#: Where the fault suite keeps its measured figures (git-ignored; a partial run updates its rows only).
FAULTS_JSON = OUT_DIR / "faults.json"

#: The exporter's poll interval under test, in seconds.
INTERVAL = 0.5
#: Every scrape, fault or not, must answer within this long.
SCRAPE_LIMIT = 1.0

REPORTS = (SAMPLE_REF, "ref-failed", "ref-pending")
GROUPS = ("grp-sample", "grp-mixed")
ALL_REFS = frozenset(REPORTS + GROUPS)
#: Families that name a reference and must vanish while that reference's checks fail.
PER_REPORT_FAMILIES = (
    "sigma_report_status",
    "sigma_report_status_since_timestamp_seconds",
    "sigma_report_error_info",
    "sigma_group_reports",
    "sigma_group_report_failures",
    "sigma_group_report_successes",
    "sigma_group_report_members",
)


# --- what a scrape shows ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    seconds: float

    def get(self, name: str, **labels: str) -> float:
        """The one sample `name{labels...}` (0 when absent)."""
        found = [
            v
            for (n, ls), v in self.values.items()
            if n == name and all(dict(ls).get(k) == w for k, w in labels.items())
        ]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else 0.0

    @property
    def up(self) -> float:
        return self.get("sigma_up")

    @property
    def last_poll(self) -> float:
        return self.get("sigma_last_poll_timestamp_seconds")

    @property
    def refs_up(self) -> dict[str, float]:
        return {dict(ls)["reference"]: v for (n, ls), v in self.values.items() if n == "sigma_reference_up"}

    def refs_in(self, family: str) -> set[str]:
        return {dict(ls)["reference"] for (n, ls), _ in self.values.items() if n == family}

    @property
    def status_refs(self) -> set[str]:
        return self.refs_in("sigma_report_status")

    def errors(self, action: str, reason: str) -> float:
        return self.get("sigma_api_request_errors_total", action=action, reason=reason)

    def calls(self, action: str) -> float:
        return sum(
            v
            for (n, ls), v in self.values.items()
            if n == "sigma_api_requests_total" and dict(ls)["action"] == action
        )

    def healthy(self, refs: frozenset[str] = ALL_REFS) -> bool:
        """sigma_up 1, exactly `refs` watched, all up, each with its status series."""
        return self.up == 1 and self.refs_up == dict.fromkeys(refs, 1.0) and self.status_refs == set(refs)


@dataclass
class Scraper:
    """Scrapes /metrics and checks, on every scrape, what must hold whatever the fault."""

    proc: ExporterProcess
    count: int = 0
    slowest: float = 0.0

    def __call__(self) -> View:
        started = time.monotonic()
        reply = requests.get(self.proc.url + "/metrics", timeout=5)
        seconds = time.monotonic() - started
        assert reply.status_code == 200, reply.status_code
        assert seconds < SCRAPE_LIMIT, f"/metrics took {seconds:.3f}s"
        self.count += 1
        self.slowest = max(self.slowest, seconds)
        view = View(samples(reply.text), seconds)
        up = {ref for ref, value in view.refs_up.items() if value == 1}
        for family in PER_REPORT_FAMILIES:
            stale = view.refs_in(family) - up
            assert not stale, f"{family} series outlive failed checks of {sorted(stale)}"
        return view

    def until(self, condition: Callable[[View], bool], timeout: float, what: str) -> View:
        def attempt() -> View | None:
            view = self()
            return view if condition(view) else None

        result: View = wait_for(attempt, timeout, 0.02, what)
        return result

    def hold(self, condition: Callable[[View], bool], cycles: int, what: str) -> View:
        """Assert `condition` on every scrape while the exporter finishes `cycles` poll cycles."""
        first = self()
        assert condition(first), f"{what}: not so at the start of the hold"
        deadline = time.monotonic() + cycles * INTERVAL * 3 + 5
        view = first
        polls = {first.last_poll}
        while len(polls) <= cycles:
            assert time.monotonic() < deadline, (
                f"{what}: the poll loop stalled (cycles seen: {len(polls) - 1})"
            )
            time.sleep(0.05)
            view = self()
            assert condition(view), f"{what}: no longer so after {len(polls) - 1} cycles"
            polls.add(view.last_poll)
        return view


def table_lines(table: dict[str, dict[str, object]], interval: float, timeout: float) -> list[str]:
    """The fault suite's figures as it prints them at the end of a session."""
    lines = [f"fault suite (interval {interval}s, timeout {timeout}s), written to {FAULTS_JSON}:"]
    for name, row in table.items():
        lines.append(
            f"  {name}: {row['showed']} | recovery {row['recovery_seconds']}s | slowest scrape {row['slowest_scrape_seconds']}s"
        )
    return lines


def lines_written_since(started: float) -> list[str]:
    """`table_lines` of the rows FAULTS_JSON got since `started` (a time.time()); none when it has none.
    For a pytest-xdist run, whose workers' output is not shown (tests/conftest.py prints them)."""
    try:
        if FAULTS_JSON.stat().st_mtime < started:
            return []
        document = json.loads(FAULTS_JSON.read_text())
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        rows = {name: row for name, row in document["faults"].items() if str(row["measured_at"]) >= since}
        return table_lines(rows, document["interval_seconds"], document["timeout_seconds"]) if rows else []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
