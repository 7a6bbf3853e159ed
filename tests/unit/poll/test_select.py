"""Which runs a cycle checks: the due ones first, then (a full cycle) the active ones and the final ones
due for a re-check, and one probe when nothing else would be checked."""

from __future__ import annotations

from sigma_exporter.poll.select import select
from sigma_exporter.runs.held import HeldRun, Key
from tests.support.factories import run

NOW = 10_000.0  # monotonic


def held(*runs: HeldRun) -> dict[Key, HeldRun]:
    return {r.ref.key: r for r in runs}


def refs(chosen: list[HeldRun]) -> list[str]:
    return [r.ref.reference for r in chosen]


def test_due_runs_come_first_in_their_order_and_unknown_keys_are_dropped() -> None:
    runs = held(run("a"), run("b"), run("c"))
    due = [("report", "c"), ("report", "gone"), ("report", "a")]
    assert refs(select(due, runs, full=False, recheck_seconds=900, mono_now=NOW)) == ["c", "a"]


def test_a_full_cycle_adds_active_runs_and_stale_final_ones_but_not_fresh_final_ones() -> None:
    runs = held(
        run("active", status="GENERATED", last_success=NOW - 5),
        run("fresh", status="PUBLISHED", last_success=NOW - 10),
        run("stale", status="FAILED", last_success=NOW - 900),
        run("never", status=None),
    )
    chosen = refs(select([("report", "fresh")], runs, full=True, recheck_seconds=900, mono_now=NOW))
    assert chosen[0] == "fresh"  # due (a new config made everything due, say)
    assert sorted(chosen[1:]) == ["active", "never", "stale"]


def test_between_full_cycles_only_due_runs_are_checked() -> None:
    runs = held(run("active", status="GENERATED", last_success=NOW - 5), run("new"))
    assert refs(select([("report", "new")], runs, full=False, recheck_seconds=900, mono_now=NOW)) == ["new"]
    assert select([], runs, full=False, recheck_seconds=900, mono_now=NOW) == []


def test_a_full_cycle_with_nothing_to_check_probes_the_least_recently_checked_run() -> None:
    older, newer = (
        run("older", status="NOTIFIED", last_success=NOW - 20),
        run("newer", status="NOTIFIED", last_success=NOW - 10),
    )
    older.last_check, newer.last_check = 1000.0, 2000.0
    chosen = select([], held(newer, older), full=True, recheck_seconds=900, mono_now=NOW)
    assert refs(chosen) == ["older"]


def test_nothing_held_nothing_selected() -> None:
    assert select([("report", "x")], {}, full=True, recheck_seconds=0, mono_now=NOW) == []
