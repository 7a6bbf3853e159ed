"""No restart herd: a restart restores each run's place in the re-check rule and what its last check saw, so
it shows every held run at once and checks only what was due anyway (today's exporter checked every held
run again). Against the real simulator, with a SQLite store kept between the two processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sigma_exporter.simulator import Simulator
from tests.support.exporter import select
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.runs import config, register, value

RUNS = 200
REFS = [f"gen-r-{i:06d}" for i in range(RUNS)]


def calls_to_held_runs(sim: Simulator) -> int:
    counts = sim.stats()["by_reference"]
    assert isinstance(counts, dict)
    return sum(int(counts.get(ref, 0)) for ref in REFS)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_a_restart_rechecks_only_what_was_due_and_shows_every_run_at_once(
    make_simulator: Callable[[str], Simulator],
    exporter_process: Callable[..., ExporterProcess],
    tmp_path: Path,
    stop: str,
) -> None:
    import signal

    sim = make_simulator(f"generate: {{reports: {RUNS}, groups: 0, final_fraction: 1}}")
    body = config(sim, tmp_path, poll={"interval_seconds": 1, "concurrency": 8, "final_recheck_seconds": 600})
    first = exporter_process(body)
    first.wait_ready()
    for ref in REFS:
        assert (
            register(first, {"reference": ref, "kind": "report", "report_id": "rpt-gen"}).status_code == 201
        )
    wait_for(
        lambda: value(first, "sigma_runs", source="api", state="final") == RUNS, 30, what="every run final"
    )
    # What the checks saw is durable once a cycle later (the writer commits off the poll thread).
    settled = time.time()
    wait_for(lambda: first.last_poll() > settled + 1, 10, what="two more cycles")
    first.stop(getattr(signal, stop))
    sim.reset_stats()
    second = exporter_process(body)
    second.wait_ready(first_cycle=False)
    # Shown at once, from the store: every run's status, without a check.
    shown = select(second.metrics(), "sigma_report_status", status="NOTIFIED")
    assert len([v for v in shown.values() if v == 1.0]) == RUNS
    assert calls_to_held_runs(sim) == 0
    restarted = time.time()
    wait_for(lambda: second.last_poll() > restarted + 3, 30, what="3 s of polling")
    assert calls_to_held_runs(sim) <= RUNS * 0.05  # at most 5 % (none is due: the next re-check is in 10 min)
    assert value(second, "sigma_report_runs_total", outcome="success") == RUNS  # not again
