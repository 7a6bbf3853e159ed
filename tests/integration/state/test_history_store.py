"""A report's history in the state store (SQLite, PostgreSQL, and memory: for the same calls): the newest 50
runs and judged expected times per identity, newest first, kept across a reopen (a restart) and after the runs
themselves are retired; a late verdict replaces the missed one it met; unknown identities have none."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sigma_exporter.runs.store import StateStore
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.records import (
    HISTORY_LENGTH,
    Changes,
    ExpectedRun,
    HistoryRun,
    IdentityRecord,
    RunRecord,
)
from sigma_exporter.runs.store.sqlhistory import PRUNE_EVERY
from sigma_exporter.runs.store.sqlite import SQLiteStore
from tests.integration.state.test_state_store import NOW, api_run

DAILY = IdentityRecord("", "rpt-daily", "Daily balances", labels=(("team", "treasury"),))
MEMBER = IdentityRecord("grp-eod", "rpt-a")


def ended(identity: IdentityRecord, n: int, outcome: str = "success", **extra: str) -> HistoryRun:
    group, report = identity.key
    return HistoryRun(
        group,
        report,
        f"ref-{n}",
        "group" if group else "report",
        "api",
        started_at=NOW + n * 60,
        final_at=NOW + n * 60 + 30,
        duration_seconds=30.0,
        outcome=outcome,
        **extra,
    )


def test_history_keeps_the_newest_runs_newest_first_across_a_reopen(
    make_store: Callable[[], StateStore],
) -> None:
    store = make_store()
    runs = [ended(DAILY, n) for n in range(HISTORY_LENGTH + 10)]
    failed = ended(DAILY, 99, "failure", error_code="RPT-500", error_message='query failed: "x" \\n')
    # In several transactions (as the writer sends them), one run of another identity among them.
    store.write(Changes(identities=(DAILY, MEMBER), history=tuple(runs[:30])))
    store.write(Changes(identities=(DAILY, MEMBER), history=(*runs[30:], ended(MEMBER, 1))))
    store.write(Changes(identities=(DAILY,), history=(failed,)))
    history = make_store().history("", "rpt-daily")  # another connection: a restart
    assert history is not None and history.identity == DAILY
    assert len(history.runs) == HISTORY_LENGTH
    assert history.runs[0] == failed  # newest first, error texts as written
    assert [r.reference for r in history.runs[1:]] == [f"ref-{n}" for n in range(59, 10, -1)]
    member = store.history("grp-eod", "rpt-a")
    assert member is not None and [r.reference for r in member.runs] == ["ref-1"]


def test_history_outlives_the_run_it_tells_of(make_store: Callable[[], StateStore]) -> None:
    store = make_store()
    record = api_run("ref-7", report_id="rpt-daily")
    store.register(record)  # reserves the identity, for its shard to take
    [(_, epoch, _)] = store.acquire([DAILY.key], time.time())
    store.write(
        Changes(
            runs=(RunRecord(record.ref, final_at=NOW, outcome="failure"),),
            identities=(DAILY,),
            epochs=((DAILY.key, epoch),),
        )
    )
    store.write(
        Changes(
            retired=("ref-7",),
            identities=(DAILY,),
            epochs=((DAILY.key, epoch),),
            history=(ended(DAILY, 7, "failure"),),
        )
    )
    assert store.get("ref-7") is None
    history = make_store().history("", "rpt-daily")
    assert history is not None and [r.reference for r in history.runs] == ["ref-7"]


def test_a_late_start_replaces_the_missed_verdict_and_the_newest_50_are_kept(
    make_store: Callable[[], StateStore],
) -> None:
    store = make_store()
    times = [NOW + 3600 * n for n in range(HISTORY_LENGTH + 5)]
    verdicts = [ExpectedRun("", "rpt-daily", t, started_at=t + 5) for t in times[:-1]]
    missed = ExpectedRun("", "rpt-daily", times[-1], missed=True)
    store.write(Changes(identities=(DAILY,), expected=(*verdicts, missed)))
    late = ExpectedRun("", "rpt-daily", times[-1], started_at=times[-1] + 900, late=True, missed=True)
    store.write(Changes(identities=(DAILY,), expected=(late,)))
    history = make_store().history("", "rpt-daily")
    assert history is not None and history.runs == ()
    assert len(history.expected) == HISTORY_LENGTH
    assert history.expected[0] == late
    assert [e.expected_at for e in history.expected] == sorted(times, reverse=True)[:HISTORY_LENGTH]


def test_identities_are_listed_sorted_and_an_unknown_one_has_no_history(
    make_store: Callable[[], StateStore],
) -> None:
    store = make_store()
    store.write(Changes(identities=(MEMBER, DAILY)))
    assert make_store().identities() == (DAILY, MEMBER)
    assert store.history("", "rpt-unknown") is None
    assert store.history("grp-eod", "") is None  # the group as a whole is an identity of its own


@pytest.mark.parametrize("length", [HISTORY_LENGTH + 3])
def test_the_memory_store_keeps_the_same_history(length: int) -> None:
    store = MemoryStore()
    store.write(Changes(identities=(DAILY,), history=tuple(ended(DAILY, n) for n in range(length))))
    store.write(Changes(identities=(DAILY,), expected=(ExpectedRun("", "rpt-daily", NOW, missed=True),)))
    history = store.history("", "rpt-daily")
    assert history is not None
    assert [r.reference for r in history.runs] == [f"ref-{n}" for n in range(length - 1, 2, -1)]
    assert history.expected == (ExpectedRun("", "rpt-daily", NOW, missed=True),)
    assert store.history("", "nope") is None and store.identities() == (DAILY,)


def test_the_history_table_stays_bounded_however_many_runs_end(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.start()
    store.write(Changes(identities=(DAILY,)))
    for n in range(400):  # one run ending per write, as the poller sends them
        store.write(
            Changes(
                identities=(DAILY,),
                history=(ended(DAILY, n),),
                expected=(ExpectedRun("", "rpt-daily", NOW + n),),
            )
        )
        with sqlite3.connect(tmp_path / "state.db") as conn:
            (runs,) = conn.execute("SELECT count(*) FROM run_history").fetchone()
            (expected,) = conn.execute("SELECT count(*) FROM expected_history").fetchone()
        assert runs <= HISTORY_LENGTH + PRUNE_EVERY and expected <= HISTORY_LENGTH + PRUNE_EVERY, n
    history = store.history("", "rpt-daily")
    assert history is not None and [r.reference for r in history.runs] == [
        f"ref-{n}" for n in range(399, 349, -1)
    ]
    store.stop(1.0)
