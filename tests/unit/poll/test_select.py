"""Which runs a cycle checks: the due ones first, in their order; a full cycle also every run that is not
final; a final run only when its re-check is due."""

from __future__ import annotations

from sigma_exporter.poll.select import select
from sigma_exporter.runs.held import HeldRun, Key
from tests.support.factories import run


def held(*runs: HeldRun) -> dict[Key, HeldRun]:
    return {r.ref.key: r for r in runs}


def refs(chosen: list[HeldRun]) -> list[str]:
    return [r.ref.reference for r in chosen]


def test_due_runs_come_first_in_their_order_and_unknown_keys_are_dropped() -> None:
    runs = held(run("a"), run("b"), run("c"))
    due = [("report", "c"), ("report", "gone"), ("report", "a")]
    assert refs(select(due, runs, full=False)) == ["c", "a"]


def test_a_full_cycle_adds_every_run_that_is_not_final_but_no_final_one() -> None:
    down = run("down", "FAILED")
    down.up = False  # its last check failed: checked again, as if active
    runs = held(
        run("active", "GENERATED"), run("done", "PUBLISHED"), run("ended", "FAILED"), run("never"), down
    )
    assert sorted(refs(select([], runs, full=True))) == ["active", "down", "never"]
    assert refs(select([("report", "done")], runs, full=True))[0] == "done"  # due: its re-check came


def test_final_recheck_seconds_zero_takes_final_runs_every_full_cycle() -> None:
    runs = held(run("done", "PUBLISHED"), run("active", "GENERATED"))
    assert sorted(refs(select([], runs, full=True, finals_too=True))) == ["active", "done"]
    assert select([], runs, full=False, finals_too=True) == []


def test_between_full_cycles_only_due_runs_are_checked() -> None:
    runs = held(run("active", "GENERATED"), run("new"))
    assert refs(select([("report", "new")], runs, full=False)) == ["new"]
    assert select([], runs, full=False) == []


def test_nothing_held_nothing_selected() -> None:
    assert select([("report", "x")], {}, full=True) == []
